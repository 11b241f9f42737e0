//! Property paths into dynamic values: `d.a.b`, `d['x']`, `d[0]`, `d[-1]`.

use datafusion::logical_expr::Expr;
use serde_json::Value;

use super::rowfn::RowUdf;
use super::value::Val;
use crate::plan::TExpr;
use crate::types::KustoType;

/// A call looking up `steps` (property names or array indexes) in `root`.
pub(crate) fn path_call(root: Expr, _root_ty: KustoType, steps: Vec<TExpr>) -> Expr {
    let mut args = vec![root];
    let mut types = vec![KustoType::Dynamic];
    for s in steps {
        types.push(s.ty);
        args.push(s.expr);
    }
    RowUdf::call("dynamic_path", args, types, KustoType::Dynamic, false, lookup)
}

/// The value at a path.
fn lookup(v: &[Val]) -> Val {
    let Some((root, steps)) = v.split_first() else {
        return Val::Null;
    };
    let mut cur = match root {
        Val::Dynamic(d) => d.clone(),
        Val::Null => return Val::Null,
        other => other.as_dynamic(),
    };
    for s in steps {
        cur = match step(&cur, s) {
            Some(v) => v,
            None => return Val::Null,
        };
    }
    Val::Dynamic(cur)
}

/// One step of a path: a key in an object or an index in an array (negative from the end).
pub fn step(cur: &Value, s: &Val) -> Option<Value> {
    match (cur, s) {
        (Value::Object(m), key) if key.as_str().is_some() => m.get(key.as_str()?).cloned(),
        (Value::Array(a), i) => {
            let i = i.as_i64()?;
            let n = a.len() as i64;
            let i = if i < 0 { n + i } else { i };
            if (0..n).contains(&i) {
                a.get(i as usize).cloned()
            } else {
                None
            }
        }
        // A JSON string holding JSON (a nested serialized value) is looked into.
        (Value::String(text), _) => {
            let inner: Value = serde_json::from_str(text).ok()?;
            if inner.is_object() || inner.is_array() {
                step(&inner, s)
            } else {
                None
            }
        }
        _ => None,
    }
}
