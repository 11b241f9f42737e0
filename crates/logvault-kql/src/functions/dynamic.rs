//! Dynamic (JSON) functions: property bags and arrays.

use serde_json::{Map, Value};

use super::arrays::{distinct, norm_index};
use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("pack", bag_pack),
    ("bag_pack", bag_pack),
    ("pack_dictionary", bag_pack),
    ("pack_all", pack_all),
    ("bag_pack_columns", pack_all),
    ("pack_array", pack_array),
    ("bag_keys", bag_keys),
    ("bag_merge", bag_merge),
    ("bag_remove_keys", bag_remove_keys),
    ("bag_has_key", bag_has_key),
    ("dynamic_to_json", dynamic_to_json),
    ("extract_json", extract_json),
    ("extractjson", extract_json),
    ("gettype", gettype),
    ("treepath", treepath),
];

pub(super) fn arr(v: &Val) -> Option<Vec<Value>> {
    match v.as_dynamic() {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

pub(super) fn dynv(v: Vec<Value>) -> Val {
    Val::Dynamic(Value::Array(v))
}

fn bag_pack(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    if !c.args.len().is_multiple_of(2) {
        return Err(c.err("takes pairs of key and value"));
    }
    Ok(c.row(KustoType::Dynamic, |v| {
        let mut m = Map::new();
        for pair in v.chunks(2) {
            if let [k, x] = pair {
                m.insert(k.to_text(), x.to_json());
            }
        }
        Val::Dynamic(Value::Object(m))
    }))
}

fn pack_all(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    // pack_all([ignore_null_empty]): every column of the row.
    let skip_empty = c.args.len() > c.star_names.len()
        && c.args
            .first()
            .and_then(|a| a.literal())
            .map(|l| l.to_string())
            == Some("true".into());
    let n = c.star_names.len();
    let values: Vec<TExpr> = c.args[c.args.len() - n..].to_vec();
    let mut args = Vec::with_capacity(2 * n);
    for (name, v) in c.star_names.clone().into_iter().zip(values) {
        args.push(TExpr::string(name));
        args.push(v);
    }
    let f: fn(&[Val]) -> Val = if skip_empty {
        |v| {
            let mut m = Map::new();
            for pair in v.chunks(2) {
                if let [k, x] = pair
                    && !x.is_null()
                    && x.to_text() != ""
                {
                    m.insert(k.to_text(), x.to_json());
                }
            }
            Val::Dynamic(Value::Object(m))
        }
    } else {
        |v| {
            let mut m = Map::new();
            for pair in v.chunks(2) {
                if let [k, x] = pair {
                    m.insert(k.to_text(), x.to_json());
                }
            }
            Val::Dynamic(Value::Object(m))
        }
    };
    Ok(c.row_with(args, KustoType::Dynamic, f))
}

fn pack_array(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    Ok(c.row(KustoType::Dynamic, |v| {
        dynv(v.iter().map(Val::to_json).collect())
    }))
}

fn bag(v: &Val) -> Option<Map<String, Value>> {
    match v.as_dynamic() {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn bag_keys(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        bag(a0(v)).map_or(Val::Null, |m| {
            dynv(m.keys().map(|k| Value::String(k.clone())).collect())
        })
    }))
}

fn bag_merge(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let mut out = Map::new();
        for x in v {
            if let Some(m) = bag(x) {
                for (k, val) in m {
                    out.entry(k).or_insert(val);
                }
            }
        }
        Val::Dynamic(Value::Object(out))
    }))
}

fn remove_path(m: &mut Map<String, Value>, key: &str) {
    // Keys may be JSONPath-like: `$.a.b` or `a.b`.
    let k = key.strip_prefix("$.").unwrap_or(key);
    match k.split_once('.') {
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = m.get_mut(head) {
                remove_path(inner, rest);
            }
        }
        None => {
            let k = k.trim_start_matches("['").trim_end_matches("']");
            m.remove(k);
        }
    }
}

fn bag_remove_keys(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let (Some(mut m), Some(keys)) = (bag(a0(v)), arr(at(v, 1))) else {
            return Val::Null;
        };
        for k in keys {
            if let Value::String(k) = k {
                remove_path(&mut m, &k);
            }
        }
        Val::Dynamic(Value::Object(m))
    }))
}

fn bag_has_key(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Bool, |v| {
        bag(a0(v)).map_or(Val::Null, |m| {
            Val::Bool(m.contains_key(&at(v, 1).to_text()))
        })
    }))
}

fn dynamic_to_json(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| {
        // Kusto sorts the keys of property bags.
        fn sorted(v: Value) -> Value {
            match v {
                Value::Object(m) => {
                    let mut keys: Vec<(String, Value)> = m.into_iter().collect();
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Object(keys.into_iter().map(|(k, x)| (k, sorted(x))).collect())
                }
                Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
                other => other,
            }
        }
        Val::Str(sorted(a0(v).as_dynamic()).to_string())
    }))
}

/// A JSONPath lookup (`$.a.b[0]`, `$['a']`).
fn json_path(root: &Value, path: &str) -> Option<Value> {
    let p = path.trim();
    let p = p.strip_prefix('$')?;
    let mut cur = root.clone();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                let key: String = chars[start..j].iter().collect();
                cur = cur.get(&key)?.clone();
                i = j;
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if let Some(k) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    cur = cur.get(k)?.clone();
                } else {
                    let idx: i64 = inner.parse().ok()?;
                    let a = cur.as_array()?;
                    let idx = norm_index(idx, a.len());
                    cur = a.get(usize::try_from(idx).ok()?)?.clone();
                }
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(cur)
}

fn extract_json(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    let ty = if c.args.len() == 3 {
        match c.args[2].literal_str() {
            Some(t) => t
                .parse()
                .map_err(|_| c.err(format!("unknown type '{t}'")))?,
            None => c.args[2].ty,
        }
    } else {
        KustoType::String
    };
    let args = vec![
        c.arg(0),
        crate::plan::convert_pub(c.arg(1), KustoType::String),
    ];
    let t = c.row_with(args, KustoType::Dynamic, |v| {
        let root = match at(v, 1) {
            Val::Str(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.as_dynamic(),
        };
        json_path(&root, &a0(v).to_text()).map_or(Val::Null, Val::Dynamic)
    });
    Ok(crate::plan::convert_pub(t, ty))
}

fn gettype(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    if a.ty != KustoType::Dynamic {
        let name = match a.ty {
            KustoType::Long => "long",
            KustoType::Int => "int",
            KustoType::Real => "real",
            KustoType::Bool => "bool",
            KustoType::String => "string",
            KustoType::DateTime => "datetime",
            KustoType::Timespan => "timespan",
            KustoType::Guid => "guid",
            KustoType::Decimal => "decimal",
            KustoType::Dynamic => "dynamic",
        };
        return Ok(TExpr::string(name));
    }
    Ok(c.row(KustoType::String, |v| {
        Val::Str(
            match a0(v) {
                Val::Null | Val::Dynamic(Value::Null) => "null",
                Val::Dynamic(Value::Array(_)) => "array",
                Val::Dynamic(Value::Object(_)) => "dictionary",
                Val::Dynamic(Value::Bool(_)) => "bool",
                Val::Dynamic(Value::Number(n)) if n.is_i64() => "long",
                Val::Dynamic(Value::Number(_)) => "real",
                Val::Dynamic(Value::String(s))
                    if crate::literal::parse_datetime(s).is_some() && s.contains('-') =>
                {
                    "datetime"
                }
                Val::Dynamic(Value::String(_)) => "string",
                _ => "string",
            }
            .to_owned(),
        )
    }))
}

fn treepath(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        fn walk(v: &Value, prefix: &str, out: &mut Vec<Value>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        let p = format!("{prefix}['{k}']");
                        out.push(Value::String(p.clone()));
                        walk(x, &p, out);
                    }
                }
                Value::Array(a) => {
                    let p = format!("{prefix}[0]");
                    if !a.is_empty() {
                        out.push(Value::String(p.clone()));
                    }
                    for x in a {
                        walk(x, &p, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&a0(v).as_dynamic(), "$", &mut out);
        dynv(distinct(out))
    }))
}
