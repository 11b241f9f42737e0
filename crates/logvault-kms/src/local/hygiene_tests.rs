//! Key hygiene of the local vault's files: no key material in plaintext anywhere.
//!
//! The approach: the test obtains every secret only through crypto types (the account keys it
//! wraps as `Aek`, every key version's material by opening its sealed blob, the master key the
//! vault holds), and asks the crypto crate's leak check (`occurs_in`: raw bytes, hex, or base64 at
//! any alignment) about every byte of every file under the vault's directory. No raw key byte
//! leaves `logvault-crypto` to do so. The check is shown able to fail: the master key *is* in
//! `master.key` (by design), and the test asserts that it is found there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use logvault_core::TestClock;
use logvault_crypto::Aek;

use super::keys::{Material, open_material};
use super::*;
use crate::{IdentityOptions, KeyRef, KeyType, KeyVault};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn no_file_holds_key_material_in_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let vault = LocalVault::open(&dir, Arc::new(TestClock::new(Utc::now()))).unwrap();
    vault.ensure_service_key().unwrap();
    vault
        .create_vault("contoso", &CreateVaultOptions::default())
        .unwrap();
    let who = vault
        .identities()
        .create_user_assigned("cluster-id", &IdentityOptions::default())
        .unwrap()
        .principal_id;
    vault
        .set_policy("contoso", &who, &["all".to_owned()])
        .unwrap();
    vault
        .create_key("contoso", "aes", KeyType::Oct, None)
        .unwrap();
    vault
        .create_key("contoso", "rsa", KeyType::Rsa, None)
        .unwrap();
    vault.rotate_key("contoso", "aes").unwrap();

    // Wrap known account keys with every kind of key, and unwrap them (audited calls).
    let mut aeks = Vec::new();
    for key in ["aes", "rsa"] {
        let aek = Aek::generate().unwrap();
        let w = vault
            .wrap_key(&who, &KeyRef::latest("contoso", key), &aek.to_secret())
            .await
            .unwrap();
        let back = Aek::from_secret(&vault.unwrap_key(&who, &w).await.unwrap()).unwrap();
        assert_eq!(
            back.fingerprint(),
            aek.fingerprint(),
            "sealed blob decrypts"
        );
        // The wrapped blob is stored by callers; put it in the home as they would.
        fs::write(
            dir.join(format!("wrapped-{key}.json")),
            serde_json::to_vec(&w).unwrap(),
        )
        .unwrap();
        aeks.push(aek);
    }

    let all = files(&dir);
    let contents: Vec<(PathBuf, Vec<u8>)> = all
        .iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect();
    assert!(contents.len() >= 8, "{all:?}");

    // Every key version's material, opened through crypto types.
    let mut materials = 0;
    for name in ["contoso", SERVICE_VAULT] {
        let state = vault.load(name).unwrap();
        for (key_name, key) in &state.keys {
            for ver in &key.versions {
                let material = open_material(vault.master(), name, key_name, key.kty, ver).unwrap();
                for (path, bytes) in &contents {
                    let leaked = match &material {
                        Material::Oct(k) => k.occurs_in(bytes),
                        Material::Rsa(k) => k.occurs_in(bytes),
                    };
                    assert!(!leaked, "{key_name}/{} in {}", ver.version, path.display());
                }
                materials += 1;
            }
        }
    }
    assert_eq!(materials, 4, "aes v1, aes v2, rsa v1, service key");

    for (path, bytes) in &contents {
        for aek in &aeks {
            assert!(
                !aek.to_secret().occurs_in(bytes),
                "an aek in {}",
                path.display()
            );
        }
        let is_master_file = path.ends_with("master.key");
        assert_eq!(
            vault.master().occurs_in(bytes),
            is_master_file,
            "the master key is in master.key and nowhere else ({})",
            path.display()
        );
    }
}
