//! The control plane of logvault: clusters, workspaces and the links between them, with every
//! rule of the service (R-C1..R-C9, R-D1..R-D4 in the requirements).
//!
//! This crate owns the resources' state (one JSON document under `HOME/control`, updated under a
//! lock and replaced atomically), the asynchronous operations of clusters, and every refusal with
//! its HTTP-like code and message (in [`rules`] and the operations). It reaches the vault, the
//! identity directory and the cluster's storage account through [`ControlPorts`], which the
//! engine implements.
//!
//! It must never: touch key material (it asks the ports to re-wrap account keys), read or write
//! log data, or print.
//!
//! ```
//! # use std::sync::Arc;
//! # use logvault_control::*;
//! # fn demo(plane: ControlPlane) -> Result<(), ControlError> {
//! let ws = plane.create_workspace(WorkspaceSpec::new("prod-logs"))?;
//! assert_eq!(ws.cluster, None);
//! # Ok(()) }
//! ```

mod artifacts;
mod clusters;
mod error;
mod lockbox;
mod model;
mod persist;
mod plane;
mod ports;
pub mod rules;
mod search;
mod storage;
mod view;
mod waiting;
mod workspaces;

pub use artifacts::{
    ARTIFACT_FORMAT_VERSION, AlertDelivery, AlertOperator, AlertOutcome, AlertRule, FiredAlert,
    FunctionParameter, SavedSearch, check_artifact_name, parse_duration, parse_function_parameters,
};
pub use clusters::{ClusterSpec, ClusterUpdate};
pub use error::ControlError;
pub use lockbox::{
    LOCKBOX_DEFAULT_HOURS, LOCKBOX_MAX_HOURS, LOCKBOX_PENDING_DAYS, LockboxAuditEntry,
    LockboxRequest, LockboxStatus, lockbox_available,
};
pub use model::{
    BillingType, Cluster, ClusterIdentity, IdentityType, KeyVaultProperties, ProvisioningState,
    Workspace,
};
pub use plane::{ControlPlane, Defaults};
pub use ports::{ControlPorts, UserIdentity};
pub use rules::{Limits, MAX_HOT_WINDOW_DAYS};
pub use search::{SEARCH_TABLE_SUFFIX, SearchJob, SearchJobStatus, check_search_job_names};
pub use storage::{DataSourceType, LinkedStorage, StorageAccountResource, StorageAccountSpec};
pub use view::{cluster_json, workspace_json};
pub use workspaces::WorkspaceSpec;
