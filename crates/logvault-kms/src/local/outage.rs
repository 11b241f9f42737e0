//! Outage injection (R-A5): a vault can be made to fail every trait call with a transient error,
//! as a real vault does when it times out, refuses connections or its name does not resolve.
//!
//! The mode is kept in the vault's file, so an outage set by one process (`logvault vault outage`)
//! is seen by every other process using the same home.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::VaultError;
use crate::local::state::{VAULT_DOMAIN, VaultState};
use crate::local::{LocalVault, VaultInfo};

/// How an injected outage makes the vault fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// No outage: the vault answers.
    #[default]
    None,
    /// Every call times out.
    Timeout,
    /// Every connection is refused.
    Refused,
    /// The vault's host name does not resolve.
    Dns,
}

impl OutageMode {
    /// All modes, in the order the command line lists them.
    pub const ALL: [OutageMode; 4] = [Self::Timeout, Self::Refused, Self::Dns, Self::None];

    /// The transient error a call meets under this mode, or `None` when there is no outage.
    pub fn error(self, vault: &str) -> Option<VaultError> {
        let host = format!("{vault}.{VAULT_DOMAIN}");
        let reason = match self {
            Self::None => return None,
            Self::Timeout => format!("request to {host}:443 timed out after 30s"),
            Self::Refused => format!("connection to {host}:443 refused"),
            Self::Dns => format!("name resolution failure: {host} could not be resolved"),
        };
        Some(VaultError::Transient {
            vault: vault.to_owned(),
            reason,
        })
    }
}

impl fmt::Display for OutageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Dns => "dns",
        })
    }
}

impl FromStr for OutageMode {
    type Err = VaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.to_string() == s)
            .ok_or_else(|| VaultError::BadRequest {
                vault: String::new(),
                reason: format!(
                    "unknown outage mode {s:?}; expected timeout, refused, dns or none"
                ),
            })
    }
}

impl VaultState {
    /// Fails with the injected outage's transient error, if any.
    pub(crate) fn check_reachable(&self) -> Result<(), VaultError> {
        match self.outage.error(&self.name) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl LocalVault {
    /// Sets (or with [`OutageMode::None`] ends) an injected outage on `vault`. An administrative
    /// operation: it is not subject to the outage itself.
    ///
    /// # Errors
    /// [`VaultError::VaultNotFound`], or [`VaultError::Internal`] if the vault's file is damaged.
    pub fn set_outage(&self, vault: &str, mode: OutageMode) -> Result<VaultInfo, VaultError> {
        self.update(vault, |state| {
            state.outage = mode;
            Ok(state.info())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VaultErrorKind;

    #[test]
    fn each_mode_has_its_own_transient_message() {
        let mut messages = Vec::new();
        for mode in [OutageMode::Timeout, OutageMode::Refused, OutageMode::Dns] {
            let err = mode.error("contoso").unwrap();
            assert_eq!(err.kind(), VaultErrorKind::Transient);
            assert!(!err.is_revocation());
            assert!(err.to_string().contains("contoso.vault.local"), "{err}");
            messages.push(err.to_string());
        }
        assert!(messages[0].contains("timed out"));
        assert!(messages[1].contains("refused"));
        assert!(messages[2].contains("name resolution failure"));
        assert!(OutageMode::None.error("contoso").is_none());
    }

    #[test]
    fn parses_and_prints_the_cli_names() {
        for mode in OutageMode::ALL {
            assert_eq!(mode.to_string().parse::<OutageMode>().unwrap(), mode);
        }
        assert_eq!(
            "flaky".parse::<OutageMode>().unwrap_err().kind(),
            VaultErrorKind::BadRequest
        );
    }
}
