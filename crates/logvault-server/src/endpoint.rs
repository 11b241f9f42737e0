//! Where `logvault serve` last listened (`HOME/server/endpoint.json`), so that commands that
//! run without the server can print the URLs it serves: a local vault's Key Vault URI
//! (`https://HOST:PORT/vaults/NAME/`, what `KeyClient` is given) in `logvault vault show`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The base URL assumed when the home has never been served: `logvault serve`'s default.
pub const DEFAULT_URL: &str = "https://127.0.0.1:8443";

#[derive(Debug, Serialize, Deserialize)]
struct Endpoint {
    url: String,
}

fn path(home: &Path) -> PathBuf {
    home.join("server").join("endpoint.json")
}

/// Records `url` as where the home is served (best effort: a failure only leaves the old or
/// default URL in what commands print).
pub(crate) fn record(home: &Path, url: &str) {
    let Ok(bytes) = serde_json::to_vec_pretty(&Endpoint {
        url: url.to_owned(),
    }) else {
        return;
    };
    let file = path(home);
    if let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
        && let Err(e) = logvault::core::fsutil::write_atomic(&file, &bytes)
    {
        tracing::warn!(error = %e, "the server's endpoint could not be recorded");
    }
}

/// The base URL the home was last served at, else [`DEFAULT_URL`].
pub fn served_url(home: &Path) -> String {
    std::fs::read(path(home))
        .ok()
        .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
        .map(|e| e.url)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// The Key Vault URI of local vault `vault` as the server serves it:
/// `BASE/vaults/NAME/` (see `docs/management-api.md`).
pub fn served_vault_uri(home: &Path, vault: &str) -> String {
    format!("{}/vaults/{vault}/", served_url(home))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_default_until_recorded_then_the_recorded_url() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            served_vault_uri(dir.path(), "kv"),
            "https://127.0.0.1:8443/vaults/kv/"
        );
        record(dir.path(), "https://127.0.0.1:9443");
        assert_eq!(
            served_vault_uri(dir.path(), "kv"),
            "https://127.0.0.1:9443/vaults/kv/"
        );
        std::fs::write(path(dir.path()), b"{not json").unwrap();
        assert_eq!(served_url(dir.path()), DEFAULT_URL);
    }
}
