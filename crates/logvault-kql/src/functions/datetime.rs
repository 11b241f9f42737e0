//! Datetime and timespan functions. Datetimes are planned as nanoseconds; row functions see
//! 100 ns ticks.

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, cast, lit};

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::literal::{TICKS_PER_DAY, TICKS_PER_SECOND};
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("now", now),
    ("ago", ago),
    ("bin", bin),
    ("floor", bin),
    ("bin_at", bin_at),
    ("bin_auto", bin_auto),
    ("startofday", startofday),
    ("startofweek", startofweek),
    ("startofmonth", startofmonth),
    ("startofyear", startofyear),
    ("endofday", endofday),
    ("endofweek", endofweek),
    ("endofmonth", endofmonth),
    ("endofyear", endofyear),
    ("datetime_part", datetime_part),
    ("datepart", datetime_part),
    ("getyear", getyear),
    ("getmonth", getmonth),
    ("monthofyear", getmonth),
    ("dayofmonth", dayofmonth),
    ("dayofweek", dayofweek),
    ("dayofyear", dayofyear),
    ("hourofday", hourofday),
    ("weekofyear", weekofyear),
    ("week_of_year", weekofyear),
    ("datetime_add", datetime_add),
    ("datetime_diff", datetime_diff),
    ("format_datetime", format_datetime_fn),
    ("format_timespan", format_timespan_fn),
    ("make_datetime", make_datetime),
    ("make_timespan", make_timespan),
    ("unixtime_seconds_todatetime", unix_seconds),
    ("unixtime_milliseconds_todatetime", unix_millis),
    ("unixtime_microseconds_todatetime", unix_micros),
    ("unixtime_nanoseconds_todatetime", unix_nanos),
    ("datetime_list_timezones", unsupported),
];

fn ns_ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn dt_lit(ticks: i64) -> TExpr {
    TExpr::lit(
        ScalarValue::TimestampNanosecond(Some(ticks.saturating_mul(100)), Some("UTC".into())),
        KustoType::DateTime,
    )
}

fn bin_expr(l: Expr, op: Operator, r: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

fn unsupported(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    Err(KqlError::unsupported(format!("{}()", c.name), c.span))
}

fn now(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(0, 1)?;
    let base = dt_lit(c.now_ticks);
    if c.args.is_empty() {
        return Ok(base);
    }
    crate::plan::binary_pub(crate::ast::BinOp::Add, base, c.arg(0), c.span)
}

fn ago(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    if a.ty != KustoType::Timespan {
        return Err(c.err(format!("expects a timespan (such as 1h), found {}", a.ty)));
    }
    if let Some(ScalarValue::DurationNanosecond(Some(ns))) = a.literal() {
        return Ok(dt_lit(c.now_ticks - ns / 100));
    }
    crate::plan::binary_pub(crate::ast::BinOp::Sub, dt_lit(c.now_ticks), a, c.span)
}

/// `x` rounded down to a multiple of `size`, planned as arithmetic (vectorized, and the same
/// plan as SQL's): for datetimes and timespans on nanoseconds since the epoch.
fn floor_to(x: TExpr, size: TExpr, c: &FnCall<'_>) -> Result<TExpr, KqlError> {
    match (x.ty, size.ty) {
        (KustoType::DateTime | KustoType::Timespan, KustoType::Timespan) => {
            let to_ns = |e: Expr, t: KustoType| match t {
                KustoType::DateTime => cast(cast(e, ns_ts()), DataType::Int64),
                _ => cast(
                    cast(e, DataType::Duration(TimeUnit::Nanosecond)),
                    DataType::Int64,
                ),
            };
            let xn = to_ns(x.expr, x.ty);
            let sn = to_ns(size.expr, KustoType::Timespan);
            // x - ((x % s) + s) % s: the floor also before 1970.
            let rem = bin_expr(
                bin_expr(
                    bin_expr(xn.clone(), Operator::Modulo, sn.clone()),
                    Operator::Plus,
                    sn.clone(),
                ),
                Operator::Modulo,
                sn,
            );
            let floored = bin_expr(xn, Operator::Minus, rem);
            let out = match x.ty {
                KustoType::DateTime => cast(floored, ns_ts()),
                _ => cast(floored, DataType::Duration(TimeUnit::Nanosecond)),
            };
            Ok(TExpr::new(out, x.ty))
        }
        (a, b) if a.is_numeric() && b.is_numeric() => {
            let ty = if a == KustoType::Real || b == KustoType::Real {
                KustoType::Real
            } else {
                a
            };
            let xf = cast(x.expr, DataType::Float64);
            let sf = cast(size.expr, DataType::Float64);
            let e = bin_expr(
                datafusion::functions::math::expr_fn::floor(bin_expr(
                    xf,
                    Operator::Divide,
                    sf.clone(),
                )),
                Operator::Multiply,
                sf,
            );
            Ok(TExpr::new(cast(e, ty.arrow()), ty))
        }
        (KustoType::Dynamic, _) => floor_to(convert_pub(x, KustoType::Real), size, c),
        (a, b) => Err(c.err(format!("cannot bin a {a} by a {b}"))),
    }
}

fn bin(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    floor_to(c.arg(0), c.arg(1), c)
}

fn bin_at(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    let (x, size, at) = (c.arg(0), c.arg(1), c.arg(2));
    let sub = crate::plan::binary_pub(crate::ast::BinOp::Sub, x.clone(), at.clone(), c.span)?;
    let (shifted, back) = if x.ty == KustoType::DateTime {
        // (x - at) is a timespan; bin it, then add `at` back.
        (sub, at)
    } else {
        (sub, at)
    };
    let floored = floor_to(shifted, size, c)?;
    crate::plan::binary_pub(crate::ast::BinOp::Add, floored, back, c.span)
}

fn bin_auto(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    // Without the query's `set query_bin_auto_size`, Kusto bins by one hour.
    let size = TExpr::lit(
        ScalarValue::DurationNanosecond(Some(3_600_000_000_000)),
        KustoType::Timespan,
    );
    floor_to(c.arg(0), size, c)
}

fn dt_of(ticks: i64) -> Option<DateTime<Utc>> {
    let secs = ticks.div_euclid(TICKS_PER_SECOND);
    let nanos = (ticks.rem_euclid(TICKS_PER_SECOND) * 100) as u32;
    Utc.timestamp_opt(secs, nanos).single()
}

/// `d` in ticks; `None` past the about 29,000 years either side of 1970 that ticks hold (chrono's
/// dates reach year 262,143: a date these functions compute can be past it).
fn ticks_of(d: &DateTime<Utc>) -> Option<i64> {
    d.timestamp()
        .checked_mul(TICKS_PER_SECOND)?
        .checked_add(i64::from(d.timestamp_subsec_nanos() / 100))
}

fn day_start(d: NaiveDate) -> Option<i64> {
    ticks_of(&d.and_hms_opt(0, 0, 0)?.and_utc())
}

fn add_months(d: NaiveDate, months: i64) -> Option<NaiveDate> {
    let total = (i64::from(d.year()) * 12 + i64::from(d.month0())).checked_add(months)?;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let y = i32::try_from(y).ok()?;
    let last = (28..=31)
        .rev()
        .find(|day| NaiveDate::from_ymd_opt(y, m, *day).is_some())?;
    NaiveDate::from_ymd_opt(y, m, d.day().min(last))
}

/// The start of the period containing `t`, moved by `offset` periods.
fn period_start(t: i64, unit: &str, offset: i64) -> Option<i64> {
    let d = dt_of(t)?.date_naive();
    match unit {
        "day" => day_start(d)?.checked_add(offset.checked_mul(TICKS_PER_DAY)?),
        "week" => {
            let back = i64::from(d.weekday().num_days_from_sunday());
            day_start(d)?
                .checked_sub(back * TICKS_PER_DAY)?
                .checked_add(offset.checked_mul(7 * TICKS_PER_DAY)?)
        }
        "month" => day_start(add_months(d.with_day(1)?, offset)?),
        _ => day_start(NaiveDate::from_ymd_opt(
            d.year().checked_add(i32::try_from(offset).ok()?)?,
            1,
            1,
        )?),
    }
}

fn start_of(c: &mut FnCall<'_>, f: fn(&[Val]) -> Val) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::DateTime);
    Ok(c.row(KustoType::DateTime, f))
}

fn offset(v: &[Val]) -> i64 {
    if v.len() > 1 {
        at(v, 1).as_i64().unwrap_or(0)
    } else {
        0
    }
}

macro_rules! period_fns {
    ($start:ident, $end:ident, $unit:literal) => {
        fn $start(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            start_of(c, |v| {
                a0(v)
                    .as_datetime()
                    .and_then(|t| period_start(t, $unit, offset(v)))
                    .map_or(Val::Null, Val::DateTime)
            })
        }
        fn $end(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            start_of(c, |v| {
                a0(v)
                    .as_datetime()
                    .and_then(|t| period_start(t, $unit, offset(v) + 1))
                    .map_or(Val::Null, |n| Val::DateTime(n - 1))
            })
        }
    };
}

period_fns!(startofday, endofday, "day");
period_fns!(startofweek, endofweek, "week");
period_fns!(startofmonth, endofmonth, "month");
period_fns!(startofyear, endofyear, "year");

/// A part of a datetime (`year`, `month`, `hour`, ...).
fn part(t: i64, part: &str) -> Option<i64> {
    let d = dt_of(t)?;
    let frac = t.rem_euclid(TICKS_PER_SECOND);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => i64::from(d.year()),
        "quarter" => i64::from(d.month0() / 3 + 1),
        "month" => i64::from(d.month()),
        "week_of_year" | "weekofyear" | "week" => i64::from(d.iso_week().week()),
        "day" => i64::from(d.day()),
        "dayofyear" => i64::from(d.ordinal()),
        "hour" => i64::from(d.hour()),
        "minute" => i64::from(d.minute()),
        "second" => i64::from(d.second()),
        "millisecond" => frac / 10_000,
        "microsecond" => frac / 10,
        "nanosecond" => frac * 100,
        _ => return None,
    })
}

fn datetime_part(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[1] = convert_pub(c.arg(1), KustoType::DateTime);
    Ok(c.row(KustoType::Int, |v| {
        match at(v, 1)
            .as_datetime()
            .and_then(|t| part(t, &a0(v).to_text()))
        {
            Some(p) => Val::Int(p as i32),
            None => Val::Null,
        }
    }))
}

macro_rules! part_fn {
    ($name:ident, $part:literal, $ty:expr) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity(1, 1)?;
            c.args[0] = convert_pub(c.arg(0), KustoType::DateTime);
            Ok(c.row($ty, |v| {
                a0(v)
                    .as_datetime()
                    .and_then(|t| part(t, $part))
                    .map_or(Val::Null, Val::Long)
            }))
        }
    };
}

part_fn!(getyear, "year", KustoType::Int);
part_fn!(getmonth, "month", KustoType::Int);
part_fn!(dayofmonth, "day", KustoType::Int);
part_fn!(dayofyear, "dayofyear", KustoType::Int);
part_fn!(hourofday, "hour", KustoType::Int);
part_fn!(weekofyear, "week_of_year", KustoType::Int);

fn dayofweek(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::DateTime);
    Ok(c.row(KustoType::Timespan, |v| {
        a0(v).as_datetime().and_then(dt_of).map_or(Val::Null, |d| {
            Val::Timespan(i64::from(d.weekday().num_days_from_sunday()) * TICKS_PER_DAY)
        })
    }))
}

fn unit_ticks(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "week" => 7 * TICKS_PER_DAY,
        "day" => TICKS_PER_DAY,
        "hour" => 3600 * TICKS_PER_SECOND,
        "minute" => 60 * TICKS_PER_SECOND,
        "second" => TICKS_PER_SECOND,
        "millisecond" => 10_000,
        "microsecond" => 10,
        "nanosecond" => 1,
        _ => return None,
    })
}

fn datetime_add(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    c.args[2] = convert_pub(c.arg(2), KustoType::DateTime);
    Ok(c.row(KustoType::DateTime, |v| {
        let (unit, n, t) = (
            a0(v).to_text().to_ascii_lowercase(),
            at(v, 1).as_i64(),
            at(v, 2).as_datetime(),
        );
        let (Some(n), Some(t)) = (n, t) else {
            return Val::Null;
        };
        let months_per_unit = match unit.as_str() {
            "year" => Some(12),
            "quarter" => Some(3),
            "month" => Some(1),
            _ => None,
        };
        if let Some(per) = months_per_unit {
            // Past the ticks' range (months or the date moved to): null, not an overflow.
            let moved = || -> Option<i64> {
                let d = dt_of(t)?.date_naive();
                let tod = t.checked_sub(day_start(d)?)?;
                day_start(add_months(d, n.checked_mul(per)?)?)?.checked_add(tod)
            };
            return moved().map_or(Val::Null, Val::DateTime);
        }
        unit_ticks(&unit)
            .and_then(|u| n.checked_mul(u))
            .and_then(|d| t.checked_add(d))
            .map_or(Val::Null, Val::DateTime)
    }))
}

fn datetime_diff(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    c.args[1] = convert_pub(c.arg(1), KustoType::DateTime);
    c.args[2] = convert_pub(c.arg(2), KustoType::DateTime);
    Ok(c.row(KustoType::Long, |v| {
        let unit = a0(v).to_text().to_ascii_lowercase();
        let (Some(a), Some(b)) = (at(v, 1).as_datetime(), at(v, 2).as_datetime()) else {
            return Val::Null;
        };
        let (Some(da), Some(db)) = (dt_of(a), dt_of(b)) else {
            return Val::Null;
        };
        let months = |x: &DateTime<Utc>| i64::from(x.year()) * 12 + i64::from(x.month0());
        Val::Long(match unit.as_str() {
            "year" => i64::from(da.year() - db.year()),
            "quarter" => {
                (i64::from(da.year()) * 4 + i64::from(da.month0() / 3))
                    - (i64::from(db.year()) * 4 + i64::from(db.month0() / 3))
            }
            "month" => months(&da) - months(&db),
            "week" => {
                let wa = period_start(a, "week", 0).unwrap_or(a);
                let wb = period_start(b, "week", 0).unwrap_or(b);
                ((i128::from(wa) - i128::from(wb)) / i128::from(7 * TICKS_PER_DAY)) as i64
            }
            "day" => {
                let (Some(sa), Some(sb)) = (day_start(da.date_naive()), day_start(db.date_naive()))
                else {
                    return Val::Null;
                };
                ((i128::from(sa) - i128::from(sb)) / i128::from(TICKS_PER_DAY)) as i64
            }
            "nanosecond" => a.saturating_sub(b).saturating_mul(100),
            other => match unit_ticks(other) {
                Some(u) => a.div_euclid(u) - b.div_euclid(u),
                None => return Val::Null,
            },
        })
    }))
}

/// .NET-style format of a datetime (`yyyy-MM-dd HH:mm:ss.fff tt`).
fn format_dt(t: i64, fmt: &str) -> Option<String> {
    let d = dt_of(t)?;
    let frac = t.rem_euclid(TICKS_PER_SECOND);
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == ch {
            n += 1;
        }
        let s = match ch {
            'y' => match n {
                1 => format!("{}", d.year() % 100),
                2 => format!("{:02}", d.year() % 100),
                _ => format!("{:0width$}", d.year(), width = n),
            },
            'M' => match n {
                1 => d.month().to_string(),
                2 => format!("{:02}", d.month()),
                3 => d.format("%b").to_string(),
                _ => d.format("%B").to_string(),
            },
            'd' => match n {
                1 => d.day().to_string(),
                2 => format!("{:02}", d.day()),
                3 => d.format("%a").to_string(),
                _ => d.format("%A").to_string(),
            },
            'h' => {
                let h = d.hour() % 12;
                let h = if h == 0 { 12 } else { h };
                if n == 1 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                }
            }
            'H' => {
                if n == 1 {
                    d.hour().to_string()
                } else {
                    format!("{:02}", d.hour())
                }
            }
            'm' => {
                if n == 1 {
                    d.minute().to_string()
                } else {
                    format!("{:02}", d.minute())
                }
            }
            's' => {
                if n == 1 {
                    d.second().to_string()
                } else {
                    format!("{:02}", d.second())
                }
            }
            'f' | 'F' => {
                let digits = format!("{frac:07}");
                let mut s: String = digits.chars().take(n.min(7)).collect();
                if ch == 'F' {
                    s = s.trim_end_matches('0').to_owned();
                }
                s
            }
            't' => {
                let ampm = if d.hour() < 12 { "AM" } else { "PM" };
                if n == 1 {
                    ampm[..1].to_owned()
                } else {
                    ampm.to_owned()
                }
            }
            _ => ch.to_string().repeat(n),
        };
        out.push_str(&s);
        i += n;
    }
    Some(out)
}

fn format_datetime_fn(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::DateTime);
    Ok(c.row(KustoType::String, |v| {
        a0(v)
            .as_datetime()
            .and_then(|t| format_dt(t, &at(v, 1).to_text()))
            .map_or(Val::Null, Val::Str)
    }))
}

fn format_ts(t: i64, fmt: &str) -> String {
    let neg = t < 0;
    let t = t.unsigned_abs() as i64;
    let days = t / TICKS_PER_DAY;
    let rem = t % TICKS_PER_DAY;
    let (h, m, s, frac) = (
        rem / (3600 * TICKS_PER_SECOND),
        rem / (60 * TICKS_PER_SECOND) % 60,
        rem / TICKS_PER_SECOND % 60,
        rem % TICKS_PER_SECOND,
    );
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == ch {
            n += 1;
        }
        let piece = match ch {
            'd' => format!("{days:0n$}"),
            'h' | 'H' => format!("{h:0n$}"),
            'm' => format!("{m:0n$}"),
            's' => format!("{s:0n$}"),
            'f' | 'F' => {
                let digits: String = format!("{frac:07}").chars().take(n.min(7)).collect();
                if ch == 'F' {
                    digits.trim_end_matches('0').to_owned()
                } else {
                    digits
                }
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                n = 1;
                chars[i].to_string()
            }
            _ => ch.to_string().repeat(n),
        };
        out.push_str(&piece);
        i += n;
    }
    out
}

fn format_timespan_fn(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[0] = convert_pub(c.arg(0), KustoType::Timespan);
    Ok(c.row(KustoType::String, |v| {
        a0(v)
            .as_timespan()
            .map_or(Val::Null, |t| Val::Str(format_ts(t, &at(v, 1).to_text())))
    }))
}

fn make_datetime(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 7)?;
    Ok(c.row(KustoType::DateTime, |v| {
        let n = |i: usize| {
            if v.len() > i {
                at(v, i).as_i64()
            } else {
                Some(0)
            }
        };
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi)) = (n(0), n(1), n(2), n(3), n(4)) else {
            return Val::Null;
        };
        let sec = if v.len() > 5 {
            at(v, 5).as_f64()
        } else {
            Some(0.0)
        };
        let Some(sec) = sec else { return Val::Null };
        let Some(date) = NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32) else {
            return Val::Null;
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..60.0).contains(&sec) {
            return Val::Null;
        }
        let t = day_start(date).and_then(|d| {
            d.checked_add((h * 3600 + mi * 60) * TICKS_PER_SECOND)?
                .checked_add((sec * TICKS_PER_SECOND as f64).round() as i64)
        });
        t.map_or(Val::Null, Val::DateTime)
    }))
}

fn make_timespan(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 5)?;
    Ok(c.row(KustoType::Timespan, |v| {
        let nums: Option<Vec<f64>> = v.iter().map(Val::as_f64).collect();
        let Some(nums) = nums else { return Val::Null };
        let (d, h, m, s) = match nums.as_slice() {
            [h, m] => (0.0, *h, *m, 0.0),
            [h, m, s] => (0.0, *h, *m, *s),
            [d, h, m, s, ..] => (*d, *h, *m, *s),
            _ => return Val::Null,
        };
        let secs = ((d * 24.0 + h) * 60.0 + m) * 60.0 + s;
        Val::Timespan((secs * TICKS_PER_SECOND as f64).round() as i64)
    }))
}

fn unix(c: &mut FnCall<'_>, ns_per_unit: f64) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let x = c.arg(0);
    let ns = cast(
        datafusion::functions::math::expr_fn::round(vec![bin_expr(
            cast(x.expr, DataType::Float64),
            Operator::Multiply,
            lit(ns_per_unit),
        )]),
        DataType::Int64,
    );
    Ok(TExpr::new(cast(ns, ns_ts()), KustoType::DateTime))
}

fn unix_seconds(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    unix(c, 1e9)
}
fn unix_millis(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    unix(c, 1e6)
}
fn unix_micros(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    unix(c, 1e3)
}
fn unix_nanos(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    unix(c, 1.0)
}
