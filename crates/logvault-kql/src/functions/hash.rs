//! Hash functions: `hash` (xxHash64, as Kusto), `hash_sha256`, `hash_sha1`, `hash_md5`,
//! `hash_combine`, `hash_many`.

use sha2::Digest;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("hash", hash),
    ("hash_xxhash64", hash),
    ("hash_sha256", hash_sha256),
    ("hash_sha1", hash_sha1),
    ("hash_md5", hash_md5),
    ("hash_combine", hash_combine),
    ("hash_many", hash_many),
];

/// The bytes Kusto hashes for a value: a string's UTF-8, a number's 8 little-endian bytes.
fn bytes(v: &Val) -> Vec<u8> {
    match v {
        Val::Long(x) => x.to_le_bytes().to_vec(),
        Val::Int(x) => i64::from(*x).to_le_bytes().to_vec(),
        Val::Real(x) => x.to_le_bytes().to_vec(),
        Val::DateTime(t) | Val::Timespan(t) => t.to_le_bytes().to_vec(),
        other => other.to_text().into_bytes(),
    }
}

/// The bytes the cryptographic hashes digest: as [`bytes`], but a datetime is its ISO 8601
/// text with seven fractional digits (`2020-01-01T00:00:00.0000000Z`).
fn digest_bytes(v: &Val) -> Vec<u8> {
    match v {
        Val::DateTime(t) => {
            let secs = t.div_euclid(crate::literal::TICKS_PER_SECOND);
            let frac = t.rem_euclid(crate::literal::TICKS_PER_SECOND);
            chrono::DateTime::from_timestamp(secs, 0).map_or_else(
                || bytes(v),
                |d| format!("{}.{frac:07}Z", d.format("%Y-%m-%dT%H:%M:%S")).into_bytes(),
            )
        }
        other => bytes(other),
    }
}

fn xx(v: &Val) -> i64 {
    xxhash_rust::xxh64::xxh64(&bytes(v), 0) as i64
}

fn hash(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Long, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        let h = xx(a0(v));
        if v.len() > 1 {
            match at(v, 1).as_i64() {
                Some(m) if m > 0 => Val::Long((h as u64 % m as u64) as i64),
                _ => Val::Null,
            }
        } else {
            Val::Long(h)
        }
    }))
}

fn hex_digest(d: impl AsRef<[u8]>) -> String {
    hex::encode(d.as_ref())
}

fn hash_sha256(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        Val::Str(hex_digest(sha2::Sha256::digest(digest_bytes(a0(v)))))
    }))
}

fn hash_sha1(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        Val::Str(hex_digest(sha1::Sha1::digest(digest_bytes(a0(v)))))
    }))
}

fn hash_md5(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        Val::Str(hex_digest(md5::Md5::digest(digest_bytes(a0(v)))))
    }))
}

/// Combines hashes: h = h * 31 + x (wrapping). Kusto's rule is not documented and this is not
/// it (docs/kql.md says what was tried); `hash_many` of values is this over their `hash()`es,
/// as the documented values show Kusto's is.
fn combine(hs: impl Iterator<Item = i64>) -> i64 {
    hs.fold(0i64, |acc, h| acc.wrapping_mul(31).wrapping_add(h))
}

fn hash_combine(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Long, |v| {
        let hs: Option<Vec<i64>> = v.iter().map(Val::as_i64).collect();
        hs.map_or(Val::Null, |hs| Val::Long(combine(hs.into_iter())))
    }))
}

fn hash_many(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(c.row(KustoType::Long, |v| Val::Long(combine(v.iter().map(xx)))))
}
