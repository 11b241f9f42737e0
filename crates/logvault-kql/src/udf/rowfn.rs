//! A DataFusion scalar function computed row by row on [`Val`]s: the breadth of Kusto's
//! function library (hundreds of small functions) without a hand-written Arrow kernel each.
//! The functions log queries use most (`has`, `contains`, `bin`, `tolower`, ...) are planned
//! onto vectorized kernels instead.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::value::{Val, build_column, read_column};
use crate::types::KustoType;

/// The Rust function behind a row function.
pub type RowFnPtr = fn(&[Val]) -> Val;

/// A row-by-row Kusto function with fixed argument and result types.
#[derive(Debug)]
pub struct RowUdf {
    name: String,
    arg_types: Vec<KustoType>,
    ret: KustoType,
    f: RowFnPtr,
    volatile: bool,
    signature: Signature,
}

impl PartialEq for RowUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.arg_types == other.arg_types
            && self.ret == other.ret
            && std::ptr::fn_addr_eq(self.f, other.f)
    }
}

impl Eq for RowUdf {}

impl Hash for RowUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.arg_types.hash(state);
        self.ret.hash(state);
    }
}

impl RowUdf {
    /// The function `name` over arguments of `arg_types`, returning `ret`.
    pub fn new(
        name: &str,
        arg_types: Vec<KustoType>,
        ret: KustoType,
        volatile: bool,
        f: RowFnPtr,
    ) -> Self {
        let volatility = if volatile {
            Volatility::Volatile
        } else {
            Volatility::Immutable
        };
        Self {
            name: name.to_owned(),
            signature: if arg_types.is_empty() {
                Signature::nullary(volatility)
            } else {
                Signature::any(arg_types.len(), volatility)
            },
            arg_types,
            ret,
            f,
            volatile,
        }
    }

    /// A call of the function on `args`.
    pub fn call(
        name: &str,
        args: Vec<Expr>,
        arg_types: Vec<KustoType>,
        ret: KustoType,
        volatile: bool,
        f: RowFnPtr,
    ) -> Expr {
        let udf = ScalarUDF::from(Self::new(name, arg_types, ret, volatile, f));
        Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            Arc::new(udf),
            args,
        ))
    }
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.ret.arrow())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // A volatile function (rand) gives each row its own value even without arguments.
        let all_scalar = !self.volatile
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let mut columns = Vec::with_capacity(args.args.len());
        for (arg, ty) in args.args.iter().zip(&self.arg_types) {
            let array = arg.to_array(rows)?;
            columns.push(read_column(&array, *ty)?);
        }
        let mut out = Vec::with_capacity(rows);
        let mut row = Vec::with_capacity(columns.len());
        for i in 0..rows {
            row.clear();
            for c in &columns {
                row.push(c.get(i).cloned().unwrap_or(Val::Null));
            }
            out.push((self.f)(&row));
        }
        let array = build_column(&out, self.ret);
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}
