//! Comparing a result with rows as the KQL documentation renders them (strings): numbers
//! within the precision shown, datetimes and timespans parsed, dynamic values parsed as JSON.

use logvault_kql::KustoType;
use logvault_kql::literal::{parse_datetime, parse_dynamic, parse_timespan};
use logvault_kql::udf::value::Val;
use serde_json::Value;

/// The documentation's cell text, cleaned of markdown.
pub(crate) fn clean(cell: &str) -> String {
    let mut c = cell.trim().replace("<br>", "").replace("\\|", "|");
    // Markdown writes an empty cell as `&nbsp;`.
    if c == "&nbsp;" {
        c.clear();
    }
    if c.len() >= 2 && c.starts_with('`') && c.ends_with('`') {
        c = c[1..c.len() - 1].to_owned();
    }
    // Markdown renders a URL as an autolink `<url>` or a link `[url](url)`.
    if c.starts_with("<http") && c.ends_with('>') && !c.contains(' ') {
        c = c[1..c.len() - 1].to_owned();
    }
    if let Some(inner) = c.strip_prefix('[').and_then(|r| r.strip_suffix(')'))
        && let Some((text, target)) = inner.split_once("](")
        && text == target
    {
        c = text.to_owned();
    }
    c.trim().to_owned()
}

/// Whether `a` is within the precision `expected` was written with.
fn num_close(expected: &str, a: f64) -> bool {
    let e = expected.replace(',', "");
    let lower = e.to_ascii_lowercase();
    if lower == "nan" {
        return a.is_nan();
    }
    if lower == "infinity" || lower == "inf" || lower == "+inf" || e == "∞" {
        return a == f64::INFINITY;
    }
    if lower == "-infinity" || lower == "-inf" || e == "-∞" {
        return a == f64::NEG_INFINITY;
    }
    let Ok(x) = e.parse::<f64>() else {
        return false;
    };
    if x == a {
        return true;
    }
    let decimals = e
        .split_once('.')
        .map(|(_, f)| f.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0);
    let shown = if e.contains(['e', 'E']) {
        0.0
    } else {
        0.5 * 10f64.powi(-(decimals as i32))
    };
    let diff = (x - a).abs();
    diff <= shown * 1.000_001 || diff <= 1e-9 * x.abs().max(a.abs()) || diff < 1e-12
}

fn json_close(e: &Value, a: &Value) -> bool {
    match (e, a) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) || num_close(&e.to_string(), y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        (Value::String(x), Value::String(y)) => {
            x == y
                || matches!((parse_datetime(x), parse_datetime(y)), (Some(p), Some(q)) if p == q && x.contains('-'))
        }
        (Value::String(x), Value::Number(_)) | (Value::Number(_), Value::String(x)) => {
            // "NaN" inside JSON.
            x == "NaN" && a.to_string().contains("NaN")
        }
        _ => e == a,
    }
}

/// Whether a string holding JSON (`tostring` of a dynamic value) shows the documented JSON:
/// the documentation renders such text with its own spacing and key order.
fn json_text_matches(expected: &str, actual: &str) -> bool {
    let looks = |t: &str| t.starts_with('{') || t.starts_with('[');
    if !looks(expected) || !looks(actual.trim()) {
        return false;
    }
    match (
        parse_dynamic(expected),
        serde_json::from_str::<Value>(actual),
    ) {
        (Ok(e), Ok(a)) => json_close(&e, &a),
        _ => false,
    }
}

/// Whether the documented `cell` shows the value `a` of Kusto type `ty`.
pub(crate) fn cell_matches(cell: &str, a: &Val, ty: KustoType) -> bool {
    let e = clean(cell);
    let empty = e.is_empty() || e.eq_ignore_ascii_case("null") || e == "(null)";
    match a {
        Val::Null => empty || (ty == KustoType::Dynamic && e == "null"),
        Val::Str(s) => {
            *s == e
                || *s == cell
                || s.trim() == e
                || (s.is_empty() && empty)
                || (s.contains('\n') && cell.trim().replace("<br>", "\n") == *s)
                || json_text_matches(&e, s)
        }
        Val::Guid(g) => g.eq_ignore_ascii_case(&e),
        Val::Bool(b) => {
            e.eq_ignore_ascii_case(if *b { "true" } else { "false" })
                || e == if *b { "1" } else { "0" }
        }
        Val::Int(x) => num_close(&e, f64::from(*x)),
        Val::Long(x) => e
            .replace(',', "")
            .parse::<i64>()
            .map_or_else(|_| num_close(&e, *x as f64), |y| y == *x),
        Val::Real(x) | Val::Decimal(x) => num_close(&e, *x),
        Val::DateTime(t) => parse_datetime(&e).is_some_and(|p| p == *t),
        Val::Timespan(t) => parse_timespan(&e).is_some_and(|p| p == *t),
        Val::Dynamic(v) => {
            if empty && v.is_null() {
                return true;
            }
            if let Value::String(s) = v
                && (*s == e || *s == cell)
            {
                return true;
            }
            match parse_dynamic(&e) {
                Ok(p) => json_close(&p, v),
                Err(_) => a.to_text() == e,
            }
        }
    }
}

/// Whether `row` (documented cells) shows `actual` (with `types`); `map[i]` is the actual
/// column of documented cell `i`.
pub(crate) fn row_matches(
    row: &[String],
    actual: &[Val],
    types: &[KustoType],
    map: &[usize],
) -> bool {
    row.len() == map.len()
        && row
            .iter()
            .zip(map)
            .all(|(cell, &i)| cell_matches(cell, &actual[i], types[i]))
}
