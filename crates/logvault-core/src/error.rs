use crate::names::NameKind;

/// Errors shared by every layer: malformed names and ids, bad configuration values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    /// A resource name does not follow the rules of its kind.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// What the name was for.
        kind: NameKind,
        /// The offending name.
        name: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A resource id is not of the form `/subscriptions/S/resourceGroups/G/providers/...`.
    #[error("invalid resource id {id:?}: {reason}")]
    InvalidResourceId {
        /// The offending id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration {field}: {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
