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
    RowUdf::call(
        "dynamic_path",
        args,
        types,
        KustoType::Dynamic,
        false,
        lookup,
    )
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

/// What `mv-expand` makes of one dynamic value: the JSON text of each element (an array's
/// items; a bag's properties as `{"key": value}` or, with `bagexpansion=array`, `["key",
/// value]`; any other value as itself), at most `limit` of them.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MvList {
    bag_array: bool,
    limit: usize,
    signature: datafusion::logical_expr::Signature,
}

impl MvList {
    /// The expansion of `e` (dynamic JSON text).
    pub fn call(e: Expr, bag_array: bool, limit: usize) -> Expr {
        let udf = datafusion::logical_expr::ScalarUDF::from(MvList {
            bag_array,
            limit,
            signature: datafusion::logical_expr::Signature::any(
                1,
                datafusion::logical_expr::Volatility::Immutable,
            ),
        });
        Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            std::sync::Arc::new(udf),
            vec![e],
        ))
    }

    /// The elements of one value.
    pub fn items(&self, v: &Value) -> Vec<String> {
        let items: Vec<Value> = match v {
            Value::Array(a) => a.clone(),
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| {
                    if self.bag_array {
                        Value::Array(vec![Value::String(k.clone()), x.clone()])
                    } else {
                        let mut one = serde_json::Map::new();
                        one.insert(k.clone(), x.clone());
                        Value::Object(one)
                    }
                })
                .collect(),
            other => vec![other.clone()],
        };
        items
            .into_iter()
            .take(self.limit)
            .map(|x| super::value::dynamic_text(&x))
            .collect()
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for MvList {
    fn name(&self) -> &str {
        "mv_expand_items"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::new_list(
            arrow::datatypes::DataType::Utf8,
            true,
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{ListBuilder, StringBuilder};
        let Some(arg) = args.args.first() else {
            return datafusion::common::exec_err!("mv-expand takes one value");
        };
        let array = arg.to_array(args.number_rows)?;
        let values = super::value::read_column(&array, KustoType::Dynamic)?;
        let mut b = ListBuilder::new(StringBuilder::new());
        for v in values {
            match v {
                Val::Null | Val::Dynamic(Value::Null) => b.append_null(),
                Val::Dynamic(d) => {
                    for item in self.items(&d) {
                        b.values().append_value(item);
                    }
                    b.append(true);
                }
                other => {
                    b.values()
                        .append_value(super::value::dynamic_text(&other.to_json()));
                    b.append(true);
                }
            }
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(
            std::sync::Arc::new(b.finish()),
        ))
    }
}

/// `with_itemindex`: the indexes `0..n` of the longest of the expanded lists of a row.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MvIndex {
    signature: datafusion::logical_expr::Signature,
}

impl MvIndex {
    /// The index list of the lists `lists`.
    pub fn call(lists: Vec<Expr>) -> Expr {
        let udf = datafusion::logical_expr::ScalarUDF::from(MvIndex {
            signature: datafusion::logical_expr::Signature::variadic_any(
                datafusion::logical_expr::Volatility::Immutable,
            ),
        });
        Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            std::sync::Arc::new(udf),
            lists,
        ))
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for MvIndex {
    fn name(&self) -> &str {
        "mv_expand_index"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::new_list(
            arrow::datatypes::DataType::Int64,
            true,
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, AsArray, Int64Builder, ListBuilder};
        let n = args.number_rows;
        let lists: Vec<arrow::array::ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<datafusion::error::Result<_>>()?;
        let mut b = ListBuilder::new(Int64Builder::new());
        for row in 0..n {
            let mut len = 0usize;
            let mut any = false;
            for l in &lists {
                let l = l.as_list::<i32>();
                if !l.is_null(row) {
                    any = true;
                    len = len.max(l.value_length(row) as usize);
                }
            }
            if any {
                for i in 0..len {
                    b.values().append_value(i as i64);
                }
                b.append(true);
            } else {
                b.append_null();
            }
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(
            std::sync::Arc::new(b.finish()),
        ))
    }
}
