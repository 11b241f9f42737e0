//! Targets of the local vault's state files: `vaults/NAME/vault.json` and `identities.json`
//! (format in `docs/vault-format.md`).
//!
//! A fixture vault directory is made once per process (a vault with an `oct` key of two
//! versions, a soft-deleted key, an access policy and a role assignment; one user-assigned
//! identity). Two kinds of input:
//! - [`document_target`]: damage to a whole file, header included (what a disk does): the
//!   checksum must catch it, or the document must still be one the vault can serve;
//! - [`body_target`]: any body, written under a *correct* header (what a hand edit with the
//!   checksum recomputed does): it must be refused with an error naming the vault or file, or
//!   served, never panic.
//!
//! Every input is then put through the owner's reads and the trait calls (get, wrap, unwrap).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{TimeZone, Utc};
use logvault_core::{SharedClock, TestClock};
use logvault_crypto::Aek;
use logvault_kms::{
    IdentityOptions, KeyRef, KeyType, KeyVault, LocalVault, PrincipalId, VaultError,
};
use sha2::{Digest, Sha256};

use crate::mutate::Script;

const VAULT: &str = "fuzzvault";

struct Fixture {
    /// Relative path and bytes of every file of the vault directory.
    files: Vec<(PathBuf, Vec<u8>)>,
    principal: PrincipalId,
}

fn clock() -> SharedClock {
    Arc::new(TestClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    ))
}

fn build() -> Fixture {
    let dir = crate::setup("temp dir", tempfile::tempdir());
    let vault = crate::setup("open", LocalVault::open(dir.path(), clock()));
    let options = logvault_kms::local::CreateVaultOptions {
        purge_protection: true,
        ..Default::default()
    };
    crate::setup("vault", vault.create_vault(VAULT, &options));
    crate::setup("key", vault.create_key(VAULT, "cmk", KeyType::Oct, None));
    crate::setup("rotate", vault.rotate_key(VAULT, "cmk"));
    crate::setup("key", vault.create_key(VAULT, "old", KeyType::Oct, None));
    crate::setup("delete", vault.delete_key(VAULT, "old"));
    let identity = crate::setup(
        "identity",
        vault
            .identities()
            .create_user_assigned("fuzz-id", &IdentityOptions::default()),
    );
    let principal = identity.principal_id.clone();
    let permissions = ["get", "wrapKey", "unwrapKey"].map(String::from);
    crate::setup("policy", vault.set_policy(VAULT, &principal, &permissions));
    crate::setup(
        "role",
        vault.assign_role(
            VAULT,
            &principal,
            logvault_kms::local::CRYPTO_SERVICE_ENCRYPTION_USER,
        ),
    );
    let mut files = Vec::new();
    collect(dir.path(), dir.path(), &mut files);
    files.sort();
    Fixture { files, principal }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in crate::setup("list", std::fs::read_dir(dir)).filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_owned(), crate::setup("read", std::fs::read(&path))));
        }
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Which document a target damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// `vaults/NAME/vault.json`.
    Vault,
    /// `identities.json`.
    Identities,
}

impl Doc {
    fn path(self) -> PathBuf {
        match self {
            Self::Vault => Path::new("vaults").join(VAULT).join("vault.json"),
            Self::Identities => PathBuf::from("identities.json"),
        }
    }
}

/// The body (after the header line) of a fixture document.
pub fn fixture_body(doc: Doc) -> Vec<u8> {
    let bytes = original(doc);
    let start = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes[start..].to_vec()
}

fn original(doc: Doc) -> Vec<u8> {
    let path = doc.path();
    fixture()
        .files
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| b.clone())
        .unwrap_or_else(|| panic!("fixture has no {}", path.display()))
}

/// A document file holding `body` under a correct header.
pub fn with_header(doc: Doc, body: &[u8]) -> Vec<u8> {
    let format = match doc {
        Doc::Vault => "logvault.vault",
        Doc::Identities => "logvault.identities",
    };
    let header = serde_json::json!({
        "format": format,
        "version": 1,
        "bytes": body.len(),
        "sha256": hex::encode(Sha256::digest(body)),
    });
    let mut out = header.to_string().into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Damage to the whole file `doc` (header and body).
pub fn document_target(doc: Doc, script: &Script) -> Result<(), VaultError> {
    let mut bytes = original(doc);
    script.apply(&mut bytes);
    exercise(doc, &bytes)
}

/// `body` under a correct header, as `doc`.
pub fn body_target(doc: Doc, body: &[u8]) -> Result<(), VaultError> {
    exercise(doc, &with_header(doc, body))
}

/// Installs the fixture with `doc` replaced by `bytes` and puts the vault through its reads and
/// trait calls. Returns the first error (after checking it names the vault or its file).
fn exercise(doc: Doc, bytes: &[u8]) -> Result<(), VaultError> {
    let fx = fixture();
    let dir = crate::setup("temp dir", tempfile::tempdir());
    for (rel, content) in &fx.files {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            crate::setup("mkdir", std::fs::create_dir_all(parent));
        }
        let content = if *rel == doc.path() { bytes } else { content };
        crate::setup("write", std::fs::write(&path, content));
        // The root key file must stay private (the vault refuses it otherwise).
        let private = std::fs::Permissions::from_mode(0o600);
        crate::setup("chmod", std::fs::set_permissions(&path, private));
    }
    let vault = crate::setup("open", LocalVault::open(dir.path(), clock()));
    let runtime = crate::setup(
        "runtime",
        tokio::runtime::Builder::new_current_thread().build(),
    );
    let mut first: Option<VaultError> = None;
    let mut note = |r: Result<(), VaultError>| {
        if let Err(e) = r {
            check_error(&e);
            first.get_or_insert(e);
        }
    };
    note(vault.vault_info(VAULT).map(drop));
    note(vault.list_vaults().map(drop));
    note(vault.list_keys(VAULT).map(drop));
    for key in ["cmk", "old"] {
        note(vault.key_properties(VAULT, key).map(drop));
    }
    note(vault.role_assignments(VAULT).map(drop));
    note(vault.identities().list().map(drop));
    note(vault.identities().by_principal(&fx.principal).map(drop));
    let key = KeyRef::latest(VAULT, "cmk");
    let aek = crate::setup("aek", Aek::generate());
    let calls = async {
        let wrapped = vault
            .wrap_key(&fx.principal, &key, &aek.to_secret())
            .await?;
        vault.get_key(&fx.principal, &key).await?;
        let back = vault.unwrap_key(&fx.principal, &wrapped).await?;
        match Aek::from_secret(&back) {
            Ok(back) => assert_eq!(
                back.fingerprint(),
                aek.fingerprint(),
                "unwrap gave another key"
            ),
            Err(e) => panic!("unwrap gave something that is not a key: {e}"),
        }
        Ok::<(), VaultError>(())
    };
    note(runtime.block_on(calls));
    // Writes go through the same reads, then replace the file atomically.
    note(
        vault
            .set_outage(VAULT, logvault_kms::local::OutageMode::None)
            .map(drop),
    );
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_error(e: &VaultError) {
    let text = e.to_string();
    assert!(!text.is_empty(), "an empty error");
    // Damage is the vault's internal state, never mistaken for a revocation or an outage in a
    // way that names nothing; every message names the vault or the file.
    assert!(
        text.contains(VAULT) || text.contains("identities") || text.contains("fuzz-id"),
        "an error naming neither the vault nor the file: {text}"
    );
}
