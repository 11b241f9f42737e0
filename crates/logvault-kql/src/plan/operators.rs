//! Scalar operators with Kusto's typing rules: arithmetic on numbers, datetimes and
//! timespans; comparisons (`==` case-sensitive, `=~` not; a missing string is the empty
//! string); the string operators (`has` on whole terms); `in`, `between`; conversions.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::functions::string::expr_fn as sf;
use datafusion::logical_expr::expr::{InList, InSubquery, Like};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, Subquery, cast, lit, try_cast, when};

use super::rel::{Rel, TExpr, arc};
use crate::ast::{BinOp, StrOp, StrOpKind};
use crate::error::{KqlError, Span};
use crate::types::KustoType;
use crate::udf::{self, strings::TermOp};

fn err(msg: impl Into<String>, span: Span) -> KqlError {
    KqlError::semantic(msg, span)
}

fn bin(l: Expr, op: Operator, r: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

fn ns_ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A datetime as nanoseconds since the epoch (Int64).
fn dt_ns(e: Expr) -> Expr {
    cast(cast(e, ns_ts()), DataType::Int64)
}

/// A timespan as nanoseconds (Int64).
fn ts_ns(e: Expr) -> Expr {
    cast(
        cast(e, DataType::Duration(TimeUnit::Nanosecond)),
        DataType::Int64,
    )
}

fn ns_to_dt(e: Expr) -> TExpr {
    TExpr::new(cast(e, ns_ts()), KustoType::DateTime)
}

fn ns_to_ts(e: Expr) -> TExpr {
    TExpr::new(
        cast(e, DataType::Duration(TimeUnit::Nanosecond)),
        KustoType::Timespan,
    )
}

/// `-x`.
pub(crate) fn negate(t: TExpr, span: Span) -> Result<TExpr, KqlError> {
    match t.ty {
        KustoType::Int | KustoType::Long | KustoType::Real | KustoType::Decimal => {
            Ok(TExpr::new(Expr::Negative(Box::new(t.expr)), t.ty))
        }
        KustoType::Timespan => Ok(ns_to_ts(Expr::Negative(Box::new(ts_ns(t.expr))))),
        KustoType::Dynamic => negate(convert(t, KustoType::Real), span),
        other => Err(err(format!("cannot negate a value of type {other}"), span)),
    }
}

/// Kusto's conversion of `t` to `to` (`tostring`, `tolong`, `todatetime`, ...): a value that
/// does not convert is null.
pub(crate) fn convert(t: TExpr, to: KustoType) -> TExpr {
    use KustoType::*;
    if t.ty == to {
        return t;
    }
    let plain = |e: Expr| TExpr::new(cast(e, to.arrow()), to);
    match (t.ty, to) {
        (Int | Long | Bool, String) => plain(t.expr),
        (Guid, String) | (String, Guid) => TExpr::new(t.expr, to),
        (Int | Long | Real | Decimal, Int | Long | Real | Decimal) => {
            TExpr::new(try_cast(t.expr, to.arrow()), to)
        }
        (Bool, Int | Long | Real) => plain(t.expr),
        (Int | Long | Real, Bool) => TExpr::new(
            bin(t.expr, Operator::NotEq, cast(lit(0i64), t.ty.arrow())),
            Bool,
        ),
        (Timespan, Long) => TExpr::new(bin(ts_ns(t.expr), Operator::Divide, lit(100i64)), Long),
        (DateTime, Long) => TExpr::new(bin(dt_ns(t.expr), Operator::Divide, lit(100i64)), Long),
        _ => TExpr::new(udf::convert::call(t.expr, t.ty, to), to),
    }
}

/// `t` as a string for string operators (values of other types via `tostring`).
fn text(t: TExpr) -> TExpr {
    convert(t, KustoType::String)
}

fn is_empty_literal(t: &TExpr) -> bool {
    t.literal_str() == Some("")
}

/// `NOT test`, where a missing string counts as the empty string: `s IS NULL OR NOT test`.
fn negated_test(subject: &Expr, test: Expr) -> Expr {
    subject.clone().is_null().or(Expr::Not(Box::new(test)))
}

/// The Kusto type both sides of a comparison are converted to.
fn comparison_type(l: KustoType, r: KustoType) -> Option<KustoType> {
    use KustoType::*;
    Some(match (l, r) {
        (a, b) if a == b => a,
        (a, b) if a.is_numeric() && b.is_numeric() => KustoType::numeric_join(a, b),
        (Dynamic, b) | (b, Dynamic) => b,
        (String | Guid, Int | Long | Real | Decimal | Bool)
        | (Int | Long | Real | Decimal | Bool, String | Guid) => String,
        (String, Guid) | (Guid, String) => String,
        (DateTime, String) | (String, DateTime) => DateTime,
        (Timespan, String) | (String, Timespan) => Timespan,
        (Bool, Int | Long) | (Int | Long, Bool) => Long,
        _ => return None,
    })
}

/// A binary operator.
pub(crate) fn binary(op: BinOp, l: TExpr, r: TExpr, span: Span) -> Result<TExpr, KqlError> {
    match op {
        BinOp::And | BinOp::Or => {
            let (l, r) = (to_bool(l, span)?, to_bool(r, span)?);
            let e = if op == BinOp::And { l.and(r) } else { l.or(r) };
            Ok(TExpr::new(e, KustoType::Bool))
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            arithmetic(op, l, r, span)
        }
        BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            compare(op, l, r, span)
        }
        BinOp::EqCi | BinOp::NotEqCi => {
            let (l, r) = (text(l), text(r));
            let (le, re) = (sf::lower(l.expr.clone()), sf::lower(r.expr.clone()));
            let test = le.eq(re);
            let e = if op == BinOp::EqCi {
                if is_empty_literal(&r) {
                    l.expr.clone().is_null().or(test)
                } else {
                    test
                }
            } else if is_empty_literal(&r) {
                l.expr.clone().is_not_null().and(Expr::Not(Box::new(test)))
            } else {
                negated_test(&l.expr, test)
            };
            Ok(TExpr::new(e, KustoType::Bool))
        }
        BinOp::Str(s) => string_op(s, l, r, span),
    }
}

/// A boolean operand (dynamic booleans converted; anything else is an error).
fn to_bool(t: TExpr, span: Span) -> Result<Expr, KqlError> {
    match t.ty {
        KustoType::Bool => Ok(t.expr),
        KustoType::Dynamic => Ok(convert(t, KustoType::Bool).expr),
        other => Err(err(
            format!("expected a bool operand for 'and'/'or', found {other}"),
            span,
        )),
    }
}

fn arithmetic(op: BinOp, l: TExpr, r: TExpr, span: Span) -> Result<TExpr, KqlError> {
    use KustoType::*;
    let l = if l.ty == Dynamic { convert(l, Real) } else { l };
    let r = if r.ty == Dynamic { convert(r, Real) } else { r };
    let name = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        _ => "%",
    };
    let dfop = match op {
        BinOp::Add => Operator::Plus,
        BinOp::Sub => Operator::Minus,
        BinOp::Mul => Operator::Multiply,
        BinOp::Div => Operator::Divide,
        _ => Operator::Modulo,
    };
    match (l.ty, r.ty) {
        (a, b) if a.is_numeric() && b.is_numeric() => {
            let t = KustoType::numeric_join(a, b);
            let (le, re) = (cast_to(l, t), cast_to(r, t));
            let e = if t.is_integer() && matches!(op, BinOp::Div | BinOp::Mod) {
                // Integer division by zero is null, not an error.
                when(
                    re.clone().eq(cast(lit(0i64), t.arrow())),
                    Expr::Literal(ScalarValue::try_from(&t.arrow())?, None),
                )
                .otherwise(bin(le, dfop, re))?
            } else {
                bin(le, dfop, re)
            };
            Ok(TExpr::new(e, t))
        }
        (DateTime, DateTime) if op == BinOp::Sub => {
            Ok(ns_to_ts(bin(dt_ns(l.expr), Operator::Minus, dt_ns(r.expr))))
        }
        (DateTime, Timespan) if matches!(op, BinOp::Add | BinOp::Sub) => {
            Ok(ns_to_dt(bin(dt_ns(l.expr), dfop, ts_ns(r.expr))))
        }
        (Timespan, DateTime) if op == BinOp::Add => {
            Ok(ns_to_dt(bin(dt_ns(r.expr), dfop, ts_ns(l.expr))))
        }
        (Timespan, Timespan) => match op {
            BinOp::Add | BinOp::Sub | BinOp::Mod => {
                Ok(ns_to_ts(bin(ts_ns(l.expr), dfop, ts_ns(r.expr))))
            }
            BinOp::Div => Ok(TExpr::new(
                bin(
                    cast(ts_ns(l.expr), DataType::Float64),
                    Operator::Divide,
                    cast(ts_ns(r.expr), DataType::Float64),
                ),
                Real,
            )),
            _ => Err(err("cannot multiply two timespans", span)),
        },
        (Timespan, n) | (n, Timespan)
            if n.is_numeric() && (op == BinOp::Mul || (op == BinOp::Div && l.ty == Timespan)) =>
        {
            let (ts, num) = if l.ty == Timespan { (l, r) } else { (r, l) };
            let e = bin(
                cast(ts_ns(ts.expr), DataType::Float64),
                dfop,
                cast(num.expr, DataType::Float64),
            );
            Ok(ns_to_ts(cast(round(e), DataType::Int64)))
        }
        (DateTime, Timespan) if op == BinOp::Mod => {
            Ok(ns_to_ts(bin(dt_ns(l.expr), dfop, ts_ns(r.expr))))
        }
        (a, b) => Err(err(
            format!(
                "cannot apply '{name}' to {a} and {b}{}",
                if a == String || b == String {
                    " (use strcat() to join strings)"
                } else {
                    ""
                }
            ),
            span,
        )),
    }
}

fn round(e: Expr) -> Expr {
    datafusion::functions::math::expr_fn::round(vec![e])
}

/// `t` converted to numeric type `to` (a plain cast).
fn cast_to(t: TExpr, to: KustoType) -> Expr {
    if t.ty == to {
        t.expr
    } else {
        cast(t.expr, to.arrow())
    }
}

fn compare(op: BinOp, l: TExpr, r: TExpr, span: Span) -> Result<TExpr, KqlError> {
    let Some(t) = comparison_type(l.ty, r.ty) else {
        return Err(err(
            format!("cannot compare values of types {} and {}", l.ty, r.ty),
            span,
        ));
    };
    let l = convert_for_compare(l, t);
    let r = convert_for_compare(r, t);
    let dfop = match op {
        BinOp::Eq => Operator::Eq,
        BinOp::NotEq => Operator::NotEq,
        BinOp::Lt => Operator::Lt,
        BinOp::LtEq => Operator::LtEq,
        BinOp::Gt => Operator::Gt,
        _ => Operator::GtEq,
    };
    if t == KustoType::String || t == KustoType::Guid {
        return Ok(TExpr::new(string_compare(dfop, l, r), KustoType::Bool));
    }
    if t == KustoType::Dynamic {
        let (le, re) = (text(l).expr, text(r).expr);
        return Ok(TExpr::new(bin(le, dfop, re), KustoType::Bool));
    }
    let (le, re) = align_temporal(l, r);
    let e = match dfop {
        Operator::Eq | Operator::NotEq => null_equality(dfop == Operator::Eq, le, re),
        _ => bin(le, dfop, re),
    };
    Ok(TExpr::new(e, KustoType::Bool))
}

/// Kusto's `==` and `!=` with nulls: two nulls give null, one null and one value give false
/// for `==` and true for `!=`. Against a constant that is not null, the test stays a plain
/// comparison of the column (which pushdown and pruning understand).
fn null_equality(eq: bool, l: Expr, r: Expr) -> Expr {
    let non_null_literal = |e: &Expr| {
        matches!(e, Expr::Literal(v, _) if !v.is_null())
            || matches!(e, Expr::Cast(c) if matches!(c.expr.as_ref(), Expr::Literal(v, _) if !v.is_null()))
    };
    let subject = if non_null_literal(&r) {
        Some(&l)
    } else if non_null_literal(&l) {
        Some(&r)
    } else {
        None
    };
    if let Some(x) = subject {
        let x = x.clone();
        return if eq {
            x.clone().is_not_null().and(bin(l, Operator::Eq, r))
        } else {
            x.is_null().or(bin(l, Operator::NotEq, r))
        };
    }
    let both_null = l.clone().is_null().and(r.clone().is_null());
    let test = if eq {
        bin(l, Operator::IsNotDistinctFrom, r)
    } else {
        bin(l, Operator::IsDistinctFrom, r)
    };
    Expr::Case(datafusion::logical_expr::expr::Case::new(
        None,
        vec![(
            Box::new(both_null),
            Box::new(lit(ScalarValue::Boolean(None))),
        )],
        Some(Box::new(test)),
    ))
}

fn convert_for_compare(t: TExpr, to: KustoType) -> TExpr {
    if t.ty == to || (t.ty.is_numeric() && to.is_numeric()) {
        // Numbers: DataFusion's coercion casts the narrower side, keeping a column bare.
        return t;
    }
    convert(t, to)
}

/// Datetime comparisons: a constant side is cast to the other side's unit, so that a column
/// stays bare (pushdown and pruning see `col > literal`).
fn align_temporal(l: TExpr, r: TExpr) -> (Expr, Expr) {
    (l.expr, r.expr)
}

/// String comparison with Kusto's rule that a missing string is the empty string.
fn string_compare(op: Operator, l: TExpr, r: TExpr) -> Expr {
    let (l_empty, r_empty) = (is_empty_literal(&l), is_empty_literal(&r));
    match op {
        Operator::Eq if r_empty => l.expr.clone().is_null().or(l.expr.eq(r.expr)),
        Operator::Eq if l_empty => r.expr.clone().is_null().or(r.expr.eq(l.expr)),
        Operator::NotEq if r_empty => l.expr.clone().is_not_null().and(l.expr.not_eq(r.expr)),
        Operator::NotEq if l_empty => r.expr.clone().is_not_null().and(r.expr.not_eq(l.expr)),
        Operator::Eq if r.literal().is_some() || l.literal().is_some() => bin(l.expr, op, r.expr),
        Operator::NotEq if r.literal().is_some() => {
            negated_test(&l.expr, l.expr.clone().eq(r.expr))
        }
        Operator::NotEq if l.literal().is_some() => {
            negated_test(&r.expr, r.expr.clone().eq(l.expr))
        }
        _ => {
            let e = |x: Expr| datafusion::functions::core::expr_fn::coalesce(vec![x, lit("")]);
            bin(e(l.expr), op, e(r.expr))
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn like(subject: Expr, pattern: String, ci: bool) -> Expr {
    Expr::Like(Like::new(
        false,
        Box::new(subject),
        Box::new(lit(pattern)),
        Some('\\'),
        ci,
    ))
}

fn string_op(s: StrOp, l: TExpr, r: TExpr, span: Span) -> Result<TExpr, KqlError> {
    let l = text(l);
    let r = text(r);
    let subject = l.expr.clone();
    let test = match (s.kind, r.literal_str()) {
        (StrOpKind::Contains, Some(n)) => {
            like(subject.clone(), format!("%{}%", like_escape(n)), !s.cs)
        }
        (StrOpKind::StartsWith, Some(n)) => {
            like(subject.clone(), format!("{}%", like_escape(n)), !s.cs)
        }
        (StrOpKind::EndsWith, Some(n)) => {
            like(subject.clone(), format!("%{}", like_escape(n)), !s.cs)
        }
        (StrOpKind::Contains | StrOpKind::StartsWith | StrOpKind::EndsWith, None) => {
            let (a, b) = if s.cs {
                (subject.clone(), r.expr.clone())
            } else {
                (sf::lower(subject.clone()), sf::lower(r.expr.clone()))
            };
            match s.kind {
                StrOpKind::Contains => sf::contains(a, b),
                StrOpKind::StartsWith => sf::starts_with(a, b),
                _ => sf::ends_with(a, b),
            }
        }
        (StrOpKind::Has, _) => {
            udf::strings::term_call(TermOp::Has, subject.clone(), r.expr.clone(), s.cs)
        }
        (StrOpKind::HasPrefix, _) => {
            udf::strings::term_call(TermOp::Prefix, subject.clone(), r.expr.clone(), s.cs)
        }
        (StrOpKind::HasSuffix, _) => {
            udf::strings::term_call(TermOp::Suffix, subject.clone(), r.expr.clone(), s.cs)
        }
        (StrOpKind::MatchesRegex, _) => datafusion::functions::regex::expr_fn::regexp_like(
            subject.clone(),
            r.expr.clone(),
            None,
        ),
        (StrOpKind::HasAny | StrOpKind::HasAll, _) => {
            return has_any_all(l, vec![r], s, span);
        }
    };
    // An empty needle: Kusto's `contains ""` and `has ""` are true for every string.
    let e = if s.negated {
        negated_test(&subject, test)
    } else {
        test
    };
    Ok(TExpr::new(e, KustoType::Bool))
}

/// `has_any` / `has_all` over a list of terms.
pub(crate) fn has_any_all(
    l: TExpr,
    items: Vec<TExpr>,
    s: StrOp,
    _span: Span,
) -> Result<TExpr, KqlError> {
    let l = text(l);
    let tests: Vec<Expr> = items
        .into_iter()
        .map(|i| udf::strings::term_call(TermOp::Has, l.expr.clone(), text(i).expr, false))
        .collect();
    let any = s.kind == StrOpKind::HasAny;
    let e = tests
        .into_iter()
        .reduce(|a, b| if any { a.or(b) } else { a.and(b) })
        .unwrap_or_else(|| lit(!any));
    let e = if s.negated {
        negated_test(&l.expr, e)
    } else {
        e
    };
    Ok(TExpr::new(e, KustoType::Bool))
}

/// `x in (a, b, ...)`.
pub(crate) fn in_list(
    l: TExpr,
    items: Vec<TExpr>,
    negated: bool,
    ci: bool,
    span: Span,
) -> Result<TExpr, KqlError> {
    if items.is_empty() {
        return Ok(TExpr::bool(negated));
    }
    // Every item converted to the subject's type (strings: text).
    let mut target = l.ty;
    for i in &items {
        match comparison_type(target, i.ty) {
            Some(t) => target = t,
            None => {
                return Err(err(
                    format!("cannot compare {} with {} in 'in'", l.ty, i.ty),
                    span,
                ));
            }
        }
    }
    if target == KustoType::Dynamic {
        target = KustoType::String;
    }
    let conv = |t: TExpr| {
        let t = convert_for_compare(t, target);
        if ci { sf::lower(text(t).expr) } else { t.expr }
    };
    let subject = conv(l.clone());
    let list: Vec<Expr> = items.into_iter().map(conv).collect();
    let test = Expr::InList(InList::new(Box::new(subject.clone()), list, false));
    let e = if negated {
        negated_test(&subject, test)
    } else {
        test
    };
    Ok(TExpr::new(e, KustoType::Bool))
}

/// `x in (T | project c)`.
pub(crate) fn in_subquery(
    l: TExpr,
    rel: Rel,
    negated: bool,
    ci: bool,
    span: Span,
) -> Result<TExpr, KqlError> {
    if ci {
        return Err(KqlError::unsupported(
            "'in~' with a tabular expression (use 'in' or lower-case both sides)",
            span,
        ));
    }
    let t = comparison_type(l.ty, rel.cols[0].ty).ok_or_else(|| {
        err(
            format!("cannot compare {} with {} in 'in'", l.ty, rel.cols[0].ty),
            span,
        )
    })?;
    let subject = convert_for_compare(l, t).expr;
    let sub = Subquery {
        subquery: arc(rel.plan),
        outer_ref_columns: vec![],
        spans: Default::default(),
    };
    let test = Expr::InSubquery(InSubquery::new(Box::new(subject.clone()), sub, false));
    let e = if negated {
        negated_test(&subject, test)
    } else {
        test
    };
    Ok(TExpr::new(e, KustoType::Bool))
}

/// `x between (lo .. hi)` (for a datetime, `hi` may be a timespan from `lo`).
pub(crate) fn between(
    l: TExpr,
    lo: TExpr,
    hi: TExpr,
    negated: bool,
    span: Span,
) -> Result<TExpr, KqlError> {
    let hi = if l.ty == KustoType::DateTime && hi.ty == KustoType::Timespan {
        arithmetic(BinOp::Add, lo.clone(), hi, span)?
    } else {
        hi
    };
    let ge = compare(BinOp::GtEq, l.clone(), lo, span)?;
    let le = compare(BinOp::LtEq, l, hi, span)?;
    let e = ge.expr.and(le.expr);
    Ok(TExpr::new(
        if negated { Expr::Not(Box::new(e)) } else { e },
        KustoType::Bool,
    ))
}

/// `root.a.b[0]`: a lookup in a dynamic value (or JSON text).
pub(crate) fn dynamic_path(root: TExpr, steps: Vec<TExpr>, span: Span) -> Result<TExpr, KqlError> {
    match root.ty {
        KustoType::Dynamic | KustoType::String => {}
        other => {
            return Err(err(
                format!(
                    "cannot access a property of a value of type {other} (only dynamic values have properties)"
                ),
                span,
            ));
        }
    }
    Ok(TExpr::new(
        udf::dynamic::path_call(root.expr, root.ty, steps),
        KustoType::Dynamic,
    ))
}

/// A JSON value as a typed literal (for `in (dynamic([...]))`).
pub(crate) fn json_literal(v: &serde_json::Value) -> TExpr {
    match v {
        serde_json::Value::String(s) => TExpr::string(s.clone()),
        serde_json::Value::Bool(b) => TExpr::bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => TExpr::long(i),
            None => TExpr::real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::Null => TExpr::null(KustoType::Dynamic),
        other => TExpr::lit(
            ScalarValue::Utf8(Some(other.to_string())),
            KustoType::Dynamic,
        ),
    }
}
