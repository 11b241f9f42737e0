//! Time zone conversions (`datetime_utc_to_local`, `datetime_local_to_utc`) with the IANA
//! time zone database of the `chrono-tz` crate. An unknown time zone gives null. A local time
//! that a clock change skips is read in the offset before the change; one it repeats is the
//! earlier of the two instants.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::literal::TICKS_PER_SECOND;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("datetime_utc_to_local", utc_to_local),
    ("datetime_local_to_utc", local_to_utc),
];

fn tz(v: &Val) -> Option<Tz> {
    v.to_text().trim().parse::<Tz>().ok()
}

/// A datetime in ticks as a UTC instant, with the ticks below the second apart.
fn instant(ticks: i64) -> Option<(DateTime<Utc>, i64)> {
    let secs = ticks.div_euclid(TICKS_PER_SECOND);
    let sub = ticks.rem_euclid(TICKS_PER_SECOND);
    Some((DateTime::from_timestamp(secs, 0)?, sub))
}

/// The offset of `zone` from UTC at the UTC instant `ticks`, in ticks.
fn offset_at_utc(zone: Tz, ticks: i64) -> Option<i64> {
    let (t, _) = instant(ticks)?;
    let off = zone.offset_from_utc_datetime(&t.naive_utc()).fix();
    Some(i64::from(off.local_minus_utc()) * TICKS_PER_SECOND)
}

fn utc_to_local(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::DateTime, |v| {
        match (a0(v).as_datetime(), tz(at(v, 1))) {
            (Some(t), Some(zone)) => offset_at_utc(zone, t)
                .and_then(|o| t.checked_add(o))
                .map_or(Val::Null, Val::DateTime),
            _ => Val::Null,
        }
    }))
}

fn local_to_utc(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::DateTime, |v| {
        let (Some(t), Some(zone)) = (a0(v).as_datetime(), tz(at(v, 1))) else {
            return Val::Null;
        };
        let Some((local, sub)) = instant(t) else {
            return Val::Null;
        };
        let naive = local.naive_utc();
        let resolved = zone.from_local_datetime(&naive).earliest().or_else(|| {
            // Skipped by a clock change: read it in the offset before the change.
            let before = zone
                .offset_from_utc_datetime(&(naive - chrono::Duration::hours(3)))
                .fix();
            Some(
                before
                    .from_local_datetime(&naive)
                    .single()?
                    .with_timezone(&zone),
            )
        });
        resolved
            .and_then(|d| {
                d.timestamp()
                    .checked_mul(TICKS_PER_SECOND)?
                    .checked_add(sub)
            })
            .map_or(Val::Null, Val::DateTime)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * TICKS_PER_SECOND;

    fn ticks(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .timestamp()
            * TICKS_PER_SECOND
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Winter: UTC+1; summer: UTC+2 (published rules of the EU since 1996).
        assert_eq!(offset_at_utc(paris, ticks(2020, 2, 2, 12, 0)), Some(H));
        assert_eq!(offset_at_utc(paris, ticks(2020, 7, 2, 12, 0)), Some(2 * H));
        let la: Tz = "US/Pacific".parse().unwrap();
        assert_eq!(offset_at_utc(la, ticks(2022, 7, 11, 22, 18)), Some(-7 * H));
        assert!(tz(&Val::Str("Mars/Olympus".into())).is_none());
    }
}
