//! What a query asks: its text, language, workspace, timespan and `Prefer` options.

use axum::http::HeaderMap;

use crate::http::errors::ApiError;

/// The language of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// KQL (the default, as in Azure).
    Kql,
    /// SQL over DataFusion (a logvault extension).
    Sql,
}

impl Language {
    pub(crate) fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "kql" | "kusto") => Ok(Self::Kql),
            Some("sql") => Ok(Self::Sql),
            Some(other) => Err(ApiError::bad_request(format!(
                "unknown query language '{other}': kql (the default) or sql"
            ))),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Kql => "kql",
            Self::Sql => "sql",
        }
    }
}

/// The `Prefer` header's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prefer {
    /// `wait=N`: the query's time limit in seconds.
    pub(crate) wait: Option<u64>,
    /// `include-statistics=true`.
    pub(crate) statistics: bool,
    /// `include-render=true`.
    pub(crate) render: bool,
}

impl Prefer {
    /// The options of every `Prefer` header (comma-separated, case-insensitive); others are
    /// ignored, as preferences may be.
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else { continue };
            for item in text.split([',', ';']) {
                let (key, val) = item.split_once('=').unwrap_or((item, ""));
                let (key, val) = (
                    key.trim().to_ascii_lowercase(),
                    val.trim().trim_matches('"'),
                );
                match key.as_str() {
                    "wait" => prefer.wait = val.parse().ok(),
                    "include-statistics" => prefer.statistics = val.eq_ignore_ascii_case("true"),
                    "include-render" => prefer.render = val.eq_ignore_ascii_case("true"),
                    _ => {}
                }
            }
        }
        prefer
    }

    /// The `Preference-Applied` header's value for what was honoured.
    pub(crate) fn applied(&self, wait: u64) -> String {
        let mut parts = Vec::new();
        if self.wait.is_some() {
            parts.push(format!("wait={wait}"));
        }
        if self.statistics {
            parts.push("include-statistics=true".to_owned());
        }
        if self.render {
            parts.push("include-render=true".to_owned());
        }
        parts.join(",")
    }
}

/// One query to run.
#[derive(Debug, Clone)]
pub(crate) struct QuerySpec {
    /// The workspace as the path names it: its `customerId` or its name.
    pub(crate) workspace: String,
    pub(crate) query: String,
    pub(crate) timespan: Option<String>,
    /// Additional workspaces (a cross-workspace query): names, customer ids or ARM resource
    /// ids; each table is then the union of that table in every workspace, with `TenantId`.
    pub(crate) workspaces: Vec<String>,
    pub(crate) language: Language,
    /// Run on the server's distributed engine (`"distributed": true`), here (`false`), or
    /// where the server's size threshold says (not given).
    pub(crate) distributed: Option<bool>,
    pub(crate) prefer: Prefer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_options_as_the_sdk_sends_them() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            axum::http::HeaderValue::from_static(
                "wait=30,include-statistics=true,include-render=true",
            ),
        );
        assert_eq!(
            Prefer::parse(&h),
            Prefer {
                wait: Some(30),
                statistics: true,
                render: true
            }
        );
        assert_eq!(
            Prefer::parse(&h).applied(30),
            "wait=30,include-statistics=true,include-render=true"
        );
        assert_eq!(Prefer::parse(&HeaderMap::new()), Prefer::default());
        assert!(Language::parse(Some("SQL")).is_ok_and(|l| l == Language::Sql));
        assert!(Language::parse(Some("cobol")).is_err());
    }
}
