//! Tables with a declared schema: a writer conforms their rows before it logs them.
//!
//! The declaration is read from the table's catalog the first time the writer sees the table.
//! A declaration never changes once made, so it is kept for the writer's life; that a table has
//! none is asked again after [`UNDECLARED_RECHECK`], so that a long-lived writer (a server's)
//! picks up a table declared while it runs.

use std::borrow::Cow;
use std::collections::HashMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use logvault_ingest::{ConformReport, conform_to_declared};
use logvault_store::Store;

use crate::WriteError;

/// How long a writer trusts that a table has no declared schema.
pub(crate) const UNDECLARED_RECHECK: chrono::Duration = chrono::Duration::seconds(5);

/// The declared schemas a writer has seen, and what conforming to them changed.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    tables: HashMap<String, Known>,
    report: ConformReport,
}

#[derive(Debug, Clone)]
enum Known {
    Declared(SchemaRef),
    Undeclared { checked: DateTime<Utc> },
}

impl Declarations {
    /// `batch` of `table` as the table holds it: conformed to its declared schema, or as it
    /// is when the table has none.
    pub(crate) async fn conform<'b>(
        &mut self,
        store: &Store,
        workspace: &str,
        table: &str,
        batch: &'b RecordBatch,
        now: DateTime<Utc>,
    ) -> Result<Cow<'b, RecordBatch>, WriteError> {
        let known = match self.tables.get(table) {
            Some(Known::Declared(schema)) => Some(schema.clone()),
            Some(Known::Undeclared { checked })
                if now >= *checked && now < *checked + UNDECLARED_RECHECK =>
            {
                None
            }
            _ => {
                let manifest = store.catalog().manifest(workspace, table).await?;
                let known = match &manifest.declared {
                    Some(schema) => Known::Declared(schema.clone()),
                    None => Known::Undeclared { checked: now },
                };
                self.tables.insert(table.to_owned(), known);
                manifest.declared
            }
        };
        let Some(declared) = known else {
            return Ok(Cow::Borrowed(batch));
        };
        let (rows, report) = conform_to_declared(table, batch, &declared)?;
        if !report.is_empty() {
            tracing::debug!(workspace, table, nulled = report.nulled, undeclared = ?report.undeclared, "rows conformed to the declared schema");
        }
        self.report.absorb(&report);
        Ok(Cow::Owned(rows))
    }

    /// What conforming changed so far.
    pub(crate) fn report(&self) -> &ConformReport {
        &self.report
    }
}
