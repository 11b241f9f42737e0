//! Injected parts: an engine whose data rests in object_store's in-memory store, whose customer
//! key lives in a vault implemented here (outside logvault's crates, as a partner's HSM or
//! Azure Key Vault client would be), and whose queries share a memory-limited runtime.
//!
//! `cargo run -p logvault --example injected` (CI runs it: it fails if any step misbehaves).
#![allow(clippy::print_stdout)] // an example program prints what it does

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, ensure};
use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::keys::KeyState;
use logvault::kms::{
    KeyProperties, KeyRef, KeyType, KeyVault, KeyVersionProperties, PrincipalId, VaultError,
    VaultProperties, WrappedKey,
};
use logvault::{Engine, IngestOptions};
use logvault_crypto::{Key256, SecretBytes, aead};

/// A vault with one AES-256 key of one version, which its owner can disable and enable. It
/// grants every principal (a real one would check its own policies).
#[derive(Debug)]
struct PartnerVault {
    name: String,
    key: String,
    material: Key256,
    enabled: AtomicBool,
}

impl PartnerVault {
    const VERSION: &'static str = "v1";

    fn new(name: &str, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.into(),
            key: key.into(),
            material: Key256::generate()?,
            enabled: AtomicBool::new(true),
        })
    }

    fn check(&self, key: &str, version: Option<&str>) -> Result<(), VaultError> {
        if key != self.key || version.is_some_and(|v| v != Self::VERSION) {
            return Err(VaultError::KeyNotFound {
                vault: self.name.clone(),
                key: key.into(),
                version: version.unwrap_or("latest").into(),
            });
        }
        if !self.enabled.load(Ordering::SeqCst) {
            return Err(VaultError::Disabled {
                vault: self.name.clone(),
                key: key.into(),
                version: None,
            });
        }
        Ok(())
    }

    fn aad(&self) -> Vec<u8> {
        format!("partner-vault/{}/{}/{}", self.name, self.key, Self::VERSION).into_bytes()
    }
}

#[async_trait]
impl KeyVault for PartnerVault {
    async fn vault_properties(
        &self,
        _principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        self.check(&key.name, None)?;
        Ok(VaultProperties {
            name: self.name.clone(),
            uri: format!("https://{}.vault.local", self.name),
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
        })
    }

    async fn get_key(
        &self,
        _principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        self.check(&key.name, key.version.as_deref())?;
        let created = Utc::now();
        Ok(KeyProperties {
            name: self.key.clone(),
            vault: self.name.clone(),
            kid: format!(
                "https://{}.vault.local/keys/{}/{}",
                self.name,
                self.key,
                Self::VERSION
            ),
            kty: KeyType::Oct,
            size: 256,
            enabled: true,
            version: Self::VERSION.into(),
            versions: vec![KeyVersionProperties {
                version: Self::VERSION.into(),
                enabled: true,
                created,
            }],
            created,
            deleted: None,
            scheduled_purge_date: None,
        })
    }

    async fn wrap_key(
        &self,
        _principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        self.check(&key.name, key.version.as_deref())?;
        let value = aead::seal_secret(&self.material, &self.aad(), plaintext).map_err(|e| {
            VaultError::Internal {
                vault: self.name.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(WrappedKey {
            vault: self.name.clone(),
            key: self.key.clone(),
            version: Self::VERSION.into(),
            alg: "A256GCM".into(),
            value,
        })
    }

    async fn unwrap_key(
        &self,
        _principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        self.check(&wrapped.key, Some(&wrapped.version))?;
        aead::open_secret(&self.material, &self.aad(), &wrapped.value, "wrapped key").map_err(|e| {
            VaultError::BadRequest {
                vault: self.name.clone(),
                reason: e.to_string(),
            }
        })
    }
}

async fn count(engine: &Engine, ws: &str, sql: &str) -> anyhow::Result<usize> {
    let batches: Vec<_> = engine.query(ws, sql).await?.try_collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let storage = Arc::new(object_store::memory::InMemory::new());
    let partner = Arc::new(PartnerVault::new("partner-kv", "cmk")?);
    let engine = Engine::builder(home.path())
        .object_store(storage.clone())
        .key_vault(partner.clone())
        .query_memory_limit(512 << 20)
        .open()
        .await?;
    println!("engine over an in-memory object store, customer keys in an injected vault");

    engine
        .control()
        .create_workspace(WorkspaceSpec::new("app-logs"))?;
    let lines = |tag: &str| -> String {
        (0..500)
            .map(|i| {
                format!(
                    "{{\"TimeGenerated\":\"2026-01-01T00:{:02}:{:02}Z\",\"Tag\":\"{tag}\"}}\n",
                    i / 60 % 60,
                    i % 60
                )
            })
            .collect()
    };
    let options = IngestOptions::new(Format::JsonLines);
    let r = engine
        .ingest(
            "app-logs",
            "AppLogs",
            std::io::Cursor::new(lines("canary-mmk")),
            &options,
            None,
        )
        .await?;
    ensure!(r.accepted == 500 && r.account == "service", "{r:?}");
    println!("500 rows under the service key");

    // A cluster whose key is in the partner's vault.
    let cluster = engine
        .control()
        .create_cluster(ClusterSpec::new("partner-cluster"))
        .await?;
    engine
        .control()
        .wait_cluster(&cluster.name, std::time::Duration::from_secs(30))
        .await?;
    engine
        .control()
        .update_cluster(
            &cluster.name,
            ClusterUpdate {
                key: Some(KeyVaultProperties {
                    key_vault_uri: "https://partner-kv.vault.local".into(),
                    key_name: "cmk".into(),
                    key_version: String::new(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await?;
    engine
        .control()
        .wait_cluster(&cluster.name, std::time::Duration::from_secs(30))
        .await?;
    engine.control().link_workspace("app-logs", &cluster.name)?;
    let r = engine
        .ingest(
            "app-logs",
            "AppLogs",
            std::io::Cursor::new(lines("canary-cmk")),
            &options,
            None,
        )
        .await?;
    ensure!(r.account == "cluster-partner-cluster", "{r:?}");
    let both = count(&engine, "app-logs", "SELECT Tag FROM AppLogs").await?;
    ensure!(both == 1000, "read {both} rows");
    println!("500 more under the partner's key; one query reads all {both}");

    // Nothing rests in the object store in clear.
    let objects: Vec<_> = object_store::ObjectStore::list(storage.as_ref(), None)
        .try_collect()
        .await?;
    for meta in &objects {
        let bytes = object_store::ObjectStoreExt::get(storage.as_ref(), &meta.location)
            .await?
            .bytes()
            .await?;
        ensure!(
            !bytes.windows(b"canary-".len()).any(|w| w == b"canary-"),
            "{} holds a row in clear",
            meta.location
        );
    }
    println!(
        "{} objects in the store, none holding a row in clear",
        objects.len()
    );

    // The partner disables the key: at the next check, the cluster is revoked.
    partner.enabled.store(false, Ordering::SeqCst);
    let status = engine.check_key(&cluster.name, true).await?;
    ensure!(status.key_state == KeyState::Revoked, "{status:?}");
    let refused = count(&engine, "app-logs", "SELECT Tag FROM AppLogs").await;
    ensure!(refused.is_err(), "a query ran under a revoked key");
    println!(
        "key disabled in the partner's vault: {}",
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );

    partner.enabled.store(true, Ordering::SeqCst);
    let status = engine.check_key(&cluster.name, true).await?;
    ensure!(status.key_state == KeyState::Active, "{status:?}");
    let back = count(&engine, "app-logs", "SELECT Tag FROM AppLogs")
        .await
        .context("query after the restore")?;
    ensure!(back == 1000, "read {back} rows after the restore");
    println!("key enabled again: all {back} rows readable");
    Ok(())
}
