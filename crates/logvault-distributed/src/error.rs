//! The crate's one error enum.

use datafusion::error::DataFusionError;

/// Errors of distributed queries. Messages are lowercase and name the workspace, table,
/// storage account or function at fault; they never hold key material.
#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    /// An executor could not get a storage account's key from the vault: the key is revoked,
    /// disabled or deleted, or the cluster's identity lost its permission. Nothing of the
    /// account was read on that executor.
    #[error(
        "executor {executor} cannot read storage account {account}: its key is unavailable ({reason})"
    )]
    KeyUnavailable {
        /// The executor (its id in the cluster, or `in-process`).
        executor: String,
        /// The storage account (`service`, `cluster-<name>`).
        account: String,
        /// The vault's answer, naming the vault, key and principal.
        reason: String,
    },
    /// A scan names a file that is not a logvault segment, or a storage account that does not
    /// open on the executor.
    #[error("executor {executor} cannot open segment {path}: {reason}")]
    Segment {
        /// The executor.
        executor: String,
        /// The file's path in the account router's namespace.
        path: String,
        /// Why.
        reason: String,
    },
    /// A plan holds a function that the cluster cannot rebuild from its name (most of KQL's
    /// function library is planned with per-call state that is not serialisable yet).
    #[error(
        "function {function} cannot run on a Ballista cluster yet: run the query on one node (distributed: false)"
    )]
    UnsupportedFunction {
        /// The function's name.
        function: String,
    },
    /// A serialised logvault scan or table could not be read: another logvault version, or
    /// damaged bytes.
    #[error("distributed plan of {what} cannot be read: {reason}")]
    Codec {
        /// What was being decoded (a table, a scan).
        what: String,
        /// Why.
        reason: String,
    },
    /// The cluster (scheduler or executor) could not be started or reached.
    #[error("ballista cluster at {address}: {reason}")]
    Cluster {
        /// The scheduler's address, or `in-process`.
        address: String,
        /// Ballista's message.
        reason: String,
    },
    /// An executor's encrypted shuffle could not write, serve or read a stage's output, or was
    /// asked for a shuffle it does not support.
    #[error("executor {executor}: encrypted shuffle: {reason}")]
    Shuffle {
        /// The executor.
        executor: String,
        /// What failed, naming the job, stage, partition and file where there is one.
        reason: String,
    },
    /// Planning or running the query failed (DataFusion's or Ballista's message).
    #[error("distributed query failed: {message}")]
    Query {
        /// What failed.
        message: String,
    },
}

impl DistributedError {
    /// The named error an executor or the scheduler reported, recovered from the text Ballista
    /// hands the client (a failed job's message holds the error in its debug form:
    /// `KeyUnavailable { executor: "...", account: "...", reason: "..." }`); `None` when the
    /// text holds none of [`Self::KeyUnavailable`] and [`Self::UnsupportedFunction`].
    /// Ballista may have quoted it again on the way (`function: \\\"f\\\"`): it is read
    /// at whatever depth it is.
    pub fn from_remote(text: &str) -> Option<Self> {
        if let Some(at) = text.find("KeyUnavailable {") {
            let rest = unquoted(&text[at..], "executor")?;
            return Some(Self::KeyUnavailable {
                executor: debug_field(&rest, "executor")?,
                account: debug_field(&rest, "account")?,
                reason: debug_field(&rest, "reason")?,
            });
        }
        let at = text.find("UnsupportedFunction {")?;
        let rest = unquoted(&text[at..], "function")?;
        Some(Self::UnsupportedFunction {
            function: debug_field(&rest, "function")?,
        })
    }

    /// As a DataFusion error, for the traits that return one.
    pub(crate) fn into_df(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl From<DataFusionError> for DistributedError {
    fn from(e: DataFusionError) -> Self {
        Self::Query {
            message: e.strip_backtrace(),
        }
    }
}

/// `text`, a value in its debug form starting with `first` (its first string field), with the
/// quoting it went through since undone: as many times as there are backslashes before that
/// field's opening quote.
fn unquoted(text: &str, first: &str) -> Option<String> {
    let key = format!("{first}: ");
    let at = text.find(&key)? + key.len();
    let depth = text[at..].chars().take_while(|c| *c == '\\').count();
    let mut out = text.to_owned();
    for _ in 0..depth {
        let mut once = String::with_capacity(out.len());
        let mut chars = out.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                once.push(c);
                continue;
            }
            match chars.next() {
                Some(q @ ('\\' | '"')) => once.push(q),
                Some(other) => {
                    once.push('\\');
                    once.push(other);
                }
                None => once.push('\\'),
            }
        }
        out = once;
    }
    Some(out)
}

/// The string field `name` of a value in its debug form at the start of `text`
/// (`name: "..."`, with Rust's escapes undone).
fn debug_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("{name}: \""))? + name.len() + 3;
    let mut out = String::new();
    let mut chars = text[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    // \u{XXXX}
                    let code: String = chars
                        .by_ref()
                        .skip_while(|c| *c == '{')
                        .take_while(|c| *c != '}')
                        .collect();
                    out.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_errors_are_recovered_from_their_debug_form_in_a_job_s_message() {
        let sent = DistributedError::KeyUnavailable {
            executor: "executor-2".into(),
            account: "cluster-c1".into(),
            reason: "key vault call \"unwrap\" refused:\n key 'cmk' is disabled \u{e9}".into(),
        };
        let text = format!("Job 0AB failed: Execution(\"task failed: External({sent:?})\")");
        let got = DistributedError::from_remote(&text);
        assert_eq!(
            got.as_ref().map(ToString::to_string),
            Some(sent.to_string()),
            "{text}"
        );
        let sent = DistributedError::UnsupportedFunction {
            function: "hash_sha256".into(),
        };
        let text = format!("Plan(\"{sent:?}\")");
        assert_eq!(
            DistributedError::from_remote(&text).map(|e| e.to_string()),
            Some(sent.to_string())
        );
        // Quoted again on the way, twice (as Ballista hands a plan the scheduler refused).
        let twice = format!("{:?}", format!("Plan({:?})", format!("External({sent:?})")));
        assert_eq!(
            DistributedError::from_remote(&twice).map(|e| e.to_string()),
            Some(sent.to_string()),
            "{twice}"
        );
        let sent = DistributedError::KeyUnavailable {
            executor: "executor-1".into(),
            account: "cluster-c1".into(),
            reason: "vault \"kv\" said:\n\\ disabled".into(),
        };
        let once = format!("Status {{ message: {:?} }}", format!("External({sent:?})"));
        assert_eq!(
            DistributedError::from_remote(&once).map(|e| e.to_string()),
            Some(sent.to_string()),
            "{once}"
        );
        assert!(DistributedError::from_remote("Execution(\"executor lost\")").is_none());
        // A cut message is not made into an error with a guessed field.
        assert!(DistributedError::from_remote("KeyUnavailable { executor: \"e\"").is_none());
    }
}
