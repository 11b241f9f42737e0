//! The durations that govern logvault's time rules, with the service's defaults.
//!
//! They are grouped here because several layers read them (the key monitor, the control plane,
//! the hot cache); each layer owns the rule, this struct only holds the numbers.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Tunable durations, in seconds where serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Timings {
    /// Shortest interval between two unwraps of a cached account key (R-B5: 6 s).
    pub key_check_min_secs: i64,
    /// Longest interval between two unwraps of a cached account key (R-B5: 60 s).
    pub key_check_max_secs: i64,
    /// Upper bound for a revocation to take effect (R-G1: one hour).
    pub revocation_bound_secs: i64,
    /// Upper bound for service to resume after a key is enabled again (R-F4: 30 minutes).
    pub restore_bound_secs: i64,
    /// How long a deleted cluster, workspace or key stays recoverable (R-C7: 14 days).
    pub soft_delete_secs: i64,
    /// The window in which a workspace may be linked at most twice (R-C6: 30 days).
    pub link_window_secs: i64,
    /// Data younger than this is kept in the hot cache (R-F1: 14 days).
    pub hot_window_secs: i64,
    /// How long an asynchronous control-plane operation (create, key update, delete) takes.
    pub async_operation_secs: i64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            key_check_min_secs: 6,
            key_check_max_secs: 60,
            revocation_bound_secs: 3600,
            restore_bound_secs: 30 * 60,
            soft_delete_secs: 14 * 86_400,
            link_window_secs: 30 * 86_400,
            hot_window_secs: 14 * 86_400,
            async_operation_secs: 2,
        }
    }
}

/// The longest duration a setting may have: 100 years, in seconds. Durations are added to and
/// subtracted from times read from files, which must not overflow (nor may the conversion to a
/// duration, which panics past about 292 million years).
pub const MAX_DURATION_SECS: i64 = 100 * 366 * 86_400;

impl Timings {
    /// Checks that every value is in its allowed range.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), CoreError> {
        let positive = [
            ("keyCheckMinSecs", self.key_check_min_secs),
            ("keyCheckMaxSecs", self.key_check_max_secs),
            ("revocationBoundSecs", self.revocation_bound_secs),
            ("restoreBoundSecs", self.restore_bound_secs),
            ("softDeleteSecs", self.soft_delete_secs),
            ("linkWindowSecs", self.link_window_secs),
            ("hotWindowSecs", self.hot_window_secs),
        ];
        for (field, value) in positive {
            if value <= 0 {
                return Err(CoreError::InvalidConfig {
                    field,
                    reason: format!("must be positive, got {value}"),
                });
            }
        }
        for (field, value) in positive
            .into_iter()
            .chain([("asyncOperationSecs", self.async_operation_secs)])
        {
            if value > MAX_DURATION_SECS {
                return Err(CoreError::InvalidConfig {
                    field,
                    reason: format!("must be at most {MAX_DURATION_SECS} (100 years), got {value}"),
                });
            }
        }
        if self.async_operation_secs < 0 {
            return Err(CoreError::InvalidConfig {
                field: "asyncOperationSecs",
                reason: format!("must not be negative, got {}", self.async_operation_secs),
            });
        }
        if self.key_check_min_secs > self.key_check_max_secs {
            return Err(CoreError::InvalidConfig {
                field: "keyCheckMinSecs",
                reason: format!(
                    "{} is above keyCheckMaxSecs {}",
                    self.key_check_min_secs, self.key_check_max_secs
                ),
            });
        }
        if self.key_check_max_secs > self.revocation_bound_secs {
            return Err(CoreError::InvalidConfig {
                field: "keyCheckMaxSecs",
                reason: "a key check interval above the revocation bound breaks R-G1".into(),
            });
        }
        Ok(())
    }

    /// [`Self::key_check_min_secs`] as a duration.
    pub fn key_check_min(&self) -> Duration {
        Duration::seconds(self.key_check_min_secs)
    }
    /// [`Self::key_check_max_secs`] as a duration.
    pub fn key_check_max(&self) -> Duration {
        Duration::seconds(self.key_check_max_secs)
    }
    /// [`Self::soft_delete_secs`] as a duration.
    pub fn soft_delete(&self) -> Duration {
        Duration::seconds(self.soft_delete_secs)
    }
    /// [`Self::link_window_secs`] as a duration.
    pub fn link_window(&self) -> Duration {
        Duration::seconds(self.link_window_secs)
    }
    /// [`Self::hot_window_secs`] as a duration.
    pub fn hot_window(&self) -> Duration {
        Duration::seconds(self.hot_window_secs)
    }
    /// [`Self::async_operation_secs`] as a duration.
    pub fn async_operation(&self) -> Duration {
        Duration::seconds(self.async_operation_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_numbers_and_valid() {
        let t = Timings::default();
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.soft_delete(), Duration::days(14));
        assert_eq!(t.link_window(), Duration::days(30));
        assert_eq!(t.hot_window(), Duration::days(14));
        assert_eq!((t.key_check_min_secs, t.key_check_max_secs), (6, 60));
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        let t = Timings {
            key_check_min_secs: 90,
            ..Timings::default()
        };
        let err = t.validate().unwrap_err();
        assert!(err.to_string().contains("keyCheckMinSecs"), "{err}");

        let t = Timings {
            soft_delete_secs: 0,
            ..Timings::default()
        };
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("softDeleteSecs")
        );
    }

    /// Regression (found by fuzzing `config.json`): a huge duration passed validation, then
    /// panicked when converted or added to a time.
    #[test]
    fn timings_beyond_a_hundred_years_are_refused_by_name() {
        for value in [MAX_DURATION_SECS + 1, i64::MAX / 1000 + 1, i64::MAX] {
            let t = Timings {
                revocation_bound_secs: i64::MAX,
                soft_delete_secs: value,
                ..Timings::default()
            };
            let err = t.validate().unwrap_err().to_string();
            assert!(
                err.contains("revocationBoundSecs") || err.contains("softDeleteSecs"),
                "{err}"
            );
        }
        let t = Timings {
            link_window_secs: MAX_DURATION_SECS,
            ..Timings::default()
        };
        assert_eq!(t.validate(), Ok(()));
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC - Duration::days(366 * 10_000);
        assert!(far.checked_add_signed(t.link_window()).is_some());
    }

    #[test]
    fn partial_json_keeps_defaults() {
        let t: Timings = serde_json::from_str(r#"{"keyCheckMaxSecs": 30}"#).unwrap();
        assert_eq!(t.key_check_max_secs, 30);
        assert_eq!(t.key_check_min_secs, 6);
    }
}
