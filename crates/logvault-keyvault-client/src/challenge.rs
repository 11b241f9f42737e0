//! Key Vault's 401 challenge, read as Azure's SDKs read it: the first request to a vault goes
//! without a token (and without a body); the vault answers 401 with
//! `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/TENANT",
//! resource="https://vault.azure.net"` (or `authorization_uri`, or `scope`). The token is then
//! asked for the scope `RESOURCE/.default` in that tenant. Unless told otherwise, the resource's
//! domain must be the vault's (`*.vault.azure.net` for `vault.azure.net`), so that a host
//! posing as the vault cannot obtain a token meant for another audience.

use url::Url;

/// What a vault's challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scope to ask a token for (`https://vault.azure.net/.default`).
    pub(crate) scope: String,
    /// The tenant the authorization URI names, if any.
    pub(crate) tenant: Option<String>,
}

/// The `key="value"` (or `key=value`) parameters of a `Bearer` challenge, if the header is one.
fn bearer_params(header: &str) -> Option<Vec<(String, String)>> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        params.push((key, value.to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(params)
}

impl Challenge {
    /// Reads a `WWW-Authenticate` header. `None` unless it is a `Bearer` challenge naming a
    /// resource or a scope.
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let params = bearer_params(header)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let scope = match (get("scope"), get("resource")) {
            (Some(scope), _) => scope.to_owned(),
            (None, Some(resource)) => format!("{}/.default", resource.trim_end_matches('/')),
            (None, None) => return None,
        };
        let tenant = get("authorization")
            .or_else(|| get("authorization_uri"))
            .and_then(|uri| Url::parse(uri).ok())
            .and_then(|uri| {
                uri.path_segments()?
                    .find(|s| !s.is_empty())
                    .map(str::to_owned)
            });
        Some(Self { scope, tenant })
    }

    /// Checks that the scope's resource is the vault's domain: the vault's host is the
    /// resource's host or a subdomain of it (Azure SDKs' `verify_challenge_resource`).
    pub(crate) fn verify_resource(&self, vault: &Url) -> Result<(), String> {
        let resource = Url::parse(&self.scope)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .ok_or_else(|| format!("the challenge's scope {} is not a URL", self.scope))?;
        let host = vault.host_str().unwrap_or_default().to_ascii_lowercase();
        if host == resource || host.ends_with(&format!(".{resource}")) {
            Ok(())
        } else {
            Err(format!(
                "the challenge's resource {resource} is not the domain of the vault's host \
                 {host} (set \"verifyChallengeResource\": false for a vault served by \
                 `logvault serve`)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_vault_s_challenge_and_its_variants() {
        let c = Challenge::parse(
            "Bearer authorization=\"https://login.microsoftonline.com/72f988bf\", \
             resource=\"https://vault.azure.net\"",
        )
        .unwrap();
        assert_eq!(c.scope, "https://vault.azure.net/.default");
        assert_eq!(c.tenant.as_deref(), Some("72f988bf"));
        let c = Challenge::parse(
            "bearer authorization_uri=https://login.example/t2/oauth2/authorize, \
             scope=\"https://managedhsm.azure.net/.default\"",
        )
        .unwrap();
        assert_eq!(c.scope, "https://managedhsm.azure.net/.default");
        assert_eq!(c.tenant.as_deref(), Some("t2"));
        assert_eq!(
            Challenge::parse("Bearer resource=\"https://vault.azure.net/\"")
                .unwrap()
                .tenant,
            None
        );
        for bad in [
            "Basic realm=\"x\"",
            "Bearer realm=\"logvault\"",
            "Bearer resource=\"unterminated",
            "",
        ] {
            assert_eq!(Challenge::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_resource_must_be_the_vault_s_domain_unless_told_otherwise() {
        let c = Challenge::parse("Bearer resource=\"https://vault.azure.net\"").unwrap();
        let ok = Url::parse("https://contoso.vault.azure.net/").unwrap();
        assert_eq!(c.verify_resource(&ok), Ok(()));
        for other in [
            "https://127.0.0.1:8443/vaults/contoso",
            "https://evilvault.azure.net/",
            "https://vault.azure.net.example/",
        ] {
            let err = c.verify_resource(&Url::parse(other).unwrap()).unwrap_err();
            assert!(err.contains("verifyChallengeResource"), "{err}");
        }
    }
}
