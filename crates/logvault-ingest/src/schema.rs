//! The schema of a table: inferred from what arrives, growing as new fields appear and widening
//! as values of other kinds arrive (see [`ColumnKind::widen`]).
//!
//! Every table starts with its two system columns, `TimeGenerated` and `_TimeReceived`
//! (timestamps, never null); other columns are added in the order they are first seen. Names keep
//! their case (`SigninLogs`, `TimeGenerated`); two names differing only in case are two columns.

use std::collections::HashMap;

use arrow::datatypes::{Field, Schema};
use logvault_core::{NameKind, validate_name};

use crate::IngestError;
use crate::kind::{
    ColumnKind, SOURCE_TIME_ZONE_METADATA_KEY, TIME_GENERATED, TIME_RECEIVED, system_time_field,
};

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column name, case kept.
    pub name: String,
    /// Its kind, the widening of every value seen.
    pub kind: ColumnKind,
    /// For a column exported with a non-UTC zone suffix (`AppLogDateTime [Jerusalem]`), the zone;
    /// its values are local times in that zone and are kept as text.
    pub source_time_zone: Option<String>,
}

/// What observing a column did to a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    /// Nothing changed.
    Unchanged,
    /// A new column was added.
    Added,
    /// The column's kind was widened from the given kind.
    Widened {
        /// The kind before.
        from: ColumnKind,
    },
}

/// The growing schema of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    table: String,
    columns: Vec<ColumnDef>,
    index: HashMap<String, usize>,
}

impl TableSchema {
    /// A new table with only its system columns.
    ///
    /// # Errors
    /// [`IngestError::InvalidTable`] if the name breaks the table naming rules (1-63 letters,
    /// digits and `_`, starting with a letter).
    pub fn new(table: &str) -> Result<Self, IngestError> {
        validate_name(NameKind::Table, table).map_err(|e| IngestError::InvalidTable {
            table: table.to_owned(),
            reason: e.to_string(),
        })?;
        let mut schema = Self {
            table: table.to_owned(),
            columns: Vec::new(),
            index: HashMap::new(),
        };
        schema.observe(TIME_GENERATED, ColumnKind::Timestamp, None);
        schema.observe(TIME_RECEIVED, ColumnKind::Timestamp, None);
        Ok(schema)
    }

    /// Rebuilds a table's schema from its Arrow form (as kept by a catalog).
    ///
    /// # Errors
    /// [`IngestError::InvalidTable`] for a bad name; [`IngestError::Arrow`] for a field of a type
    /// logvault never writes.
    pub fn from_arrow(table: &str, schema: &Schema) -> Result<Self, IngestError> {
        let mut out = Self::new(table)?;
        for field in schema.fields() {
            let kind = ColumnKind::of_field(field).ok_or_else(|| {
                IngestError::arrow(
                    table,
                    format!(
                        "column {} has type {} which logvault does not write",
                        field.name(),
                        field.data_type()
                    ),
                )
            })?;
            let zone = field.metadata().get(SOURCE_TIME_ZONE_METADATA_KEY);
            out.observe(field.name(), kind, zone.map(String::as_str));
        }
        Ok(out)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The columns, system columns first, then in the order they were first seen.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// The number of columns, system columns included.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Always false: a table has at least its system columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// A column by exact name.
    pub fn get(&self, name: &str) -> Option<&ColumnDef> {
        self.index.get(name).map(|&i| &self.columns[i])
    }

    /// The position of a column by exact name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Records that column `name` holds values of `kind`: adds the column, or widens it.
    pub fn observe(&mut self, name: &str, kind: ColumnKind, zone: Option<&str>) -> SchemaChange {
        if let Some(&i) = self.index.get(name) {
            let col = &mut self.columns[i];
            let widened = col.kind.widen(kind);
            if col.source_time_zone.is_none()
                && let Some(zone) = zone
            {
                col.source_time_zone = Some(zone.to_owned());
            }
            if widened == col.kind {
                return SchemaChange::Unchanged;
            }
            let from = col.kind;
            col.kind = widened;
            tracing::debug!(table = %self.table, column = name, %from, to = %widened, "column widened");
            return SchemaChange::Widened { from };
        }
        self.index.insert(name.to_owned(), self.columns.len());
        self.columns.push(ColumnDef {
            name: name.to_owned(),
            kind,
            source_time_zone: zone.map(str::to_owned),
        });
        SchemaChange::Added
    }

    /// The Arrow schema of the whole table (all columns, `Null` kinds included).
    pub fn to_arrow(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| column_field(&c.name, c.kind, c.source_time_zone.as_deref()))
                .collect::<Vec<_>>(),
        )
    }
}

/// The Arrow field of a column; the system time columns are non-null.
pub(crate) fn column_field(name: &str, kind: ColumnKind, zone: Option<&str>) -> Field {
    if name == TIME_GENERATED || name == TIME_RECEIVED {
        system_time_field(name)
    } else {
        kind.field(name, zone)
    }
}

/// Splits an export header `Name [Zone]` into its name and zone. The zone is `None` both when
/// there is no suffix and when it is `UTC` (the values are then plain UTC times).
pub(crate) fn split_zone_suffix(header: &str) -> (&str, Option<&str>) {
    let h = header.trim();
    if let Some(body) = h.strip_suffix(']')
        && let Some((name, zone)) = body.rsplit_once(" [")
        && !name.trim().is_empty()
        && !zone.is_empty()
        && !zone.contains(['[', ']'])
    {
        let zone = (!zone.eq_ignore_ascii_case("UTC")).then_some(zone);
        return (name.trim_end(), zone);
    }
    (h, None)
}

/// `base`, or `base_`, `base__`, ... : the first that `taken` says is free. This is how Log
/// Analytics renames a field that collides with another (`OrganizationId_`).
pub(crate) fn free_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut name = base.to_owned();
    while taken(&name) {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_system_columns_and_grows() {
        let mut s = TableSchema::new("SigninLogs").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.columns()[0].name, "TimeGenerated");
        assert_eq!(
            s.observe("Count", ColumnKind::Int, None),
            SchemaChange::Added
        );
        assert_eq!(
            s.observe("count", ColumnKind::Int, None),
            SchemaChange::Added
        );
        assert_eq!(
            s.observe("Count", ColumnKind::Null, None),
            SchemaChange::Unchanged
        );
        assert_eq!(
            s.observe("Count", ColumnKind::Float, None),
            SchemaChange::Widened {
                from: ColumnKind::Int
            }
        );
        assert_eq!(s.get("Count").unwrap().kind, ColumnKind::Float);
        let arrow = s.to_arrow();
        assert!(!arrow.field(0).is_nullable());
        assert_eq!(TableSchema::from_arrow("SigninLogs", &arrow).unwrap(), s);
    }

    #[test]
    fn rejects_bad_table_names() {
        assert!(TableSchema::new("bad name").is_err());
        assert!(TableSchema::new("1table").is_err());
        assert!(TableSchema::new("ABAPAppLog_CL").is_ok());
    }

    #[test]
    fn zone_suffixes() {
        assert_eq!(
            split_zone_suffix("TimeGenerated [UTC]"),
            ("TimeGenerated", None)
        );
        assert_eq!(
            split_zone_suffix("AppLogDateTime [Jerusalem]"),
            ("AppLogDateTime", Some("Jerusalem"))
        );
        assert_eq!(split_zone_suffix(" Plain "), ("Plain", None));
        assert_eq!(split_zone_suffix("[UTC]"), ("[UTC]", None));
        assert_eq!(split_zone_suffix("a [b] [c]"), ("a [b]", Some("c")));
    }

    #[test]
    fn free_names() {
        let taken = ["a", "a_"];
        assert_eq!(free_name("a", |n| taken.contains(&n)), "a__");
        assert_eq!(free_name("b", |n| taken.contains(&n)), "b");
    }
}
