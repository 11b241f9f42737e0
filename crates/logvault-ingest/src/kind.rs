//! Column kinds, the widening rule between them, and their Arrow representation.
//!
//! The kinds form a lattice, so that the order in which values arrive never changes the result:
//!
//! ```text
//!                      String (Utf8)
//!      /        |           |            \
//!   Bool      Float     Timestamp      Dynamic
//!               |
//!              Int
//!      \        |           |            /
//!                         Null
//! ```
//!
//! [`ColumnKind::widen`] is the join of this lattice: `Null` joins to anything, `Int + Float` is
//! `Float`, and any other pair of different kinds is `String` (so `Bool + Int`, `Timestamp +
//! Int`, `Dynamic + Int`, anything `+ String` are all `String`). No value is ever rejected for its
//! type: a value that does not fit a column widens the column.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};

/// Name of the time column every table has (UTC, microseconds, never null).
pub const TIME_GENERATED: &str = "TimeGenerated";
/// Name of the system column holding when logvault received the row (UTC, microseconds).
pub const TIME_RECEIVED: &str = "_TimeReceived";
/// Field metadata key carrying logvault's kind of a column when Arrow's type does not say it all.
pub const KIND_METADATA_KEY: &str = "logvault.kind";
/// Value of [`KIND_METADATA_KEY`] on a dynamic column: Utf8 holding JSON text.
pub const DYNAMIC_KIND: &str = "dynamic";
/// Field metadata key naming the time zone of an export's column header (`X [Jerusalem]`), kept
/// because the values are local times in that zone and are stored as text.
pub const SOURCE_TIME_ZONE_METADATA_KEY: &str = "logvault.source_time_zone";

/// The timezone of every timestamp column.
pub(crate) const UTC: &str = "UTC";

/// The kind of a column, as inferred from its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// Only nulls seen so far. Not written to segments (a column that is null in every row of a
    /// batch is left out of that batch).
    Null,
    /// `true` / `false`: Arrow `Boolean`.
    Bool,
    /// Integers that fit in 64 bits: Arrow `Int64`.
    Int,
    /// Other numbers: Arrow `Float64`.
    Float,
    /// Date-times: Arrow `Timestamp(Microsecond, "UTC")`.
    Timestamp,
    /// Nested JSON objects and arrays, kept as their JSON text: Arrow `Utf8` with field metadata
    /// `logvault.kind = dynamic`.
    Dynamic,
    /// Text: Arrow `Utf8`.
    String,
}

impl ColumnKind {
    /// Every kind, for tests and exhaustive tables.
    pub const ALL: [ColumnKind; 7] = [
        Self::Null,
        Self::Bool,
        Self::Int,
        Self::Float,
        Self::Timestamp,
        Self::Dynamic,
        Self::String,
    ];

    /// The narrowest kind holding both `self` and `other` (the lattice join).
    pub fn widen(self, other: ColumnKind) -> ColumnKind {
        use ColumnKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int, Float) | (Float, Int) => Float,
            _ => String,
        }
    }

    /// The Arrow type of a column of this kind.
    pub fn data_type(self) -> DataType {
        match self {
            Self::Null => DataType::Null,
            Self::Bool => DataType::Boolean,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Timestamp => timestamp_type(),
            Self::Dynamic | Self::String => DataType::Utf8,
        }
    }

    /// An Arrow field of this kind (nullable), carrying the dynamic marker when needed.
    pub fn field(self, name: &str, source_time_zone: Option<&str>) -> Field {
        let mut metadata = HashMap::new();
        if self == Self::Dynamic {
            metadata.insert(KIND_METADATA_KEY.to_owned(), DYNAMIC_KIND.to_owned());
        }
        if let Some(zone) = source_time_zone {
            metadata.insert(SOURCE_TIME_ZONE_METADATA_KEY.to_owned(), zone.to_owned());
        }
        Field::new(name, self.data_type(), true).with_metadata(metadata)
    }

    /// The kind of an Arrow field written by logvault, or `None` for a type logvault never writes.
    pub fn of_field(field: &Field) -> Option<ColumnKind> {
        Some(match field.data_type() {
            DataType::Null => Self::Null,
            DataType::Boolean => Self::Bool,
            DataType::Int64 => Self::Int,
            DataType::Float64 => Self::Float,
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == UTC => {
                Self::Timestamp
            }
            DataType::Utf8 => {
                if is_dynamic(field) {
                    Self::Dynamic
                } else {
                    Self::String
                }
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Float => "float",
            Self::Timestamp => "timestamp",
            Self::Dynamic => "dynamic",
            Self::String => "string",
        })
    }
}

/// `Timestamp(Microsecond, "UTC")`, the type of every time column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC)))
}

/// Whether a field is marked dynamic (JSON text).
pub fn is_dynamic(field: &Field) -> bool {
    field
        .metadata()
        .get(KIND_METADATA_KEY)
        .is_some_and(|v| v == DYNAMIC_KIND)
}

/// The non-null field of a system time column (`TimeGenerated`, `_TimeReceived`).
pub(crate) fn system_time_field(name: &str) -> Field {
    Field::new(name, timestamp_type(), false)
}

#[cfg(test)]
mod tests {
    use super::ColumnKind::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_rules() {
        assert_eq!(Int.widen(Float), Float);
        assert_eq!(Float.widen(Int), Float);
        assert_eq!(Bool.widen(Int), String);
        assert_eq!(Bool.widen(Float), String);
        assert_eq!(Timestamp.widen(Int), String);
        assert_eq!(Dynamic.widen(Int), String);
        assert_eq!(Dynamic.widen(String), String);
        assert_eq!(Null.widen(Dynamic), Dynamic);
        for k in ColumnKind::ALL {
            assert_eq!(k.widen(String), String);
            assert_eq!(k.widen(Null), k);
            assert_eq!(k.widen(k), k);
        }
    }

    #[test]
    fn fields_round_trip() {
        for k in ColumnKind::ALL {
            let f = k.field("c", None);
            assert_eq!(ColumnKind::of_field(&f), Some(k), "{k}");
        }
        assert!(is_dynamic(&Dynamic.field("d", None)));
        assert!(!is_dynamic(&String.field("s", None)));
        let f = Field::new("x", DataType::Int32, true);
        assert_eq!(ColumnKind::of_field(&f), None);
    }

    fn kind() -> impl Strategy<Value = ColumnKind> {
        prop::sample::select(ColumnKind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn widen_is_a_join(a in kind(), b in kind(), c in kind()) {
            prop_assert_eq!(a.widen(b), b.widen(a));
            prop_assert_eq!(a.widen(b).widen(c), a.widen(b.widen(c)));
            // The join is an upper bound of both: widening it by either changes nothing.
            let j = a.widen(b);
            prop_assert_eq!(j.widen(a), j);
            prop_assert_eq!(j.widen(b), j);
        }
    }
}
