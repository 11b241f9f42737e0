//! Roles (Azure's names) and what each allows on this server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A role a token carries. Names are Azure's built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `Owner`: everything.
    Owner,
    /// `Log Analytics Contributor`: queries, metrics and the Log Analytics management API
    /// (clusters, workspaces, links, rules), not ingestion.
    Contributor,
    /// `Log Analytics Reader`: queries and metrics.
    Reader,
    /// `Monitoring Metrics Publisher`: ingestion only (as for Azure's Logs Ingestion API).
    Publisher,
    /// `Monitoring Reader`: queries and metrics.
    MonitoringReader,
    /// `Key Vault Crypto Officer`: the Key Vault keys API, management and cryptography.
    CryptoOfficer,
    /// `Key Vault Crypto Service Encryption User`: read keys, wrap and unwrap.
    CryptoServiceEncryptionUser,
    /// `Support Operator` (logvault's own, not an Azure role): a support engineer who may query
    /// a workspace only under an approved, unexpired Customer Lockbox request, every query
    /// audited (R-I1). Allows nothing by itself.
    SupportOperator,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read data (the query API).
    Query,
    /// Write data (every ingestion path).
    Ingest,
    /// Read the server's metrics.
    Metrics,
    /// Read management resources (ARM GETs and lists: clusters, workspaces, links, rules).
    ManageRead,
    /// Change Log Analytics resources (ARM PUT, PATCH, DELETE).
    Manage,
    /// Change key vaults, their access policies and role assignments (Microsoft.KeyVault,
    /// Microsoft.Authorization).
    ManageVaults,
    /// Read keys of the Key Vault API (get, list, versions).
    KeyRead,
    /// Change keys (create, update, rotate, delete, recover, purge).
    KeyManage,
    /// Wrap and unwrap with a key.
    KeyCrypto,
}

impl Permission {
    /// What the permission allows, for a refusal's message.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Query => "reading data",
            Permission::Ingest => "ingesting data",
            Permission::Metrics => "reading metrics",
            Permission::ManageRead => "reading management resources",
            Permission::Manage => "changing Log Analytics resources",
            Permission::ManageVaults => "changing key vaults and their permissions",
            Permission::KeyRead => "reading keys",
            Permission::KeyManage => "managing keys",
            Permission::KeyCrypto => "wrapping and unwrapping with keys",
        }
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Owner,
        Role::Contributor,
        Role::Reader,
        Role::Publisher,
        Role::MonitoringReader,
        Role::CryptoOfficer,
        Role::CryptoServiceEncryptionUser,
        Role::SupportOperator,
    ];

    /// Azure's name of the role.
    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Contributor => "Log Analytics Contributor",
            Role::Reader => "Log Analytics Reader",
            Role::Publisher => "Monitoring Metrics Publisher",
            Role::MonitoringReader => "Monitoring Reader",
            Role::CryptoOfficer => "Key Vault Crypto Officer",
            Role::CryptoServiceEncryptionUser => "Key Vault Crypto Service Encryption User",
            Role::SupportOperator => "Support Operator",
        }
    }

    /// Whether the role allows `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Contributor => matches!(permission, Query | Metrics | ManageRead | Manage),
            Role::Reader | Role::MonitoringReader => {
                matches!(permission, Query | Metrics | ManageRead)
            }
            Role::Publisher => permission == Ingest,
            Role::CryptoOfficer => matches!(permission, KeyRead | KeyManage | KeyCrypto),
            Role::CryptoServiceEncryptionUser => matches!(permission, KeyRead | KeyCrypto),
            // An operator's queries go through the Lockbox gate (`query::run`), not a role.
            Role::SupportOperator => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                format!(
                    "unknown role '{wanted}'; roles: {}",
                    Role::ALL.map(Role::name).join(", ")
                )
            })
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_roles_allow_what_azure_s_do() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert_eq!("log analytics reader".parse::<Role>(), Ok(Role::Reader));
        assert!("Admin".parse::<Role>().unwrap_err().contains("Owner"));
        assert!(!Role::Reader.allows(Permission::Ingest));
        assert!(Role::Reader.allows(Permission::Query));
        assert!(!Role::Publisher.allows(Permission::Query));
        assert!(Role::Publisher.allows(Permission::Ingest));
        assert!(!Role::Contributor.allows(Permission::Ingest));
        assert!(Role::Owner.allows(Permission::Ingest));
        assert!(!Role::CryptoOfficer.allows(Permission::Query));
        assert!(!Role::SupportOperator.allows(Permission::Query));
        assert!(Role::CryptoOfficer.allows(Permission::KeyManage));
        assert!(!Role::CryptoServiceEncryptionUser.allows(Permission::KeyManage));
        assert!(Role::CryptoServiceEncryptionUser.allows(Permission::KeyCrypto));
        assert!(Role::Contributor.allows(Permission::Manage));
        assert!(!Role::Contributor.allows(Permission::ManageVaults));
        assert!(!Role::Reader.allows(Permission::Manage));
        assert!(Role::Reader.allows(Permission::ManageRead));
        assert!(!Role::Publisher.allows(Permission::ManageRead));
    }
}
