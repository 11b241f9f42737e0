//! Tables with a declared schema (`logvault table create --schema FILE`).
//!
//! A table is made by its first rows, and its columns follow what arrives. A table created with
//! a declared schema has its columns and their Kusto types from the start: KQL and SQL see them
//! before any row arrives, and ingestion conforms every row to them (a value that does not
//! convert is stored as null and counted; a column the declaration does not name is left out
//! and named in the ingest's report). The declaration is kept in the table's catalog.
//!
//! The file has the shape of the Tables API's `properties.schema` (and of the table entries of
//! Log Analytics' reference): `{"columns": [{"name": "...", "type": "<Kusto type>",
//! "description": "..."}]}`; the whole Tables API body (`{"properties": {"schema": {...}}}`)
//! is read too.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use logvault_core::{NameKind, validate_name};
use logvault_ingest::{
    DYNAMIC_KIND, KIND_METADATA_KEY, KUSTO_TYPE_METADATA_KEY, TIME_GENERATED, TIME_RECEIVED,
};
use logvault_kql::KustoType;
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

/// Field metadata key of a declared column's description.
pub const DESCRIPTION_METADATA_KEY: &str = "logvault.description";
/// The most columns a declared schema may have (Log Analytics' limit for a table).
pub const MAX_DECLARED_COLUMNS: usize = 500;
const MAX_COLUMN_NAME: usize = 128;

/// One column of a declared schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredColumn {
    /// The column's name (case-sensitive).
    pub name: String,
    /// Its Kusto type (`string`, `long`, `int`, `real`, `bool`, `datetime`, `timespan`,
    /// `dynamic`, `guid`, `decimal`, or one of their aliases).
    #[serde(rename = "type")]
    pub kusto_type: String,
    /// What it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Deserialize)]
struct SchemaBody {
    columns: Vec<DeclaredColumn>,
}

#[derive(Deserialize)]
struct TablesApiBody {
    properties: TablesApiProperties,
}

#[derive(Deserialize)]
struct TablesApiProperties {
    schema: SchemaBody,
}

/// Reads a declared schema file (see the module documentation).
///
/// # Errors
/// [`EngineError::Schema`] saying what is wrong with the JSON.
pub fn parse_schema_file(table: &str, text: &str) -> Result<Vec<DeclaredColumn>, EngineError> {
    let invalid = |reason: String| EngineError::Schema {
        table: table.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let body = if value.get("properties").is_some() {
        serde_json::from_value::<TablesApiBody>(value).map(|b| b.properties.schema)
    } else {
        serde_json::from_value::<SchemaBody>(value)
    };
    body.map(|b| b.columns).map_err(|e| {
        invalid(format!(
            "expected {{\"columns\": [{{\"name\": ..., \"type\": ..., \"description\": ...}}]}}: {e}"
        ))
    })
}

/// The Arrow schema a declaration stores rows as: the columns in order (`TimeGenerated` a
/// non-null UTC timestamp), then the system column `_TimeReceived`; each field carries its
/// Kusto type and description in its metadata.
///
/// # Errors
/// [`EngineError::Schema`]: no `TimeGenerated` of type `datetime`, a column named twice, a bad
/// or reserved name, an unknown type, too many columns.
pub fn declared_arrow_schema(
    table: &str,
    columns: &[DeclaredColumn],
) -> Result<SchemaRef, EngineError> {
    let invalid = |reason: String| EngineError::Schema {
        table: table.to_owned(),
        reason,
    };
    if columns.is_empty() {
        return Err(invalid("the schema has no columns".into()));
    }
    if columns.len() > MAX_DECLARED_COLUMNS {
        return Err(invalid(format!(
            "{} columns; a table has at most {MAX_DECLARED_COLUMNS}",
            columns.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(columns.len() + 1);
    for c in columns {
        check_column_name(&c.name).map_err(|r| invalid(format!("column {:?}: {r}", c.name)))?;
        if !seen.insert(c.name.as_str()) {
            return Err(invalid(format!("column {} is declared twice", c.name)));
        }
        let ty: KustoType = c.kusto_type.parse().map_err(|_| {
            invalid(format!(
                "column {} has type {:?}, which is not a Kusto type (string, long, int, real, bool, \
                 datetime, timespan, dynamic, guid, decimal)",
                c.name, c.kusto_type
            ))
        })?;
        if c.name == TIME_GENERATED && ty != KustoType::DateTime {
            return Err(invalid(format!(
                "column {TIME_GENERATED} must be of type datetime, not {ty}"
            )));
        }
        fields.push(stored_field(&c.name, ty, c.description.as_deref()));
    }
    if !seen.contains(TIME_GENERATED) {
        return Err(invalid(format!(
            "the schema has no {TIME_GENERATED} column (every table has one, of type datetime)"
        )));
    }
    fields.push(Field::new(TIME_RECEIVED, utc_micros(), false));
    Ok(Arc::new(Schema::new(fields)))
}

fn check_column_name(name: &str) -> Result<(), String> {
    if name == TIME_RECEIVED {
        return Err("a system column, set by logvault".into());
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a column name is letters, digits and _, starting with a letter".into());
    }
    if name.len() > MAX_COLUMN_NAME {
        return Err(format!("longer than {MAX_COLUMN_NAME} characters"));
    }
    Ok(())
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The field a column of Kusto type `ty` is stored as.
fn stored_field(name: &str, ty: KustoType, description: Option<&str>) -> Field {
    let data_type = match ty {
        KustoType::Bool => DataType::Boolean,
        KustoType::Int => DataType::Int32,
        KustoType::Long => DataType::Int64,
        KustoType::Real => DataType::Float64,
        KustoType::Decimal => DataType::Decimal128(38, 18),
        KustoType::String | KustoType::Dynamic | KustoType::Guid => DataType::Utf8,
        KustoType::DateTime => utc_micros(),
        KustoType::Timespan => DataType::Duration(TimeUnit::Nanosecond),
    };
    let mut metadata = BTreeMap::new();
    metadata.insert(KUSTO_TYPE_METADATA_KEY.to_owned(), ty.name().to_owned());
    if ty == KustoType::Dynamic {
        metadata.insert(KIND_METADATA_KEY.to_owned(), DYNAMIC_KIND.to_owned());
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        metadata.insert(DESCRIPTION_METADATA_KEY.to_owned(), d.to_owned());
    }
    Field::new(name, data_type, name != TIME_GENERATED)
        .with_metadata(metadata.into_iter().collect())
}

/// A declared schema as columns again (for `table show` and the Tables API).
pub fn declared_columns(schema: &Schema) -> Vec<DeclaredColumn> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != TIME_RECEIVED)
        .map(|f| DeclaredColumn {
            name: f.name().clone(),
            kusto_type: f
                .metadata()
                .get(KUSTO_TYPE_METADATA_KEY)
                .cloned()
                .or_else(|| KustoType::of_field(f).map(|t| t.name().to_owned()))
                .unwrap_or_else(|| "string".to_owned()),
            description: f.metadata().get(DESCRIPTION_METADATA_KEY).cloned(),
        })
        .collect()
}

impl Engine {
    /// Creates `table` in `workspace` with a declared schema (see the module documentation).
    ///
    /// # Errors
    /// 404 for a missing workspace; an invalid table name; [`EngineError::Schema`] for a bad
    /// declaration; [`logvault_store::StoreError::TableExists`] (409) when the table already has
    /// a declared schema or rows; catalog errors.
    pub async fn create_table(
        &self,
        workspace: &str,
        table: &str,
        columns: &[DeclaredColumn],
    ) -> Result<Vec<DeclaredColumn>, EngineError> {
        self.control().get_workspace(workspace)?;
        validate_name(NameKind::Table, table)?;
        let schema = declared_arrow_schema(table, columns)?;
        let manifest = self
            .store()
            .catalog()
            .declare(workspace, table, self.now(), schema)
            .await?;
        tracing::info!(
            workspace,
            table,
            columns = columns.len(),
            "table created with a declared schema"
        );
        Ok(manifest
            .declared
            .as_deref()
            .map(declared_columns)
            .unwrap_or_default())
    }

    /// The columns of `table` with their Kusto types: the declared ones (and any other the
    /// table's segments hold), or those its rows brought.
    ///
    /// # Errors
    /// 404 for a missing workspace or table; catalog errors.
    pub async fn table_columns(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<TableColumns, EngineError> {
        self.control().get_workspace(workspace)?;
        validate_name(NameKind::Table, table)?;
        let manifest = self.store().catalog().manifest(workspace, table).await?;
        if manifest.version == 0 {
            return Err(EngineError::Control(
                logvault_control::ControlError::Refused {
                    code: 404,
                    message: format!("table {table} not found in workspace {workspace}"),
                },
            ));
        }
        Ok(TableColumns {
            table: table.to_owned(),
            declared: manifest.declared.is_some(),
            columns: declared_columns(&manifest.schema()),
        })
    }
}

/// A table's columns, as `logvault table show` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableColumns {
    /// The table.
    pub table: String,
    /// Whether its schema is declared (else it follows the rows).
    pub declared: bool,
    /// The columns (system column `_TimeReceived` left out).
    pub columns: Vec<DeclaredColumn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> DeclaredColumn {
        DeclaredColumn {
            name: name.into(),
            kusto_type: ty.into(),
            description: None,
        }
    }

    #[test]
    fn both_file_shapes_are_read() {
        let plain =
            r#"{"columns":[{"name":"TimeGenerated","type":"datetime","description":"when"}]}"#;
        let api = r#"{"properties":{"schema":{"name":"App_CL","columns":[{"name":"TimeGenerated","type":"datetime"}]}}}"#;
        assert_eq!(
            parse_schema_file("App", plain).unwrap()[0]
                .description
                .as_deref(),
            Some("when")
        );
        assert_eq!(
            parse_schema_file("App", api).unwrap()[0].name,
            "TimeGenerated"
        );
        let err = parse_schema_file("App", r#"{"cols":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("table App") && err.contains("columns"),
            "{err}"
        );
        assert!(parse_schema_file("App", "not json").is_err());
    }

    #[test]
    fn declarations_are_checked() {
        let ok = [
            col("TimeGenerated", "datetime"),
            col("Code", "int"),
            col("Props", "dynamic"),
        ];
        let schema = declared_arrow_schema("App", &ok).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["TimeGenerated", "Code", "Props", "_TimeReceived"]);
        assert_eq!(schema.field(1).data_type(), &DataType::Int32);
        assert!(logvault_ingest::is_dynamic(schema.field(2)));
        assert_eq!(declared_columns(&schema), ok);
        for (bad, why) in [
            (vec![col("Code", "int")], "no TimeGenerated"),
            (
                vec![col("TimeGenerated", "string")],
                "must be of type datetime",
            ),
            (
                vec![
                    col("TimeGenerated", "datetime"),
                    col("A", "int"),
                    col("A", "long"),
                ],
                "declared twice",
            ),
            (
                vec![col("TimeGenerated", "datetime"), col("A", "integer")],
                "not a Kusto type",
            ),
            (
                vec![
                    col("TimeGenerated", "datetime"),
                    col("_TimeReceived", "datetime"),
                ],
                "system column",
            ),
            (
                vec![col("TimeGenerated", "datetime"), col("1a", "int")],
                "starting with a letter",
            ),
            (vec![], "no columns"),
        ] {
            let err = declared_arrow_schema("App", &bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("App"), "{err}");
        }
    }
}
