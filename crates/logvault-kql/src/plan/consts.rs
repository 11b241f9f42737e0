//! Evaluating constant expressions at plan time (the bounds of `range`, the count of `take`,
//! the values of `datatable`).

use std::sync::Arc;

use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use super::TExpr;
use crate::error::{KqlError, Span};

/// The value of a constant expression, or an error saying that `what` must be constant.
pub(crate) fn eval(t: &TExpr, what: &str, span: Span) -> Result<ScalarValue, KqlError> {
    let schema = Arc::new(DFSchema::empty());
    let simplifier = ExprSimplifier::new(SimplifyContext::default());
    let refuse = || KqlError::semantic(format!("{what} must be a constant"), span);
    let e = simplifier
        .coerce(t.expr.clone(), &schema)
        .map_err(|_| refuse())?;
    match simplifier.simplify(e) {
        Ok(Expr::Literal(v, _)) => Ok(v),
        Ok(_) => Err(refuse()),
        Err(e) => Err(KqlError::semantic(format!("{what}: {e}"), span)),
    }
}

/// The value of a constant integer expression.
pub(crate) fn eval_i64(t: &TExpr, what: &str, span: Span) -> Result<i64, KqlError> {
    let v = eval(t, what, span)?;
    let v = v
        .cast_to(&arrow::datatypes::DataType::Int64)
        .map_err(|_| KqlError::semantic(format!("{what} must be a number"), span))?;
    match v {
        ScalarValue::Int64(Some(n)) => Ok(n),
        _ => Err(KqlError::semantic(format!("{what} must not be null"), span)),
    }
}
