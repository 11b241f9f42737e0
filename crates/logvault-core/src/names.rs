//! Resource names and the rules they follow.
//!
//! The rules are those of the Azure resources logvault models (Key Vault names 3-24 characters,
//! Log Analytics cluster and workspace names 4-63, ...), so that a name valid here is valid there.
//! Names are also used as path segments in the home directory and the object store, which is why
//! nothing outside ASCII letters, digits, `-` and `_` is accepted.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// What a name names; each kind has its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NameKind {
    /// A key vault: 3-24 characters, letters, digits and `-`, starting with a letter.
    Vault,
    /// A key in a vault: 1-127 characters, letters, digits and `-`.
    Key,
    /// A dedicated cluster: 4-63 characters, letters, digits and `-`, alphanumeric at both ends.
    Cluster,
    /// A workspace: 4-63 characters, letters, digits and `-`, alphanumeric at both ends.
    Workspace,
    /// A user-assigned identity: 3-128 characters, letters, digits, `-` and `_`.
    Identity,
    /// A table: 1-63 characters, letters, digits and `_`, starting with a letter.
    Table,
    /// A resource group: 1-90 characters, letters, digits, `-` and `_`.
    ResourceGroup,
    /// A subscription: 1-64 characters, letters, digits and `-`.
    Subscription,
    /// A region (location): 1-32 lowercase letters and digits.
    Region,
    /// A tenant: 1-64 characters, letters, digits and `-`.
    Tenant,
    /// A storage account: 3-24 lowercase letters and digits (Azure Storage's rule).
    StorageAccount,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vault => "vault",
            Self::Key => "key",
            Self::Cluster => "cluster",
            Self::Workspace => "workspace",
            Self::Identity => "identity",
            Self::Table => "table",
            Self::ResourceGroup => "resource group",
            Self::Subscription => "subscription",
            Self::Region => "region",
            Self::Tenant => "tenant",
            Self::StorageAccount => "storage account",
        })
    }
}

struct Rule {
    min: usize,
    max: usize,
    extra: &'static [char],
    letter_first: bool,
    alnum_last: bool,
    lowercase_only: bool,
}

impl NameKind {
    fn rule(self) -> Rule {
        let base = Rule {
            min: 1,
            max: 64,
            extra: &['-'],
            letter_first: false,
            alnum_last: false,
            lowercase_only: false,
        };
        match self {
            Self::Vault => Rule {
                min: 3,
                max: 24,
                letter_first: true,
                alnum_last: true,
                ..base
            },
            Self::Key => Rule { max: 127, ..base },
            Self::Cluster | Self::Workspace => Rule {
                min: 4,
                max: 63,
                alnum_last: true,
                letter_first: false,
                ..base
            },
            Self::Identity => Rule {
                min: 3,
                max: 128,
                extra: &['-', '_'],
                ..base
            },
            Self::Table => Rule {
                max: 63,
                extra: &['_'],
                letter_first: true,
                ..base
            },
            Self::ResourceGroup => Rule {
                max: 90,
                extra: &['-', '_'],
                ..base
            },
            Self::Subscription | Self::Tenant => base,
            Self::StorageAccount => Rule {
                min: 3,
                max: 24,
                extra: &[],
                lowercase_only: true,
                ..base
            },
            Self::Region => Rule {
                max: 32,
                extra: &[],
                lowercase_only: true,
                ..base
            },
        }
    }
}

/// Checks `name` against the rules of `kind`.
///
/// ```
/// use logvault_core::{NameKind, validate_name};
/// assert!(validate_name(NameKind::Workspace, "prod-logs").is_ok());
/// assert!(validate_name(NameKind::Workspace, "../etc").is_err());
/// ```
///
/// # Errors
/// [`CoreError::InvalidName`] saying which rule the name breaks.
pub fn validate_name(kind: NameKind, name: &str) -> Result<(), CoreError> {
    let rule = kind.rule();
    let fail = |reason: String| CoreError::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    };
    let len = name.chars().count();
    if len < rule.min || len > rule.max {
        return Err(fail(format!(
            "must be {} to {} characters long, got {len}",
            rule.min, rule.max
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || rule.extra.contains(c)))
    {
        let allowed = if rule.extra.is_empty() {
            String::new()
        } else {
            format!(" and {:?}", rule.extra)
        };
        return Err(fail(format!(
            "character {bad:?} is not allowed (letters, digits{allowed})"
        )));
    }
    if rule.lowercase_only && name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(fail("must be lowercase".into()));
    }
    if rule.letter_first && !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(fail("must start with a letter".into()));
    }
    if rule.alnum_last
        && !(name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric()))
    {
        return Err(fail("must start and end with a letter or digit".into()));
    }
    if kind == NameKind::Vault && name.contains("--") {
        return Err(fail("must not contain consecutive hyphens".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_names() {
        for (kind, name) in [
            (NameKind::Vault, "contoso-kv"),
            (NameKind::Key, "cmk-1"),
            (NameKind::Cluster, "cluster-01"),
            (NameKind::Workspace, "ws01"),
            (NameKind::Identity, "my_identity-1"),
            (NameKind::Table, "SigninLogs"),
            (NameKind::Table, "ABAPAuditLog_CL"),
            (NameKind::ResourceGroup, "rg_prod-1"),
            (NameKind::Region, "westeurope"),
            (NameKind::Subscription, "local"),
        ] {
            assert_eq!(validate_name(kind, name), Ok(()), "{kind} {name}");
        }
    }

    #[test]
    fn refuses_each_rule() {
        for (kind, name, why) in [
            (NameKind::Vault, "kv", "characters long"),
            (NameKind::Vault, "1vault", "start with a letter"),
            (NameKind::Vault, "my--vault", "consecutive"),
            (NameKind::Cluster, "-abcd", "start and end"),
            (NameKind::Workspace, "a/b/c/d", "not allowed"),
            (NameKind::Table, "_x", "start with a letter"),
            (NameKind::Region, "WestEurope", "lowercase"),
            (NameKind::Key, "", "characters long"),
            (NameKind::Workspace, "wörk", "not allowed"),
        ] {
            let err = validate_name(kind, name).unwrap_err().to_string();
            assert!(err.contains(why), "{kind} {name:?}: {err}");
            assert!(err.starts_with(&format!("invalid {kind} name")), "{err}");
        }
    }

    proptest! {
        // A valid name is always a safe single path segment. Most generated names are close to
        // valid (letters, digits and the separators names may hold, plus the path characters
        // they may not), so that the assertion is reached, not just the refusal.
        #[test]
        fn valid_names_are_safe_path_segments(name in prop_oneof![
            "[A-Za-z][A-Za-z0-9_-]{0,70}",
            "[A-Za-z0-9_./\\\\-]{0,80}",
            "\\PC{0,80}",
        ]) {
            for kind in [NameKind::Vault, NameKind::Workspace, NameKind::Table, NameKind::Identity] {
                if validate_name(kind, &name).is_ok() {
                    prop_assert!(
                        !name.contains('/') && !name.contains('\\') && !name.contains('.')
                            && !name.is_empty() && name.len() <= 128
                    );
                }
            }
        }

        // The first strategy's names of the right length are accepted: the property above is
        // exercised on valid names, not vacuously.
        #[test]
        fn names_of_letters_and_digits_are_valid(name in "[A-Za-z][A-Za-z0-9]{3,20}") {
            prop_assert!(validate_name(NameKind::Workspace, &name).is_ok(), "{name}");
            prop_assert!(validate_name(NameKind::Table, &name).is_ok(), "{name}");
        }
    }
}
