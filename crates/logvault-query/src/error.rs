/// Errors of the query engine. Messages name the workspace, table, cluster or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse or plan, or a column does not exist.
    #[error("{message}")]
    Plan {
        /// DataFusion's message, with a suggestion where one is close.
        message: String,
    },
    /// The query names a table the workspace does not have.
    #[error("table {table} not found in workspace {workspace}{}", suggestion_text(.suggestion))]
    UnknownTable {
        /// The workspace.
        workspace: String,
        /// The table asked for.
        table: String,
        /// A close table name, if any.
        suggestion: Option<String>,
    },
    /// A storage account the workspace's data is in cannot be read: its key is revoked or
    /// unavailable (R-G2). Nothing was read.
    #[error("workspace {workspace} cannot be queried: {reason}")]
    KeyUnavailable {
        /// The workspace.
        workspace: String,
        /// The storage account (`service` or `cluster-<name>`).
        account: String,
        /// Why, naming the cluster and key.
        reason: String,
    },
    /// The query ran longer than its timeout.
    #[error("query timed out after {seconds}s (raise it with --timeout)")]
    Timeout {
        /// The timeout.
        seconds: u64,
    },
    /// The query needed more memory than the engine's queries may hold together. Nothing is
    /// spilled to disk (it would rest there in clear): narrow the query, or raise the limit.
    #[error(
        "query needs more memory than the query memory limit allows (queryMemoryBytes in \
         config.json, or EngineBuilder::query_memory_limit): {message}"
    )]
    MemoryLimit {
        /// DataFusion's message: which operator asked for how much.
        message: String,
    },
    /// Executing the query failed (including integrity errors from decryption).
    #[error("query failed: {message}")]
    Execution {
        /// What failed.
        message: String,
    },
    /// Writing the results failed.
    #[error("writing results: {message}")]
    Output {
        /// What failed.
        message: String,
    },
}

fn suggestion_text(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        match e.find_root() {
            D::Plan(_) | D::SQL(..) | D::SchemaError(..) | D::NotImplemented(_) => Self::Plan {
                message: e.strip_backtrace(),
            },
            D::ResourcesExhausted(_) => Self::MemoryLimit {
                message: e.find_root().strip_backtrace(),
            },
            _ => Self::Execution {
                message: e.strip_backtrace(),
            },
        }
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        Self::Output {
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for QueryError {
    fn from(e: std::io::Error) -> Self {
        Self::Output {
            message: e.to_string(),
        }
    }
}
