//! Target of the control plane's state file (`HOME/control/state.json`, plain JSON).
//!
//! A fixture state is made once per process by real operations (workspaces, one soft-deleted;
//! a cluster whose creation completed; a link; a hot window). Each input replaces the file;
//! the control plane is then put through its reads and a few writes. It must refuse a damaged
//! file with an error naming it (never reset it, never panic), and serve any file it accepts.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use logvault_control::{
    ClusterSpec, ControlError, ControlPlane, ControlPorts, UserIdentity, WorkspaceSpec,
};
use logvault_core::{TestClock, Timings};
use logvault_crypto::SecretBytes;
use logvault_kms::{
    KeyProperties, KeyRef, KeyVault, PrincipalId, VaultError, VaultProperties, WrappedKey,
};

/// Ports that provision nothing and know no vault: enough for workspaces and clusters without
/// a key.
#[derive(Debug)]
struct Ports;

#[derive(Debug)]
struct NoVault;

fn unreachable_vault(key: &KeyRef) -> VaultError {
    VaultError::Transient {
        vault: key.vault.clone(),
        reason: "no vault in the fuzz fixture".into(),
    }
}

#[async_trait]
impl KeyVault for NoVault {
    async fn vault_properties(
        &self,
        _: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        Err(unreachable_vault(key))
    }
    async fn get_key(&self, _: &PrincipalId, key: &KeyRef) -> Result<KeyProperties, VaultError> {
        Err(unreachable_vault(key))
    }
    async fn wrap_key(
        &self,
        _: &PrincipalId,
        key: &KeyRef,
        _: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        Err(unreachable_vault(key))
    }
    async fn unwrap_key(
        &self,
        _: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        Err(unreachable_vault(&wrapped.key_ref()))
    }
}

#[async_trait]
impl ControlPorts for Ports {
    fn vault(&self) -> Arc<dyn KeyVault> {
        Arc::new(NoVault)
    }
    async fn create_system_identity(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<PrincipalId, ControlError> {
        Ok(PrincipalId("00000000-0000-4000-8000-00000000f022".into()))
    }
    async fn user_identity(&self, _: &str) -> Result<Option<UserIdentity>, ControlError> {
        Ok(None)
    }
    async fn provision_account(&self, _: &str, _: bool) -> Result<(), ControlError> {
        Ok(())
    }
    async fn bind_account_key(
        &self,
        cluster: &str,
        _: &KeyRef,
        _: &PrincipalId,
    ) -> Result<(), ControlError> {
        Err(ControlError::Provisioning {
            cluster: cluster.to_owned(),
            reason: "no vault in the fuzz fixture".into(),
        })
    }
}

fn plane(dir: &Path, clock: &TestClock) -> ControlPlane {
    ControlPlane::open(
        dir,
        Arc::new(clock.clone()),
        Timings::default(),
        Arc::new(Ports),
    )
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn build() -> Vec<u8> {
    let dir = crate::setup("temp dir", tempfile::tempdir());
    let clock = TestClock::new(start());
    let cp = plane(dir.path(), &clock);
    let runtime = crate::setup(
        "runtime",
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    );
    for ws in ["ws-one", "ws-two", "ws-gone"] {
        crate::setup("workspace", cp.create_workspace(WorkspaceSpec::new(ws)));
    }
    crate::setup("delete", cp.delete_workspace("ws-gone"));
    crate::setup("hot window", cp.set_workspace_hot_window("ws-two", Some(3)));
    crate::setup(
        "cluster",
        runtime.block_on(cp.create_cluster(ClusterSpec::new("fuzz1"))),
    );
    clock.advance(Duration::seconds(60));
    crate::setup("link", cp.link_workspace("ws-one", "fuzz1"));
    crate::setup("read", std::fs::read(dir.path().join("state.json")))
}

/// The fixture's state file.
pub fn fixture_state() -> &'static [u8] {
    static FIXTURE: OnceLock<Vec<u8>> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Installs `bytes` as the state file and runs the control plane's reads and writes on it.
/// Returns whether the file was accepted.
pub fn state_target(bytes: &[u8]) -> bool {
    let dir = crate::setup("temp dir", tempfile::tempdir());
    let path = dir.path().join("state.json");
    crate::setup("write", std::fs::write(&path, bytes));
    let clock = TestClock::new(start() + Duration::seconds(120));
    let cp = plane(dir.path(), &clock);
    let accepted = match cp.list_workspaces() {
        Ok(list) => {
            for ws in &list {
                let _ = cp
                    .get_workspace(&ws.name)
                    .map(|w| logvault_control::workspace_json(&w, None));
            }
            true
        }
        Err(e) => {
            check_error(&e, bytes, &path);
            false
        }
    };
    let run = |r: Result<(), ControlError>| {
        if let Err(e) = r
            && !accepted
        {
            check_error(&e, bytes, &path);
        }
    };
    run(cp.list_clusters(None, None).map(|cs| {
        for c in cs {
            let _ = logvault_control::cluster_json(&c, &[]);
            let _ = c.key_ref();
            let _ = c.not_ready_reason();
        }
    }));
    run(cp.list_deleted_clusters().map(drop));
    run(cp.now().map(drop));
    run(cp.create_workspace(WorkspaceSpec::new("ws-new")).map(drop));
    run(cp.link_workspace("ws-two", "fuzz1").map(drop));
    run(cp.unlink_workspace("ws-one").map(drop));
    run(cp.delete_workspace("ws-two").map(drop));
    run(cp.recover_workspace("ws-gone").map(drop));
    run(cp.delete_cluster("fuzz1").map(drop));
    clock.advance(Duration::days(20));
    run(cp.list_workspaces().map(drop));
    if !accepted {
        // A damaged file is never reset or replaced.
        let after = crate::setup("read", std::fs::read(&path));
        assert_eq!(after, bytes, "a state file that was refused was changed");
    }
    accepted
}

fn check_error(e: &ControlError, _bytes: &[u8], path: &Path) {
    if let ControlError::Storage { path: p, reason } = e {
        assert!(
            p.contains("state.json") || path.display().to_string().contains(p.as_str()),
            "a storage error that does not name the state file: {p}: {reason}"
        );
    }
}
