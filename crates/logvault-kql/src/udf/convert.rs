//! Kusto's conversions (`tostring`, `tolong`, `todatetime`, ...): a value that does not
//! convert is null, never an error.

use datafusion::logical_expr::Expr;
use serde_json::Value;

use super::rowfn::RowUdf;
use super::value::Val;
use crate::literal::parse_datetime;
use crate::types::KustoType;

/// A call converting `e` (of Kusto type `from`) to `to`.
pub fn call(e: Expr, from: KustoType, to: KustoType) -> Expr {
    let (name, f): (&str, fn(&[Val]) -> Val) = match to {
        KustoType::String => ("tostring", to_string),
        KustoType::Long => ("tolong", to_long),
        KustoType::Int => ("toint", to_long),
        KustoType::Real => ("toreal", to_real),
        KustoType::Decimal => ("todecimal", to_real),
        KustoType::Bool => ("tobool", to_bool),
        KustoType::DateTime => ("todatetime", to_datetime),
        KustoType::Timespan => ("totimespan", to_timespan),
        KustoType::Dynamic => ("todynamic", to_dynamic),
        KustoType::Guid => ("toguid", to_guid),
    };
    RowUdf::call(name, vec![e], vec![from], to, false, f)
}

fn first(v: &[Val]) -> &Val {
    v.first().unwrap_or(&Val::Null)
}

/// `tostring`: null and dynamic null are the empty string.
pub fn to_string(v: &[Val]) -> Val {
    Val::Str(first(v).to_text())
}

fn to_long(v: &[Val]) -> Val {
    match first(v) {
        Val::Str(s) | Val::Dynamic(Value::String(s)) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(x) => Val::Long(x),
                Err(_) => t
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map_or(Val::Null, |f| Val::Long(f.trunc() as i64)),
            }
        }
        other => other.as_i64().map_or(Val::Null, Val::Long),
    }
}

fn to_real(v: &[Val]) -> Val {
    match first(v) {
        Val::Str(s) | Val::Dynamic(Value::String(s)) => {
            crate::parser::parse_real(s).map_or(Val::Null, Val::Real)
        }
        other => other.as_f64().map_or(Val::Null, Val::Real),
    }
}

fn to_bool(v: &[Val]) -> Val {
    first(v).as_bool().map_or(Val::Null, Val::Bool)
}

fn to_datetime(v: &[Val]) -> Val {
    match first(v) {
        Val::DateTime(t) => Val::DateTime(*t),
        Val::Str(s) | Val::Dynamic(Value::String(s)) => {
            parse_datetime(s).map_or(Val::Null, Val::DateTime)
        }
        _ => Val::Null,
    }
}

fn to_timespan(v: &[Val]) -> Val {
    first(v).as_timespan().map_or(Val::Null, Val::Timespan)
}

fn to_dynamic(v: &[Val]) -> Val {
    match first(v) {
        Val::Null => Val::Null,
        Val::Str(s) => {
            Val::Dynamic(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())))
        }
        other => Val::Dynamic(other.as_dynamic()),
    }
}

fn to_guid(v: &[Val]) -> Val {
    match first(v) {
        Val::Guid(g) => Val::Guid(g.clone()),
        Val::Str(s) | Val::Dynamic(Value::String(s)) => {
            let g = s
                .trim()
                .trim_matches(|c| c == '{' || c == '}')
                .to_ascii_lowercase();
            let hex: String = g.chars().filter(|c| *c != '-').collect();
            if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                Val::Guid(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                ))
            } else {
                Val::Null
            }
        }
        _ => Val::Null,
    }
}
