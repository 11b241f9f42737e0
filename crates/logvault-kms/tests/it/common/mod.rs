//! Helpers shared by the local vault's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_kms::local::CreateVaultOptions;
use logvault_kms::{IdentityOptions, KeyRef, KeyType, LocalVault, PrincipalId};
use tempfile::TempDir;

/// A local vault in a temporary directory, on a test clock.
pub struct Fixture {
    pub dir: TempDir,
    pub clock: TestClock,
    pub vault: LocalVault,
}

pub fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(t0());
        let vault = LocalVault::open(&dir.path().join("vault"), Arc::new(clock.clone())).unwrap();
        Self { dir, clock, vault }
    }

    /// Another handle on the same directory, as a second process would open it.
    pub fn reopen(&self) -> LocalVault {
        LocalVault::open(&self.dir.path().join("vault"), Arc::new(self.clock.clone())).unwrap()
    }

    /// A recoverable vault (soft delete and purge protection on).
    pub fn recoverable_vault(&self, name: &str) {
        self.vault
            .create_vault(
                name,
                &CreateVaultOptions {
                    purge_protection: true,
                    ..CreateVaultOptions::default()
                },
            )
            .unwrap();
    }

    /// A new user-assigned identity's principal.
    pub fn principal(&self, name: &str) -> PrincipalId {
        self.vault
            .identities()
            .create_user_assigned(name, &IdentityOptions::default())
            .unwrap()
            .principal_id
    }

    /// A principal granted get, wrapKey and unwrapKey on `vault` by an access policy.
    pub fn granted(&self, vault: &str, name: &str) -> PrincipalId {
        let p = self.principal(name);
        self.vault
            .set_policy(vault, &p, &perms(&["get", "wrapKey", "unwrapKey"]))
            .unwrap();
        p
    }

    /// A key and a reference to its latest version.
    pub fn key(&self, vault: &str, name: &str, kty: KeyType, size: Option<u32>) -> KeyRef {
        self.vault.create_key(vault, name, kty, size).unwrap();
        KeyRef::latest(vault, name)
    }
}

pub fn perms(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
