//! The workspace artifacts the engine keeps sealed in a storage account (R-H1, R-H4): saved
//! queries and functions, and log alert rules and the alerts they fired. Their rules (names,
//! function parameters, thresholds, when a rule is due) are here; where they are stored
//! (service key or a linked storage account's key) is the engine's.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ControlError;

/// Format version of the artifacts' JSON documents (saved searches, alert rules, fired alerts,
/// query history entries, search jobs), inside their sealed envelope.
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;

fn bad(message: String) -> ControlError {
    ControlError::Refused { code: 400, message }
}

/// Checks an artifact's id or name: 1-128 letters, digits, `-`, `_` and `.`, not starting with
/// `.` (it names a stored document).
///
/// # Errors
/// 400 naming the bad value.
pub fn check_artifact_name(what: &str, value: &str) -> Result<(), ControlError> {
    let ok = (1..=128).contains(&value.len())
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} {value:?} must be 1-128 letters, digits, `-`, `_` or `.`, not starting with `.`"
        )))
    }
}

/// A typed parameter of a saved function, with its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionParameter {
    /// Its name.
    pub name: String,
    /// Its Kusto scalar type (`string`, `long`, `timespan`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its default value, as a KQL literal (`1h`, `"x"`, `10`).
    pub default: Option<String>,
}

const PARAMETER_TYPES: &[&str] = &[
    "bool", "boolean", "datetime", "date", "dynamic", "guid", "uuid", "uniqueid", "int", "long",
    "real", "double", "decimal", "string", "timespan", "time",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
}

/// Parses the parameters of a saved function: `name:type=default, ...` (Log Analytics'
/// `functionParameters`), defaults optional.
///
/// # Errors
/// 400 naming the parameter at fault.
pub fn parse_function_parameters(text: &str) -> Result<Vec<FunctionParameter>, ControlError> {
    let mut out: Vec<FunctionParameter> = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for part in split_top_level(text) {
        let part = part.trim();
        let (name, rest) = part.split_once(':').ok_or_else(|| {
            bad(format!(
                "function parameter {part:?} must be `name:type` or `name:type=default`"
            ))
        })?;
        let (kind, default) = match rest.split_once('=') {
            Some((k, d)) => (k.trim(), Some(d.trim().to_owned())),
            None => (rest.trim(), None),
        };
        let name = name.trim();
        if !is_identifier(name) {
            return Err(bad(format!(
                "function parameter name {name:?} is not an identifier"
            )));
        }
        let kind = kind.to_ascii_lowercase();
        if !PARAMETER_TYPES.contains(&kind.as_str()) {
            return Err(bad(format!(
                "function parameter {name}: type {kind:?} is not one of {}",
                PARAMETER_TYPES.join(", ")
            )));
        }
        if default.as_deref().is_some_and(str::is_empty) {
            return Err(bad(format!("function parameter {name}: empty default")));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(bad(format!("function parameter {name} is given twice")));
        }
        if default.is_none() && out.iter().any(|p| p.default.is_some()) {
            return Err(bad(format!(
                "function parameter {name} has no default but follows one that has"
            )));
        }
        out.push(FunctionParameter {
            name: name.to_owned(),
            kind,
            default,
        });
    }
    Ok(out)
}

/// Splits on commas outside quotes and brackets (a default may be `"a,b"` or `dynamic([1,2])`).
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A saved query of a workspace, optionally a function callable by its alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedSearch {
    /// Its id.
    pub id: String,
    /// Its category.
    pub category: String,
    /// Its display name.
    pub display_name: String,
    /// The KQL text.
    pub query: String,
    /// The alias it is callable by, for a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_alias: Option<String>,
    /// The function's parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub function_parameters: Vec<FunctionParameter>,
    /// When it was saved.
    pub updated: DateTime<Utc>,
}

impl SavedSearch {
    /// Checks the id, names and alias.
    ///
    /// # Errors
    /// 400 naming the field at fault.
    pub fn check(&self) -> Result<(), ControlError> {
        check_artifact_name("saved search id", &self.id)?;
        if self.display_name.trim().is_empty() || self.category.trim().is_empty() {
            return Err(bad(format!(
                "saved search {}: display name and category are required",
                self.id
            )));
        }
        if self.query.trim().is_empty() {
            return Err(bad(format!("saved search {}: the query is empty", self.id)));
        }
        if let Some(alias) = &self.function_alias
            && !is_identifier(alias)
        {
            return Err(bad(format!(
                "saved search {}: function alias {alias:?} is not an identifier",
                self.id
            )));
        }
        if self.function_alias.is_none() && !self.function_parameters.is_empty() {
            return Err(bad(format!(
                "saved search {}: function parameters need a function alias",
                self.id
            )));
        }
        Ok(())
    }

    /// The function's KQL definition, `(name:type=default, ...) { query }`, for a function.
    pub fn function_definition(&self) -> Option<(String, String)> {
        let alias = self.function_alias.as_ref()?;
        let params: Vec<String> = self
            .function_parameters
            .iter()
            .map(|p| match &p.default {
                Some(d) => format!("{}:{}={d}", p.name, p.kind),
                None => format!("{}:{}", p.name, p.kind),
            })
            .collect();
        Some((
            alias.clone(),
            format!("({}) {{\n{}\n}}", params.join(", "), self.query),
        ))
    }
}

/// How an alert rule compares its value with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertOperator {
    /// `>`.
    GreaterThan,
    /// `>=`.
    GreaterThanOrEqual,
    /// `<`.
    LessThan,
    /// `<=`.
    LessThanOrEqual,
    /// `==`.
    Equal,
    /// `!=`.
    NotEqual,
}

impl AlertOperator {
    /// Whether `value` fires against `threshold`.
    pub fn fires(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThan => value > threshold,
            Self::GreaterThanOrEqual => value >= threshold,
            Self::LessThan => value < threshold,
            Self::LessThanOrEqual => value <= threshold,
            Self::Equal => (value - threshold).abs() < f64::EPSILON,
            Self::NotEqual => (value - threshold).abs() >= f64::EPSILON,
        }
    }
}

impl std::str::FromStr for AlertOperator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "greaterthan" | "gt" | ">" => Self::GreaterThan,
            "greaterthanorequal" | "ge" | ">=" => Self::GreaterThanOrEqual,
            "lessthan" | "lt" | "<" => Self::LessThan,
            "lessthanorequal" | "le" | "<=" => Self::LessThanOrEqual,
            "equal" | "eq" | "==" => Self::Equal,
            "notequal" | "ne" | "!=" => Self::NotEqual,
            _ => {
                return Err(format!(
                    "operator {s:?} is not one of GreaterThan, GreaterThanOrEqual, LessThan, \
                     LessThanOrEqual, Equal, NotEqual"
                ));
            }
        })
    }
}

/// A log alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRule {
    /// Its name.
    pub name: String,
    /// The KQL query.
    pub query: String,
    /// How often it is evaluated, in seconds.
    pub frequency_secs: i64,
    /// The time window the query looks at, in seconds.
    pub window_secs: i64,
    /// How the value is compared with the threshold.
    pub operator: AlertOperator,
    /// The threshold.
    pub threshold: f64,
    /// A numeric column summed for the value; `None`: the number of rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Columns the result is split by: one alert per combination of their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<String>,
    /// Severity, 0 (critical) to 4 (verbose).
    pub severity: u8,
    /// A webhook the fired alerts are posted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A command run with each fired alert on its standard input (local use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated: Option<DateTime<Utc>>,
}

/// Frequencies and windows: 1 minute to 2 days, as Azure's log alerts allow.
const MIN_PERIOD_SECS: i64 = 60;
const MAX_PERIOD_SECS: i64 = 2 * 86_400;

impl AlertRule {
    /// Checks the rule's fields.
    ///
    /// # Errors
    /// 400 naming the field at fault.
    pub fn check(&self) -> Result<(), ControlError> {
        check_artifact_name("alert rule", &self.name)?;
        let name = &self.name;
        if self.query.trim().is_empty() {
            return Err(bad(format!("alert rule {name}: the query is empty")));
        }
        for (what, secs) in [
            ("frequency", self.frequency_secs),
            ("window", self.window_secs),
        ] {
            if !(MIN_PERIOD_SECS..=MAX_PERIOD_SECS).contains(&secs) {
                return Err(bad(format!(
                    "alert rule {name}: {what} of {secs} s is outside 1 minute to 2 days"
                )));
            }
        }
        if self.severity > 4 {
            return Err(bad(format!(
                "alert rule {name}: severity {} is outside 0 to 4",
                self.severity
            )));
        }
        if !self.threshold.is_finite() {
            return Err(bad(format!(
                "alert rule {name}: the threshold is not a number"
            )));
        }
        if let Some(url) = &self.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad(format!(
                "alert rule {name}: webhook {url:?} is not an http(s) URL"
            )));
        }
        Ok(())
    }

    /// When it is next due: at creation, then one frequency after its last evaluation.
    pub fn next_due(&self) -> DateTime<Utc> {
        self.last_evaluated
            .map_or(self.created, |t| t + Duration::seconds(self.frequency_secs))
    }
}

/// What an evaluation of a rule produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertOutcome {
    /// The condition held: an alert fired.
    Fired,
    /// The query failed (revoked key, bad table, ...): reported, never taken as "no alert".
    Failed,
}

/// The delivery of a fired alert to its webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDelivery {
    /// The target (webhook URL or command).
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether one succeeded.
    pub delivered: bool,
    /// The last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A fired alert (or a failed evaluation), as kept in history and sent to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiredAlert {
    /// The rule's name.
    pub rule: String,
    /// The workspace.
    pub workspace: String,
    /// `Fired` or `Failed`.
    pub outcome: AlertOutcome,
    /// When it was evaluated.
    pub fired_at: DateTime<Utc>,
    /// The rule's severity.
    pub severity: u8,
    /// The dimensions' values of the group that fired.
    pub dimensions: BTreeMap<String, String>,
    /// The value compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The operator.
    pub operator: AlertOperator,
    /// The threshold.
    pub threshold: f64,
    /// The query (absent when the workspace is linked for Alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The rows that fired it (absent when the workspace is linked for Alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<serde_json::Value>>,
    /// Why the evaluation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Deliveries to the rule's actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<AlertDelivery>,
}

/// Parses a duration: `30s`, `5m`, `1h`, `2d`, or ISO 8601 `PT5M`, `PT1H`, `P1D`.
///
/// # Errors
/// A message for anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let iso = upper
        .strip_prefix("PT")
        .or_else(|| upper.strip_prefix('P'))
        .map(str::to_owned);
    let body = iso.as_deref().unwrap_or(t);
    let unit_at = body
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {text:?} has no unit (s, m, h, d)"))?;
    let (n, unit) = body.split_at(unit_at);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "duration {text:?}: unit {unit:?} is not s, m, h or d"
            ));
        }
    };
    Ok(Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_with_types_and_defaults() {
        let p = parse_function_parameters("window:timespan=1h, level:string=\"a,b\"").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].kind, "timespan");
        assert_eq!(p[0].default.as_deref(), Some("1h"));
        assert_eq!(p[1].default.as_deref(), Some("\"a,b\""));
        for bad in [
            "x",
            "x:nosuchtype",
            "1x:long",
            "a:long=1, b:long",
            "a:long, a:long",
        ] {
            assert!(parse_function_parameters(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn operators_compare_both_ways() {
        assert!(AlertOperator::GreaterThan.fires(3.0, 2.0));
        assert!(!AlertOperator::GreaterThan.fires(2.0, 2.0));
        assert!(AlertOperator::LessThan.fires(1.0, 2.0));
        assert!(AlertOperator::Equal.fires(2.0, 2.0));
        assert!(!AlertOperator::NotEqual.fires(2.0, 2.0));
    }

    #[test]
    fn durations_parse_in_both_notations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::minutes(5));
        assert_eq!(parse_duration("PT1H").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("P2D").unwrap(), Duration::days(2));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
