//! Kusto's scalar types and their Arrow representation.
//!
//! | Kusto | Arrow (what KQL computes) | also read from tables as |
//! | --- | --- | --- |
//! | `bool` | `Boolean` | |
//! | `int` | `Int32` | `Int8`, `Int16`, `UInt8`, `UInt16` |
//! | `long` | `Int64` | `UInt32`, `UInt64` |
//! | `real` | `Float64` | `Float32`, `Float16` |
//! | `decimal` | `Decimal128(38, 18)` | any decimal |
//! | `string` | `Utf8` | `Utf8View`, `LargeUtf8` |
//! | `datetime` | `Timestamp(Nanosecond, "UTC")` | any timestamp (logvault stores microseconds), `Date32/64` |
//! | `timespan` | `Duration(Nanosecond)` | any duration |
//! | `dynamic` | `Utf8` holding JSON text | fields marked `logvault.kind = dynamic`, lists, structs |
//! | `guid` | `Utf8` (lower-case canonical text) | fields marked `kusto.type = guid` |
//!
//! A datetime is 100 ns ticks in Kusto; nanoseconds hold every tick between the years 1677 and
//! 2262, which covers log data (Kusto's range is 0001-9999).

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::{DataType, Field, TimeUnit};

/// Field metadata key naming a column's Kusto type when Arrow's type does not say it
/// (`dynamic` and `guid` are both text, `int` may be stored as `long`).
pub const KUSTO_TYPE_METADATA_KEY: &str = "kusto.type";
/// logvault's ingestion marks dynamic columns with this key (see `logvault-ingest`).
pub const LOGVAULT_KIND_METADATA_KEY: &str = "logvault.kind";

/// A Kusto scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KustoType {
    /// `bool`
    Bool,
    /// `int` (32 bits)
    Int,
    /// `long` (64 bits)
    Long,
    /// `real` (64-bit float)
    Real,
    /// `decimal` (128-bit)
    Decimal,
    /// `string`
    String,
    /// `datetime`
    DateTime,
    /// `timespan`
    Timespan,
    /// `dynamic` (JSON)
    Dynamic,
    /// `guid`
    Guid,
}

impl KustoType {
    /// Every type.
    pub const ALL: [KustoType; 10] = [
        Self::Bool,
        Self::Int,
        Self::Long,
        Self::Real,
        Self::Decimal,
        Self::String,
        Self::DateTime,
        Self::Timespan,
        Self::Dynamic,
        Self::Guid,
    ];

    /// Kusto's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Long => "long",
            Self::Real => "real",
            Self::Decimal => "decimal",
            Self::String => "string",
            Self::DateTime => "datetime",
            Self::Timespan => "timespan",
            Self::Dynamic => "dynamic",
            Self::Guid => "guid",
        }
    }

    /// The .NET type name Kusto's `getschema` reports.
    pub fn dotnet_name(self) -> &'static str {
        match self {
            Self::Bool => "System.Boolean",
            Self::Int => "System.Int32",
            Self::Long => "System.Int64",
            Self::Real => "System.Double",
            Self::Decimal => "System.Data.SqlTypes.SqlDecimal",
            Self::String => "System.String",
            Self::DateTime => "System.DateTime",
            Self::Timespan => "System.TimeSpan",
            Self::Dynamic => "System.Object",
            Self::Guid => "System.Guid",
        }
    }

    /// The Arrow type KQL computes values of this type in.
    pub fn arrow(self) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int => DataType::Int32,
            Self::Long => DataType::Int64,
            Self::Real => DataType::Float64,
            Self::Decimal => DataType::Decimal128(38, 18),
            Self::String | Self::Dynamic | Self::Guid => DataType::Utf8,
            Self::DateTime => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Self::Timespan => DataType::Duration(TimeUnit::Nanosecond),
        }
    }

    /// The Kusto type of an Arrow field (its metadata first, then its Arrow type).
    pub fn of_field(field: &Field) -> Option<KustoType> {
        let meta = field.metadata();
        if let Some(t) = meta.get(KUSTO_TYPE_METADATA_KEY)
            && let Ok(t) = t.parse()
        {
            return Some(t);
        }
        if meta.get(LOGVAULT_KIND_METADATA_KEY).map(String::as_str) == Some("dynamic") {
            return Some(Self::Dynamic);
        }
        Self::of_arrow(field.data_type())
    }

    /// The Kusto type of values of an Arrow type.
    pub fn of_arrow(dt: &DataType) -> Option<KustoType> {
        Some(match dt {
            DataType::Boolean => Self::Bool,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16 => Self::Int,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Self::Long,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Self::Real,
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => Self::Decimal,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Self::String,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => Self::DateTime,
            DataType::Duration(_) => Self::Timespan,
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::ListView(_)
            | DataType::FixedSizeList(..)
            | DataType::Struct(_)
            | DataType::Map(..) => Self::Dynamic,
            DataType::Null => Self::String,
            _ => return None,
        })
    }

    /// Whether the type is a number (`int`, `long`, `real`, `decimal`).
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Long | Self::Real | Self::Decimal)
    }

    /// Whether the type is an integer (`int`, `long`).
    pub fn is_integer(self) -> bool {
        matches!(self, Self::Int | Self::Long)
    }

    /// Whether the type is text in Arrow (`string`, `dynamic`, `guid`).
    pub fn is_textual(self) -> bool {
        matches!(self, Self::String | Self::Dynamic | Self::Guid)
    }

    /// An Arrow field of this type, with the metadata that keeps the Kusto type where Arrow's
    /// type alone would not.
    pub fn field(self, name: &str) -> Field {
        let field = Field::new(name, self.arrow(), true);
        match self {
            Self::Dynamic | Self::Guid | Self::Int | Self::Decimal => field.with_metadata(
                [(KUSTO_TYPE_METADATA_KEY.to_owned(), self.name().to_owned())].into(),
            ),
            _ => field,
        }
    }

    /// The wider numeric type of two (for arithmetic): real > decimal > long > int.
    pub fn numeric_join(a: KustoType, b: KustoType) -> KustoType {
        use KustoType::*;
        match (a, b) {
            (Real, _) | (_, Real) => Real,
            (Decimal, _) | (_, Decimal) => Decimal,
            (Long, _) | (_, Long) => Long,
            _ => Int,
        }
    }
}

impl fmt::Display for KustoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

impl FromStr for KustoType {
    type Err = UnknownType;

    /// Kusto's type names and their aliases (`boolean`, `int32`, `int64`, `double`, `date`,
    /// `time`, `uuid`, `uniqueid`, `System.String`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "bool" | "boolean" | "system.boolean" | "sbyte" | "system.sbyte" => Self::Bool,
            "int" | "int32" | "system.int32" => Self::Int,
            "long" | "int64" | "system.int64" => Self::Long,
            "real" | "double" | "float" | "system.double" | "system.single" => Self::Real,
            "decimal" | "system.decimal" | "system.data.sqltypes.sqldecimal" => Self::Decimal,
            "string" | "system.string" => Self::String,
            "datetime" | "date" | "system.datetime" => Self::DateTime,
            "timespan" | "time" | "system.timespan" => Self::Timespan,
            "dynamic" | "system.object" => Self::Dynamic,
            "guid" | "uuid" | "uniqueid" | "system.guid" => Self::Guid,
            _ => return Err(UnknownType(s.to_owned())),
        })
    }
}

/// A result column: its name and Kusto type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KustoColumn {
    /// The column's name.
    pub name: String,
    /// Its Kusto type's name.
    #[serde(rename = "type", with = "type_name")]
    pub ty: KustoType,
}

mod type_name {
    use super::KustoType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &KustoType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KustoType, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown Kusto type '{s}'")))
    }
}

/// The columns of a result, with their Kusto types.
pub type KustoSchema = Vec<KustoColumn>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in KustoType::ALL {
            assert_eq!(t.name().parse::<KustoType>().unwrap(), t);
            assert_eq!(KustoType::of_field(&t.field("x")), Some(t), "{t}");
        }
        assert!("varchar".parse::<KustoType>().is_err());
    }

    #[test]
    fn logvault_dynamic_columns() {
        let f = Field::new("d", DataType::Utf8, true)
            .with_metadata([(LOGVAULT_KIND_METADATA_KEY.to_owned(), "dynamic".to_owned())].into());
        assert_eq!(KustoType::of_field(&f), Some(KustoType::Dynamic));
        let t = Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        );
        assert_eq!(KustoType::of_field(&t), Some(KustoType::DateTime));
    }
}
