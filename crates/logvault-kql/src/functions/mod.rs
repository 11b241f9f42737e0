//! Kusto's scalar function library, by category of the KQL reference. Each category module
//! has a table of `(name, implementation)`; an implementation turns typed arguments into a
//! typed DataFusion expression: a DataFusion built-in where the semantics agree, a row
//! function ([`crate::udf::rowfn`]) where they do not.

pub(crate) mod aggregate;
mod arrays;
mod conditional;
mod conversion;
mod datetime;
mod dynamic;
mod geo;
mod hash;
mod ip;
pub(crate) mod kv;
mod math;
mod series;
mod series_filter;
mod sketch;
mod string;
mod text_parse;
mod timezone;
mod units;

use datafusion::logical_expr::Expr;

use crate::error::{KqlError, Span};
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::rowfn::{RowFnPtr, RowUdf};
use crate::udf::value::Val;

/// A call being planned.
pub(crate) struct FnCall<'a> {
    /// The function's name.
    pub name: &'a str,
    /// The typed arguments.
    pub args: Vec<TExpr>,
    /// Where the call is.
    pub span: Span,
    /// The query's start time, in ticks.
    pub now_ticks: i64,
    /// With `*` among the arguments: the names of the columns it stands for (their values are
    /// at the end of `args`).
    pub star_names: Vec<String>,
}

/// An implementation of a scalar function.
pub(crate) type Impl = fn(&mut FnCall<'_>) -> Result<TExpr, KqlError>;

impl FnCall<'_> {
    /// An error about this call.
    pub(crate) fn err(&self, msg: impl std::fmt::Display) -> KqlError {
        KqlError::semantic(format!("{}(): {msg}", self.name), self.span)
    }

    /// Checks the number of arguments.
    pub(crate) fn arity(&self, min: usize, max: usize) -> Result<(), KqlError> {
        let n = self.args.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(format!("takes {want} arguments, {n} given")));
        }
        Ok(())
    }

    /// Argument `i` (after an arity check).
    pub(crate) fn arg(&self, i: usize) -> TExpr {
        self.args
            .get(i)
            .cloned()
            .unwrap_or_else(|| TExpr::null(KustoType::Dynamic))
    }

    /// The DataFusion expressions of the arguments.
    pub(crate) fn exprs(&self) -> Vec<Expr> {
        self.args.iter().map(|a| a.expr.clone()).collect()
    }

    /// A row function over all the arguments.
    pub(crate) fn row(&self, ret: KustoType, f: RowFnPtr) -> TExpr {
        self.row_named(self.name, ret, false, f)
    }

    /// A row function with an explicit name and volatility.
    pub(crate) fn row_named(
        &self,
        name: &str,
        ret: KustoType,
        volatile: bool,
        f: RowFnPtr,
    ) -> TExpr {
        let types = self.args.iter().map(|a| a.ty).collect();
        TExpr::new(
            RowUdf::call(name, self.exprs(), types, ret, volatile, f),
            ret,
        )
    }

    /// A row function over given arguments.
    pub(crate) fn row_with(&self, args: Vec<TExpr>, ret: KustoType, f: RowFnPtr) -> TExpr {
        let types = args.iter().map(|a| a.ty).collect();
        let exprs = args.into_iter().map(|a| a.expr).collect();
        TExpr::new(RowUdf::call(self.name, exprs, types, ret, false, f), ret)
    }
}

const CATEGORIES: &[&[(&str, Impl)]] = &[
    string::FUNCTIONS,
    text_parse::FUNCTIONS,
    datetime::FUNCTIONS,
    conversion::FUNCTIONS,
    dynamic::FUNCTIONS,
    arrays::FUNCTIONS,
    math::FUNCTIONS,
    conditional::FUNCTIONS,
    ip::FUNCTIONS,
    hash::FUNCTIONS,
    series::FUNCTIONS,
    series_filter::FUNCTIONS,
    sketch::FUNCTIONS,
    geo::FUNCTIONS,
    timezone::FUNCTIONS,
];

fn lookup(name: &str) -> Option<Impl> {
    CATEGORIES
        .iter()
        .flat_map(|c| c.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Whether `name` is a scalar function.
pub(crate) fn is_scalar(name: &str) -> bool {
    lookup(name).is_some()
}

/// Every scalar function's name.
pub(crate) fn scalar_names() -> impl Iterator<Item = &'static str> {
    CATEGORIES.iter().flat_map(|c| c.iter()).map(|(n, _)| *n)
}

/// Plans a call of a scalar function.
pub(crate) fn call_scalar(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    match lookup(c.name) {
        Some(f) => f(c),
        None => Err(c.err("unknown function")),
    }
}

/// The capture groups of a regular expression in a text, as a dynamic array of strings (null
/// when it does not match): the row function behind `parse`.
pub(crate) fn parse_captures(v: &[Val]) -> Val {
    let (text, re) = (a0(v).to_text(), at(v, 1).to_text());
    string::with_regex(&re, |r| match r.captures(&text) {
        Some(c) => Val::Dynamic(serde_json::Value::Array(
            (1..c.len())
                .map(|i| {
                    c.get(i).map_or(serde_json::Value::Null, |m| {
                        serde_json::Value::String(m.as_str().to_owned())
                    })
                })
                .collect(),
        )),
        None => Val::Null,
    })
    .unwrap_or(Val::Null)
}

/// The first value of a row, or null.
pub(crate) fn a0(v: &[Val]) -> &Val {
    v.first().unwrap_or(&Val::Null)
}

/// The value `i` of a row, or null.
pub(crate) fn at(v: &[Val], i: usize) -> &Val {
    v.get(i).unwrap_or(&Val::Null)
}
