//! Fakes for the control plane's ports: an in-memory vault, identity directory and accounts.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use logvault_control::{ControlError, ControlPlane, ControlPorts, UserIdentity};
use logvault_core::{TestClock, Timings};
use logvault_crypto::{Key256, SecretBytes, aead};
use logvault_kms::{
    KeyProperties, KeyRef, KeyType, KeyVault, KeyVersionProperties, PrincipalId, VaultError,
    VaultProperties, WrappedKey,
};

#[derive(Debug, Default)]
pub struct FakeVaultState {
    pub vaults: BTreeMap<String, VaultProperties>,
    /// (vault, key) -> versions (name, enabled, material)
    pub keys: BTreeMap<(String, String), Vec<(String, bool, Arc<Key256>)>>,
    pub key_enabled: BTreeMap<(String, String), bool>,
    /// principal -> permissions on a vault
    pub grants: BTreeSet<(String, String, String)>,
    pub outage: bool,
}

#[derive(Debug, Default)]
pub struct FakeVault {
    pub state: Mutex<FakeVaultState>,
}

impl FakeVault {
    pub fn add_vault(&self, name: &str, region: &str, recoverable: bool) -> String {
        let uri = format!("https://{name}.vault.local");
        self.state.lock().unwrap().vaults.insert(
            name.into(),
            VaultProperties {
                name: name.into(),
                uri: uri.clone(),
                region: region.into(),
                tenant: "local".into(),
                soft_delete: recoverable,
                purge_protection: recoverable,
            },
        );
        uri
    }

    pub fn add_key(&self, vault: &str, key: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let versions = s.keys.entry((vault.into(), key.into())).or_default();
        let version = format!("v{}", versions.len() + 1);
        versions.push((version.clone(), true, Arc::new(Key256::generate().unwrap())));
        s.key_enabled.insert((vault.into(), key.into()), true);
        version
    }

    pub fn grant(&self, vault: &str, principal: &PrincipalId, perms: &[&str]) {
        let mut s = self.state.lock().unwrap();
        for p in perms {
            s.grants
                .insert((vault.into(), principal.0.clone(), (*p).into()));
        }
    }

    pub fn revoke_all(&self, vault: &str, principal: &PrincipalId) {
        let mut s = self.state.lock().unwrap();
        s.grants
            .retain(|(v, p, _)| !(v == vault && p == &principal.0));
    }

    fn check(&self, principal: &PrincipalId, key: &KeyRef, perm: &str) -> Result<(), VaultError> {
        let s = self.state.lock().unwrap();
        if s.outage {
            return Err(VaultError::Transient {
                vault: key.vault.clone(),
                reason: "connection refused".into(),
            });
        }
        if !s.vaults.contains_key(&key.vault) {
            return Err(VaultError::VaultNotFound {
                vault: key.vault.clone(),
            });
        }
        if !s
            .grants
            .contains(&(key.vault.clone(), principal.0.clone(), perm.into()))
        {
            return Err(VaultError::Forbidden {
                vault: key.vault.clone(),
                principal: principal.0.clone(),
                permission: perm.into(),
            });
        }
        Ok(())
    }

    fn material(&self, key: &KeyRef) -> Result<(String, Arc<Key256>), VaultError> {
        let s = self.state.lock().unwrap();
        let id = (key.vault.clone(), key.name.clone());
        let not_found = || VaultError::KeyNotFound {
            vault: key.vault.clone(),
            key: key.name.clone(),
            version: key.version_or_latest().into(),
        };
        let versions = s.keys.get(&id).ok_or_else(not_found)?;
        if !s.key_enabled.get(&id).copied().unwrap_or(false) {
            return Err(VaultError::Disabled {
                vault: key.vault.clone(),
                key: key.name.clone(),
                version: None,
            });
        }
        let (v, enabled, k) = match &key.version {
            Some(want) => versions
                .iter()
                .find(|(v, _, _)| v == want)
                .ok_or_else(not_found)?,
            None => versions.last().ok_or_else(not_found)?,
        };
        if !enabled {
            return Err(VaultError::Disabled {
                vault: key.vault.clone(),
                key: key.name.clone(),
                version: Some(v.clone()),
            });
        }
        Ok((v.clone(), Arc::clone(k)))
    }
}

#[async_trait]
impl KeyVault for FakeVault {
    async fn vault_properties(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        self.check(principal, key, "get")?;
        Ok(self.state.lock().unwrap().vaults[&key.vault].clone())
    }

    async fn get_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        self.check(principal, key, "get")?;
        let (version, _) = self.material(key)?;
        Ok(KeyProperties {
            name: key.name.clone(),
            vault: key.vault.clone(),
            kid: format!(
                "https://{}.vault.local/keys/{}/{version}",
                key.vault, key.name
            ),
            kty: KeyType::Oct,
            size: 256,
            enabled: true,
            version: version.clone(),
            versions: vec![KeyVersionProperties {
                version,
                enabled: true,
                created: Utc::now(),
            }],
            deleted: None,
            created: Utc::now(),
            scheduled_purge_date: None,
        })
    }

    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        self.check(principal, key, "wrapKey")?;
        let (version, k) = self.material(key)?;
        Ok(WrappedKey {
            vault: key.vault.clone(),
            key: key.name.clone(),
            version,
            alg: "A256GCM".into(),
            value: aead::seal_secret(&k, b"fake", plaintext).unwrap(),
        })
    }

    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        let key = wrapped.key_ref();
        self.check(principal, &key, "unwrapKey")?;
        let (_, k) = self.material(&key)?;
        aead::open_secret(&k, b"fake", &wrapped.value, "fake").map_err(|e| VaultError::BadRequest {
            vault: key.vault.clone(),
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, Default)]
pub struct FakePorts {
    pub vault: Arc<FakeVault>,
    pub identities: Mutex<BTreeMap<String, UserIdentity>>,
    pub system_principals: Mutex<Vec<String>>,
    /// cluster -> (double encryption, key the account key is bound to)
    pub accounts: Mutex<BTreeMap<String, (bool, Option<KeyRef>)>>,
}

impl FakePorts {
    pub fn add_identity(&self, name: &str) -> UserIdentity {
        let identity = UserIdentity {
            id: format!(
                "/subscriptions/local/resourceGroups/local/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            ),
            principal_id: PrincipalId(format!("ua-{name}")),
            tenant: "local".into(),
        };
        self.identities
            .lock()
            .unwrap()
            .insert(name.into(), identity.clone());
        identity
    }

    pub fn bound_key(&self, cluster: &str) -> Option<KeyRef> {
        self.accounts
            .lock()
            .unwrap()
            .get(cluster)
            .and_then(|a| a.1.clone())
    }
}

#[async_trait]
impl ControlPorts for FakePorts {
    fn vault(&self) -> Arc<dyn KeyVault> {
        self.vault.clone()
    }

    async fn create_system_identity(
        &self,
        cluster_resource_id: &str,
        _region: &str,
        _tenant: &str,
    ) -> Result<PrincipalId, ControlError> {
        let mut all = self.system_principals.lock().unwrap();
        all.push(cluster_resource_id.into());
        Ok(PrincipalId(format!("sys-{}", all.len())))
    }

    async fn user_identity(&self, name_or_id: &str) -> Result<Option<UserIdentity>, ControlError> {
        let all = self.identities.lock().unwrap();
        Ok(all
            .iter()
            .find(|(name, i)| *name == name_or_id || i.id == name_or_id)
            .map(|(_, i)| i.clone()))
    }

    async fn provision_account(
        &self,
        cluster: &str,
        double_encryption: bool,
    ) -> Result<(), ControlError> {
        self.accounts
            .lock()
            .unwrap()
            .entry(cluster.into())
            .or_insert((double_encryption, None));
        Ok(())
    }

    async fn bind_account_key(
        &self,
        cluster: &str,
        key: &KeyRef,
        principal: &PrincipalId,
    ) -> Result<(), ControlError> {
        let secret = SecretBytes::from(Key256::generate().unwrap());
        let wrapped = self.vault.wrap_key(principal, key, &secret).await?;
        self.vault.unwrap_key(principal, &wrapped).await?;
        self.accounts
            .lock()
            .unwrap()
            .get_mut(cluster)
            .ok_or_else(|| ControlError::Provisioning {
                cluster: cluster.into(),
                reason: "no account".into(),
            })?
            .1 = Some(key.clone());
        Ok(())
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub ports: Arc<FakePorts>,
    pub plane: ControlPlane,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let ports = Arc::new(FakePorts::default());
    let plane = ControlPlane::open(
        dir.path(),
        Arc::new(clock.clone()),
        Timings::default(),
        ports.clone(),
    );
    Fixture {
        dir,
        clock,
        ports,
        plane,
    }
}

impl Fixture {
    /// Another control plane on the same state (another process).
    pub fn reopen(&self) -> ControlPlane {
        ControlPlane::open(
            self.dir.path(),
            Arc::new(self.clock.clone()),
            Timings::default(),
            self.ports.clone(),
        )
    }

    /// Moves past the asynchronous operation time.
    pub fn finish_operations(&self) {
        self.clock.advance(chrono::Duration::seconds(
            Timings::default().async_operation_secs + 1,
        ));
    }

    /// A provisioned cluster with a system identity.
    pub async fn provisioned(&self, name: &str) -> logvault_control::Cluster {
        self.plane
            .create_cluster(logvault_control::ClusterSpec::new(name))
            .await
            .unwrap();
        self.finish_operations();
        self.plane.get_cluster(name).unwrap()
    }

    /// A recoverable vault with a key the cluster's identity may use; returns key properties.
    pub fn key_for(
        &self,
        cluster: &logvault_control::Cluster,
    ) -> logvault_control::KeyVaultProperties {
        let uri = self.ports.vault.add_vault("kv-main", "local", true);
        self.ports.vault.add_key("kv-main", "cmk");
        self.ports.vault.grant(
            "kv-main",
            cluster.identity.principal_id.as_ref().unwrap(),
            &["get", "wrapKey", "unwrapKey"],
        );
        logvault_control::KeyVaultProperties {
            key_vault_uri: uri,
            key_name: "cmk".into(),
            key_version: String::new(),
        }
    }
}

pub fn code(err: &ControlError) -> u16 {
    err.code()
}
