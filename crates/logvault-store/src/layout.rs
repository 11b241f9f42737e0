//! Names and paths: storage account ids, segment ids, and where every object lives.
//!
//! The layout (format version 1, see `docs/format.md`), relative to the storage root:
//!
//! ```text
//! <account>/account.json                              account metadata (plaintext JSON)
//! <account>/keys/aek/<seq:020>.json                   wrapped account key records
//! <account>/keys/infra/<seq:020>.json                 wrapped infrastructure key (double encryption)
//! <account>/objects/segments/<ws>/<table>/<id>.parquet  segments (infrastructure layer if on)
//! service/objects/catalog/<ws>/<table>/<ver:020>.manifest  sealed catalog manifests
//! ```

use std::fmt;
use std::str::FromStr;

use logvault_core::{NameKind, validate_name};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The id of the service's own storage account.
pub const SERVICE_ACCOUNT: &str = "service";
const CLUSTER_PREFIX: &str = "cluster-";
const STORAGE_PREFIX: &str = "storage-";

/// The id of a storage account: `service` for the service's own storage, `cluster-<name>` for
/// a dedicated cluster's, `storage-<name>` for a customer's storage account resource (linked
/// storage for saved queries and alert rules, R-H2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// The service's own storage account.
    pub fn service() -> Self {
        Self(SERVICE_ACCOUNT.to_owned())
    }

    /// The storage account of the cluster `name`.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] if `name` is not a valid cluster name.
    pub fn cluster(name: &str) -> Result<Self, StoreError> {
        validate_name(NameKind::Cluster, name).map_err(|e| StoreError::InvalidName {
            kind: "storage account",
            name: format!("{CLUSTER_PREFIX}{name}"),
            reason: e.to_string(),
        })?;
        Ok(Self(format!("{CLUSTER_PREFIX}{name}")))
    }

    /// The customer storage account resource `name` (R-H2).
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] if `name` is not a valid storage account name.
    pub fn storage(name: &str) -> Result<Self, StoreError> {
        validate_name(NameKind::StorageAccount, name).map_err(|e| StoreError::InvalidName {
            kind: "storage account",
            name: format!("{STORAGE_PREFIX}{name}"),
            reason: e.to_string(),
        })?;
        Ok(Self(format!("{STORAGE_PREFIX}{name}")))
    }

    /// Parses `service`, `cluster-<name>` or `storage-<name>`.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] for anything else.
    pub fn parse(id: &str) -> Result<Self, StoreError> {
        if id == SERVICE_ACCOUNT {
            return Ok(Self::service());
        }
        if let Some(name) = id.strip_prefix(STORAGE_PREFIX) {
            return Self::storage(name);
        }
        match id.strip_prefix(CLUSTER_PREFIX) {
            Some(name) => Self::cluster(name),
            None => Err(StoreError::InvalidName {
                kind: "storage account",
                name: id.to_owned(),
                reason: "must be `service`, `cluster-<name>` or `storage-<name>`".into(),
            }),
        }
    }

    /// The storage account resource's name, for a customer storage account.
    pub fn storage_name(&self) -> Option<&str> {
        self.0.strip_prefix(STORAGE_PREFIX)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the service's own account.
    pub fn is_service(&self) -> bool {
        self.0 == SERVICE_ACCOUNT
    }

    /// The cluster's name, for a cluster's account.
    pub fn cluster_name(&self) -> Option<&str> {
        self.0.strip_prefix(CLUSTER_PREFIX)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        Self::parse(&s)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.0
    }
}

/// The id of a segment: a random UUID, unique across every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SegmentId(uuid::Uuid);

impl SegmentId {
    /// The id of the segment file at `location` (`<id>.parquet`), if it is one.
    pub(crate) fn of_file(location: &object_store::path::Path) -> Option<Self> {
        location
            .filename()
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<SegmentId>().ok())
    }

    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for SegmentId {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        // Only the canonical lowercase hyphenated form, so one id has one path.
        let id = uuid::Uuid::try_parse(s).map_err(|e| StoreError::InvalidName {
            kind: "segment id",
            name: s.to_owned(),
            reason: e.to_string(),
        })?;
        if id.hyphenated().to_string() != s {
            return Err(StoreError::InvalidName {
                kind: "segment id",
                name: s.to_owned(),
                reason: "must be a lowercase hyphenated uuid".into(),
            });
        }
        Ok(Self(id))
    }
}

impl TryFrom<String> for SegmentId {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        s.parse()
    }
}

impl From<SegmentId> for String {
    fn from(id: SegmentId) -> Self {
        id.to_string()
    }
}

/// Checks a workspace name (it becomes a path segment).
pub(crate) fn check_workspace(name: &str) -> Result<(), StoreError> {
    validate_name(NameKind::Workspace, name).map_err(|e| StoreError::InvalidName {
        kind: "workspace",
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// Checks a table name (it becomes a path segment).
pub(crate) fn check_table(name: &str) -> Result<(), StoreError> {
    validate_name(NameKind::Table, name).map_err(|e| StoreError::InvalidName {
        kind: "table",
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// Where a segment lives: its account, workspace, table and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentLocation {
    /// The storage account holding it.
    pub account: AccountId,
    /// The workspace.
    pub workspace: String,
    /// The table.
    pub table: String,
    /// The segment's id.
    pub segment: SegmentId,
}

pub(crate) const SEGMENTS_DIR: &str = "segments";
const SEGMENT_EXT: &str = ".parquet";

impl SegmentLocation {
    /// A checked location.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] if the workspace or table name is not valid.
    pub fn new(
        account: AccountId,
        workspace: &str,
        table: &str,
        segment: SegmentId,
    ) -> Result<Self, StoreError> {
        check_workspace(workspace)?;
        check_table(table)?;
        Ok(Self {
            account,
            workspace: workspace.to_owned(),
            table: table.to_owned(),
            segment,
        })
    }

    /// The path inside the account's object view (`segments/<ws>/<table>/<id>.parquet`).
    pub fn object_path(&self) -> Path {
        Path::from_iter([
            SEGMENTS_DIR,
            &self.workspace,
            &self.table,
            &format!("{}{SEGMENT_EXT}", self.segment),
        ])
    }

    /// The path in the account router's namespace (`<account>/segments/...`), which is what
    /// DataFusion sees when the router is registered as its object store.
    pub fn routed_path(&self) -> Path {
        join(&Path::from(self.account.as_str()), &self.object_path())
    }

    /// The path from the storage root (`<account>/objects/segments/...`).
    pub(crate) fn root_path(&self) -> Path {
        join(&objects_prefix(&self.account), &self.object_path())
    }

    /// Parses a path that ends in `<account>/segments/<ws>/<table>/<id>.parquet` (a routed path,
    /// possibly under a further prefix).
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] if the path is not a segment's.
    pub fn from_routed_path(path: &Path) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::InvalidName {
            kind: "segment path",
            name: path.to_string(),
            reason: reason.to_owned(),
        };
        let parts: Vec<String> = path.parts().map(|p| p.as_ref().to_owned()).collect();
        let n = parts.len();
        if n < 5 || parts[n - 4] != SEGMENTS_DIR {
            return Err(bad(
                "expected <account>/segments/<workspace>/<table>/<segment>.parquet",
            ));
        }
        let file = &parts[n - 1];
        let id = file
            .strip_suffix(SEGMENT_EXT)
            .ok_or_else(|| bad("a segment file ends in .parquet"))?;
        Self::new(
            AccountId::parse(&parts[n - 5])?,
            &parts[n - 3],
            &parts[n - 2],
            id.parse()?,
        )
    }

    /// The AAD prefix of the segment's Parquet encryption: binds the file to its format
    /// version, account, workspace, table and id, so a file moved or copied anywhere else fails.
    pub(crate) fn aad_prefix(&self) -> Vec<u8> {
        format!(
            "logvault/segment/v{}/{}/{}/{}/{}",
            crate::segment::SEGMENT_FORMAT_VERSION,
            self.account,
            self.workspace,
            self.table,
            self.segment
        )
        .into_bytes()
    }
}

impl fmt::Display for SegmentLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.account, self.workspace, self.table, self.segment
        )
    }
}

/// The account's metadata object, relative to the account's prefix.
pub(crate) const ACCOUNT_META: &str = "account.json";
/// The directory of wrapped account key records, relative to the account's prefix.
pub(crate) const AEK_DIR: &str = "keys/aek";
/// The directory of wrapped infrastructure key records, relative to the account's prefix.
pub(crate) const INFRA_DIR: &str = "keys/infra";
/// The account's object view (segments, catalog), relative to the account's prefix.
pub(crate) const OBJECTS_DIR: &str = "objects";
/// The catalog's directory inside the service account's object view.
pub(crate) const CATALOG_DIR: &str = "catalog";

/// `base` followed by every part of `rel`.
pub(crate) fn join(base: &Path, rel: &Path) -> Path {
    rel.parts().fold(base.clone(), |p, part| p.join(part))
}

/// The account's prefix from the storage root.
pub(crate) fn account_prefix(account: &AccountId) -> Path {
    Path::from(account.as_str())
}

/// The account's object view from the storage root.
pub(crate) fn objects_prefix(account: &AccountId) -> Path {
    account_prefix(account).join(OBJECTS_DIR)
}

/// The directory of one table's manifests inside the service account's object view.
pub(crate) fn manifest_dir(workspace: &str, table: &str) -> Path {
    Path::from_iter([CATALOG_DIR, workspace, table])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(AccountId::parse("service").unwrap().is_service());
        let c = AccountId::parse("cluster-prod1").unwrap();
        assert_eq!(c.cluster_name(), Some("prod1"));
        for bad in ["", "cluster-", "cluster-a/b", "other", "cluster-../x"] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_ids_have_one_form() {
        let id = SegmentId::generate();
        assert_eq!(id.to_string().parse::<SegmentId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<SegmentId>().is_err());
        assert!("not-a-uuid".parse::<SegmentId>().is_err());
    }

    #[test]
    fn segment_paths_round_trip() {
        let loc = SegmentLocation::new(
            AccountId::cluster("prod1").unwrap(),
            "ws-one",
            "Syslog",
            SegmentId::generate(),
        )
        .unwrap();
        let routed = loc.routed_path();
        assert!(
            routed
                .as_ref()
                .starts_with("cluster-prod1/segments/ws-one/Syslog/")
        );
        assert_eq!(SegmentLocation::from_routed_path(&routed).unwrap(), loc);
        let prefixed = Path::from(format!("x/y/{routed}"));
        assert_eq!(SegmentLocation::from_routed_path(&prefixed).unwrap(), loc);
        assert_eq!(
            loc.root_path().as_ref(),
            format!("cluster-prod1/objects/{}", loc.object_path())
        );
        for bad in [
            "service/segments/ws-one/Syslog/nope.parquet",
            "service/other/ws-one/Syslog/x.parquet",
            "segments/a/b",
        ] {
            assert!(SegmentLocation::from_routed_path(&Path::from(bad)).is_err());
        }
    }
}
