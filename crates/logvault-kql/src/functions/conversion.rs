//! Conversion functions: `tostring`, `tolong`, `todatetime`, `parse_json`, ...

use super::{FnCall, Impl};
use crate::error::KqlError;
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("tostring", to_string),
    ("tolong", to_long),
    ("toint", to_int),
    ("toreal", to_real),
    ("todouble", to_real),
    ("todecimal", to_decimal),
    ("tobool", to_bool),
    ("toboolean", to_bool),
    ("todatetime", to_datetime),
    ("totimespan", to_timespan),
    ("totime", to_timespan),
    ("todynamic", to_dynamic),
    ("toobject", to_dynamic),
    ("parse_json", to_dynamic),
    ("toguid", to_guid),
];

fn conv(c: &mut FnCall<'_>, to: KustoType) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(convert_pub(c.arg(0), to))
}

fn to_string(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::String)
}
fn to_long(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Long)
}
fn to_int(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Int)
}
fn to_real(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Real)
}
fn to_decimal(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Decimal)
}
fn to_bool(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Bool)
}
fn to_datetime(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::DateTime)
}
fn to_timespan(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Timespan)
}
fn to_dynamic(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    if a.ty == KustoType::Dynamic {
        return Ok(a);
    }
    Ok(convert_pub(a, KustoType::Dynamic))
}
fn to_guid(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    conv(c, KustoType::Guid)
}
