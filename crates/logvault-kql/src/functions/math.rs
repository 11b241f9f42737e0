//! Math functions.

use arrow::datatypes::DataType;
use datafusion::functions::math::expr_fn as m;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, cast, lit};

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("abs", abs),
    ("ceiling", ceiling),
    ("round", round),
    ("sqrt", sqrt),
    ("pow", pow),
    ("exp", exp),
    ("exp2", exp2),
    ("exp10", exp10),
    ("log", log),
    ("log2", log2),
    ("log10", log10),
    ("sign", sign),
    ("pi", pi),
    ("rand", rand),
    ("isnan", isnan),
    ("isinf", isinf),
    ("isfinite", isfinite),
    ("sin", sin),
    ("cos", cos),
    ("tan", tan),
    ("asin", asin),
    ("acos", acos),
    ("atan", atan),
    ("atan2", atan2),
    ("cot", cot),
    ("degrees", degrees),
    ("radians", radians),
    ("gamma", gamma),
    ("loggamma", loggamma),
    ("binary_and", binary_and),
    ("binary_or", binary_or),
    ("binary_xor", binary_xor),
    ("binary_not", binary_not),
    ("binary_shift_left", binary_shift_left),
    ("binary_shift_right", binary_shift_right),
    ("bitset_count_ones", bitset_count_ones),
    ("beta_cdf", beta_cdf),
    ("beta_pdf", beta_pdf),
    ("beta_inv", beta_inv),
    ("convert_angle", super::units::convert_angle),
    ("convert_energy", super::units::convert_energy),
    ("convert_force", super::units::convert_force),
    ("convert_length", super::units::convert_length),
    ("convert_mass", super::units::convert_mass),
    ("convert_speed", super::units::convert_speed),
    ("convert_volume", super::units::convert_volume),
    ("convert_temperature", super::units::convert_temperature),
];

fn real(c: &FnCall<'_>, i: usize) -> Expr {
    cast(
        convert_pub(c.arg(i), KustoType::Real).expr,
        DataType::Float64,
    )
}

fn bin(l: Expr, op: Operator, r: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

macro_rules! unary_real {
    ($name:ident, $df:path) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity(1, 1)?;
            Ok(TExpr::new($df(real(c, 0)), KustoType::Real))
        }
    };
}

unary_real!(sqrt, m::sqrt);
unary_real!(exp, m::exp);
unary_real!(log, m::ln);
unary_real!(log2, m::log2);
unary_real!(log10, m::log10);
unary_real!(sin, m::sin);
unary_real!(cos, m::cos);
unary_real!(tan, m::tan);
unary_real!(asin, m::asin);
unary_real!(acos, m::acos);
unary_real!(atan, m::atan);
unary_real!(cot, m::cot);
unary_real!(degrees, m::degrees);
unary_real!(radians, m::radians);

fn abs(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    match a.ty {
        KustoType::Timespan => {
            let neg = crate::plan::negate_pub(a.clone(), c.span)?;
            let zero = TExpr::lit(
                datafusion::common::ScalarValue::DurationNanosecond(Some(0)),
                KustoType::Timespan,
            );
            let lt = crate::plan::binary_pub(crate::ast::BinOp::Lt, a.clone(), zero, c.span)?;
            Ok(TExpr::new(
                datafusion::logical_expr::when(lt.expr, neg.expr).otherwise(a.expr)?,
                KustoType::Timespan,
            ))
        }
        t if t.is_numeric() => Ok(TExpr::new(m::abs(a.expr), t)),
        _ => Ok(TExpr::new(m::abs(real(c, 0)), KustoType::Real)),
    }
}

fn ceiling(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    let ty = if a.ty.is_integer() {
        a.ty
    } else {
        KustoType::Real
    };
    Ok(TExpr::new(cast(m::ceil(real(c, 0)), ty.arrow()), ty))
}

fn round(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    let mut args = vec![real(c, 0)];
    if c.args.len() > 1 {
        args.push(cast(c.arg(1).expr, DataType::Int64));
    }
    Ok(TExpr::new(m::round(args), KustoType::Real))
}

fn pow(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(TExpr::new(
        m::power(real(c, 0), real(c, 1)),
        KustoType::Real,
    ))
}

fn exp2(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(m::power(lit(2.0), real(c, 0)), KustoType::Real))
}

fn exp10(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(m::power(lit(10.0), real(c, 0)), KustoType::Real))
}

fn sign(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    let ty = if a.ty.is_numeric() {
        a.ty
    } else {
        KustoType::Real
    };
    Ok(TExpr::new(cast(m::signum(real(c, 0)), ty.arrow()), ty))
}

fn pi(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(0, 0)?;
    Ok(TExpr::real(std::f64::consts::PI))
}

fn rand(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(0, 1)?;
    if c.args.is_empty() {
        return Ok(TExpr::new(m::random(), KustoType::Real));
    }
    // rand(n): a long in [0, n).
    let e = m::floor(bin(m::random(), Operator::Multiply, real(c, 0)));
    Ok(TExpr::new(cast(e, DataType::Int64), KustoType::Long))
}

fn isnan(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(m::isnan(real(c, 0)), KustoType::Bool))
}

fn isinf(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Real);
    Ok(c.row(KustoType::Bool, |v| {
        a0(v)
            .as_f64()
            .map_or(Val::Null, |x| Val::Bool(x.is_infinite()))
    }))
}

fn isfinite(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Real);
    Ok(c.row(KustoType::Bool, |v| {
        a0(v)
            .as_f64()
            .map_or(Val::Null, |x| Val::Bool(x.is_finite()))
    }))
}

fn atan2(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(TExpr::new(
        m::atan2(real(c, 0), real(c, 1)),
        KustoType::Real,
    ))
}

/// The gamma function (Lanczos approximation).
pub(crate) fn gamma_fn(x: f64) -> f64 {
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma_fn(1.0 - x))
    } else {
        loggamma_pos(x).exp()
    }
}

fn loggamma_pos(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn gamma(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Real);
    Ok(c.row(KustoType::Real, |v| {
        a0(v).as_f64().map_or(Val::Null, |x| Val::Real(gamma_fn(x)))
    }))
}

fn loggamma(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Real);
    Ok(c.row(KustoType::Real, |v| {
        a0(v)
            .as_f64()
            .map_or(Val::Null, |x| Val::Real(gamma_fn(x).abs().ln()))
    }))
}

fn long_args(c: &FnCall<'_>) -> Vec<Expr> {
    c.args
        .iter()
        .map(|a| {
            cast(
                convert_pub(a.clone(), KustoType::Long).expr,
                DataType::Int64,
            )
        })
        .collect()
}

macro_rules! bitwise {
    ($name:ident, $op:expr) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity(2, 2)?;
            let a = long_args(c);
            Ok(TExpr::new(
                bin(a[0].clone(), $op, a[1].clone()),
                KustoType::Long,
            ))
        }
    };
}

bitwise!(binary_and, Operator::BitwiseAnd);
bitwise!(binary_or, Operator::BitwiseOr);
bitwise!(binary_xor, Operator::BitwiseXor);
bitwise!(binary_shift_left, Operator::BitwiseShiftLeft);
bitwise!(binary_shift_right, Operator::BitwiseShiftRight);

fn binary_not(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = long_args(c);
    Ok(TExpr::new(
        bin(a[0].clone(), Operator::BitwiseXor, lit(-1i64)),
        KustoType::Long,
    ))
}

fn bitset_count_ones(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Long);
    Ok(c.row(KustoType::Long, |v| {
        a0(v)
            .as_i64()
            .map_or(Val::Null, |x| Val::Long(i64::from(x.count_ones())))
    }))
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction).
fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let lbeta = loggamma_pos(a) + loggamma_pos(b) - loggamma_pos(a + b);
    let front = (x.ln() * a + (1.0 - x).ln() * b - lbeta).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    // Lentz's algorithm.
    let (mut f, mut cc, mut d) = (1.0f64, 1.0f64, 0.0f64);
    for i in 0..=400 {
        let m = f64::from(i / 2);
        let num = if i == 0 {
            1.0
        } else if i % 2 == 0 {
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        } else {
            -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        };
        d = 1.0 + num * d;
        if d.abs() < 1e-30 {
            d = 1e-30;
        }
        d = 1.0 / d;
        cc = 1.0 + num / cc;
        if cc.abs() < 1e-30 {
            cc = 1e-30;
        }
        let cd = cc * d;
        f *= cd;
        if (1.0 - cd).abs() < 1e-12 {
            break;
        }
    }
    front * (f - 1.0) / a
}

fn beta_args(v: &[Val]) -> Option<(f64, f64, f64)> {
    Some((a0(v).as_f64()?, at(v, 1).as_f64()?, at(v, 2).as_f64()?))
}

fn beta_cdf(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Real, |v| match beta_args(v) {
        Some((x, _, _)) if !(0.0..=1.0).contains(&x) => Val::Real(f64::NAN),
        Some((x, a, b)) if a > 0.0 && b > 0.0 => Val::Real(inc_beta(x, a, b)),
        // A shape parameter out of range (alpha, beta <= 0) yields NaN.
        Some(_) => Val::Real(f64::NAN),
        None => Val::Null,
    }))
}

fn beta_pdf(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Real, |v| match beta_args(v) {
        Some((x, _, _)) if !(0.0..=1.0).contains(&x) => Val::Real(f64::NAN),
        Some((x, a, b)) if a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x) => {
            let lbeta = loggamma_pos(a) + loggamma_pos(b) - loggamma_pos(a + b);
            Val::Real(((a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln() - lbeta).exp())
        }
        Some(_) => Val::Real(f64::NAN),
        None => Val::Null,
    }))
}

fn beta_inv(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Real, |v| match beta_args(v) {
        Some((p, a, b)) if a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&p) => {
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..200 {
                let mid = (lo + hi) / 2.0;
                if inc_beta(mid, a, b) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Val::Real((lo + hi) / 2.0)
        }
        // A probability out of [0, 1] yields null, a shape parameter <= 0 NaN.
        Some((p, _, _)) if !(0.0..=1.0).contains(&p) => Val::Null,
        Some(_) => Val::Real(f64::NAN),
        None => Val::Null,
    }))
}
