//! Data collection rules: where the Logs Ingestion API's streams go.
//!
//! A rule (Azure's `Microsoft.Insights/dataCollectionRules`) has a name, an immutable id
//! (`dcr-` and 32 hex digits, what clients post to), a workspace, and data flows: each maps a
//! stream (`Custom-<Name>`) to a table of the workspace, with an optional KQL transformation
//! (`source | ...`) run on every batch. Rules live in `HOME/server/dcr.json`, beside the tokens.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ServerError;
use crate::state::StateFile;

/// One data flow of a rule: a stream into a table, optionally transformed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFlow {
    /// The stream clients post to (`Custom-<Name>`).
    pub stream: String,
    /// The workspace table its rows go to.
    pub table: String,
    /// The KQL run on each batch (`source | ...`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_kql: Option<String>,
}

/// A data collection rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataCollectionRule {
    /// Its name.
    pub name: String,
    /// Its Azure-style resource id.
    pub id: String,
    /// The id clients post to: `/dataCollectionRules/{immutableId}/streams/{stream}`.
    pub immutable_id: String,
    /// The workspace its flows write to.
    pub workspace: String,
    /// Its flows.
    pub data_flows: Vec<DataFlow>,
    /// When it was created.
    pub created_on: DateTime<Utc>,
}

impl DataCollectionRule {
    /// The flow of `stream` (case-insensitive, as Azure matches stream names), if any.
    pub fn flow(&self, stream: &str) -> Option<&DataFlow> {
        self.data_flows
            .iter()
            .find(|f| f.stream.eq_ignore_ascii_case(stream))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RuleDoc {
    version: u32,
    rules: Vec<DataCollectionRule>,
}

/// What `dcr create` asks for.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The rule's name.
    pub name: String,
    /// The workspace (it must exist; checked by the caller, who has the engine).
    pub workspace: String,
    /// Its flows.
    pub data_flows: Vec<DataFlow>,
}

/// The rules of one home.
#[derive(Debug)]
pub struct RuleStore {
    file: StateFile<RuleDoc>,
}

fn check_name(name: &str) -> Result<(), ServerError> {
    let ok = (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ServerError::refused(
            400,
            format!(
                "the rule name '{name}' is invalid: 3 to 64 letters, digits, '-' or '_', \
                 starting with a letter or digit"
            ),
        ))
    }
}

fn check_flow(flow: &DataFlow) -> Result<(), ServerError> {
    let Some(rest) = flow.stream.strip_prefix("Custom-") else {
        return Err(ServerError::refused(
            400,
            format!(
                "the stream '{}' must be named Custom-<Name>, as in Azure",
                flow.stream
            ),
        ));
    };
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ServerError::refused(
            400,
            format!("the stream name '{}' is invalid", flow.stream),
        ));
    }
    logvault::core::validate_name(logvault::core::NameKind::Table, &flow.table)
        .map_err(|e| ServerError::refused(400, e.to_string()))?;
    if let Some(kql) = &flow.transform_kql {
        crate::transform::validate(kql)
            .map_err(|e| ServerError::refused(400, format!("the transformKql is invalid: {e}")))?;
    }
    Ok(())
}

impl RuleStore {
    /// The rules of the home at `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            file: StateFile::new(
                "data collection rules",
                home.join("server").join("dcr.json"),
            ),
        }
    }

    /// Creates a rule.
    ///
    /// # Errors
    /// 400 for an invalid name, stream, table or transformation; 409 if the name is taken.
    pub fn create(
        &self,
        spec: RuleSpec,
        now: DateTime<Utc>,
    ) -> Result<DataCollectionRule, ServerError> {
        check_name(&spec.name)?;
        if spec.data_flows.is_empty() {
            return Err(ServerError::refused(400, "a rule needs a data flow"));
        }
        for flow in &spec.data_flows {
            check_flow(flow)?;
        }
        self.file.update(|doc| {
            if doc
                .rules
                .iter()
                .any(|r| r.name.eq_ignore_ascii_case(&spec.name))
            {
                return Err(ServerError::refused(
                    409,
                    format!("data collection rule {} already exists", spec.name),
                ));
            }
            let rule = DataCollectionRule {
                id: format!(
                    "/subscriptions/local/resourceGroups/local/providers/\
                     Microsoft.Insights/dataCollectionRules/{}",
                    spec.name
                ),
                immutable_id: format!("dcr-{}", uuid::Uuid::new_v4().simple()),
                name: spec.name,
                workspace: spec.workspace,
                data_flows: spec.data_flows,
                created_on: now,
            };
            doc.version = 1;
            doc.rules.push(rule.clone());
            Ok(rule)
        })
    }

    /// The rules, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub fn list(&self) -> Result<Vec<DataCollectionRule>, ServerError> {
        Ok(self.file.load()?.rules)
    }

    /// The rule named `name` or whose immutable id is `name`.
    ///
    /// # Errors
    /// 404 if there is none; store errors.
    pub fn get(&self, name: &str) -> Result<DataCollectionRule, ServerError> {
        self.file
            .load()?
            .rules
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.immutable_id == name)
            .ok_or_else(|| {
                ServerError::refused(404, format!("data collection rule {name} not found"))
            })
    }

    /// Deletes the rule named `name` (or with that immutable id).
    ///
    /// # Errors
    /// 404 if there is none; store errors.
    pub fn delete(&self, name: &str) -> Result<DataCollectionRule, ServerError> {
        self.file.update(|doc| {
            let Some(i) = doc
                .rules
                .iter()
                .position(|r| r.name.eq_ignore_ascii_case(name) || r.immutable_id == name)
            else {
                return Err(ServerError::refused(
                    404,
                    format!("data collection rule {name} not found"),
                ));
            };
            Ok(doc.rules.remove(i))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(name: &str, transform: Option<&str>) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            workspace: "ws1".into(),
            data_flows: vec![DataFlow {
                stream: "Custom-AppEvents".into(),
                table: "AppEvents".into(),
                transform_kql: transform.map(str::to_owned),
            }],
        }
    }

    #[test]
    fn rules_are_created_found_by_name_or_id_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::new(dir.path());
        let now = "2026-03-01T00:00:00Z".parse().unwrap();
        let rule = store
            .create(
                spec("app-rule", Some("source | where Level != 'debug'")),
                now,
            )
            .unwrap();
        assert!(rule.immutable_id.starts_with("dcr-"));
        assert_eq!(rule.immutable_id.len(), 36);
        assert_eq!(store.get(&rule.immutable_id).unwrap(), rule);
        assert_eq!(store.get("APP-RULE").unwrap(), rule);
        assert!(rule.flow("custom-appevents").is_some());
        assert_eq!(
            store
                .create(spec("app-rule", None), now)
                .unwrap_err()
                .code(),
            Some(409)
        );
        assert_eq!(store.list().unwrap().len(), 1);
        store.delete("app-rule").unwrap();
        assert_eq!(store.get("app-rule").unwrap_err().code(), Some(404));
    }

    #[test]
    fn bad_streams_tables_and_transforms_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::new(dir.path());
        let now = "2026-03-01T00:00:00Z".parse().unwrap();
        // Each refused for its own fault (the names are valid).
        let mut bad = spec("bad-stream", None);
        bad.data_flows[0].stream = "AppEvents".into();
        let err = store.create(bad, now).unwrap_err();
        assert_eq!(err.code(), Some(400));
        assert!(err.to_string().contains("stream"), "{err}");
        let mut bad = spec("bad-table", None);
        bad.data_flows[0].table = "bad table".into();
        let err = store.create(bad, now).unwrap_err();
        assert_eq!(err.code(), Some(400));
        assert!(err.to_string().contains("table"), "{err}");
        let err = store
            .create(spec("bad-transform", Some("source | wher x")), now)
            .unwrap_err();
        assert_eq!(err.code(), Some(400));
        assert!(err.to_string().contains("transformKql"), "{err}");
        assert_eq!(
            store.create(spec("x", None), now).unwrap_err().code(),
            Some(400)
        );
        assert!(store.list().unwrap().is_empty());
    }
}
