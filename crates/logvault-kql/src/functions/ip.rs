//! IP address functions (IPv4 and IPv6, with CIDR prefixes).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("parse_ipv4", parse_ipv4),
    ("parse_ipv4_mask", parse_ipv4_mask),
    ("ipv4_is_in_range", ipv4_is_in_range),
    ("ipv4_is_in_any_range", ipv4_is_in_any_range),
    ("ipv4_is_private", ipv4_is_private),
    ("ipv4_is_match", ipv4_is_match),
    ("ipv4_compare", ipv4_compare),
    ("ipv4_netmask_suffix", ipv4_netmask_suffix),
    ("format_ipv4", format_ipv4),
    ("format_ipv4_mask", format_ipv4_mask),
    ("has_ipv4", has_ipv4),
    ("has_ipv4_prefix", has_ipv4_prefix),
    ("has_any_ipv4", has_any_ipv4),
    ("parse_ipv6", parse_ipv6),
    ("parse_ipv6_mask", parse_ipv6_mask),
    ("ipv6_compare", ipv6_compare),
    ("ipv6_is_match", ipv6_is_match),
    ("ipv6_is_in_range", ipv6_is_in_range),
    ("ipv6_is_in_any_range", ipv6_is_in_any_range),
];

/// An IPv4 address with an optional `/prefix` (the prefix defaults to 32), as a number and a
/// prefix length.
pub(crate) fn v4(text: &str) -> Option<(u32, u32)> {
    let t = text.trim();
    let (addr, prefix) = match t.split_once('/') {
        Some((a, p)) => (a, p.trim().parse::<u32>().ok().filter(|p| *p <= 32)?),
        None => (t, 32),
    };
    let ip: Ipv4Addr = addr.trim().parse().ok()?;
    Some((u32::from(ip), prefix))
}

fn mask4(prefix: u32) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    }
}

/// An IPv6 (or IPv4, mapped) address with an optional prefix (default 128).
fn v6(text: &str) -> Option<(u128, u32)> {
    let t = text.trim();
    let (addr, prefix) = match t.split_once('/') {
        Some((a, p)) => (a, p.trim().parse::<u32>().ok().filter(|p| *p <= 128)?),
        None => (t, 128),
    };
    // `::a.b.c.d` (IPv4-compatible notation) is the IPv4 address, as Kusto reads it.
    let v4_compatible = addr
        .trim()
        .strip_prefix("::")
        .filter(|r| r.parse::<Ipv4Addr>().is_ok());
    if v4_compatible.is_none()
        && let Ok(ip) = addr.trim().parse::<Ipv6Addr>()
    {
        return Some((u128::from(ip), prefix));
    }
    let (n, p4) = v4(v4_compatible.unwrap_or(addr))?;
    let prefix = if t.contains('/') {
        prefix.min(32) + 96
    } else {
        128.min(p4 + 96)
    };
    Some((u128::from(Ipv4Addr::from(n).to_ipv6_mapped()), prefix))
}

fn mask6(prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128))
    }
}

fn text(c: &mut FnCall<'_>, i: usize) {
    if i < c.args.len() {
        c.args[i] = convert_pub(c.arg(i), KustoType::String);
    }
}

fn texts(c: &mut FnCall<'_>, n: usize) {
    for i in 0..n {
        text(c, i);
    }
}

fn s(v: &Val) -> String {
    v.to_text()
}

fn prefix_arg(v: &[Val], i: usize) -> Option<u32> {
    if v.len() > i {
        at(v, i).as_i64().and_then(|p| u32::try_from(p).ok())
    } else {
        None
    }
}

fn parse_ipv4(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    texts(c, 1);
    Ok(c.row(KustoType::Long, |v| {
        v4(&s(a0(v))).map_or(Val::Null, |(n, p)| Val::Long(i64::from(n & mask4(p))))
    }))
}

fn parse_ipv4_mask(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 1);
    Ok(c.row(KustoType::Long, |v| {
        match (v4(&s(a0(v))), prefix_arg(v, 1)) {
            (Some((n, p)), Some(m)) if m <= 32 => Val::Long(i64::from(n & mask4(p.min(m)))),
            _ => Val::Null,
        }
    }))
}

fn in_range4(ip: &str, range: &str) -> Option<bool> {
    let (n, p) = v4(ip)?;
    let (r, rp) = v4(range)?;
    let m = mask4(rp.min(p));
    Some(n & m == r & m)
}

fn ipv4_is_in_range(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        in_range4(&s(a0(v)), &s(at(v, 1))).map_or(Val::Null, Val::Bool)
    }))
}

/// The ranges of an `*_in_any_range` call: strings or dynamic arrays of strings.
fn ranges(v: &[Val]) -> Vec<String> {
    let mut out = Vec::new();
    for x in v {
        match x {
            Val::Dynamic(Value::Array(a)) => {
                out.extend(a.iter().filter_map(|i| i.as_str().map(str::to_owned)));
            }
            Val::Null => {}
            other => out.push(other.to_text()),
        }
    }
    out
}

fn ipv4_is_in_any_range(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    text(c, 0);
    Ok(c.row(KustoType::Bool, |v| {
        let ip = s(a0(v));
        if v4(&ip).is_none() {
            return Val::Null;
        }
        Val::Bool(
            ranges(&v[1..])
                .iter()
                .any(|r| in_range4(&ip, r) == Some(true)),
        )
    }))
}

fn ipv4_is_private(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    texts(c, 1);
    Ok(c.row(KustoType::Bool, |v| {
        let ip = s(a0(v));
        if v4(&ip).is_none() {
            return Val::Null;
        }
        Val::Bool(
            ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
                .iter()
                .any(|r| in_range4(&ip, r) == Some(true)),
        )
    }))
}

fn cmp4(v: &[Val]) -> Option<i64> {
    let (a, pa) = v4(&s(a0(v)))?;
    let (b, pb) = v4(&s(at(v, 1)))?;
    let p = match prefix_arg(v, 2) {
        Some(p) if p <= 32 => p.min(pa).min(pb),
        Some(_) => return None,
        None => pa.min(pb),
    };
    let m = mask4(p);
    Some(match (a & m).cmp(&(b & m)) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}

fn ipv4_compare(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    texts(c, 2);
    Ok(c.row(KustoType::Long, |v| cmp4(v).map_or(Val::Null, Val::Long)))
}

fn ipv4_is_match(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        cmp4(v).map_or(Val::Null, |x| Val::Bool(x == 0))
    }))
}

fn ipv4_netmask_suffix(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    texts(c, 1);
    Ok(c.row(KustoType::Int, |v| {
        v4(&s(a0(v))).map_or(Val::Null, |(_, p)| Val::Int(p as i32))
    }))
}

fn format_ipv4(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::String, |v| {
        let parsed = match a0(v) {
            Val::Long(_) | Val::Int(_) | Val::Dynamic(Value::Number(_)) => a0(v)
                .as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| (n, 32)),
            other => v4(&other.to_text()),
        };
        let Some((n, p)) = parsed else {
            return Val::Str(String::new());
        };
        let p = match prefix_arg(v, 1) {
            Some(m) if m <= 32 => p.min(m),
            Some(_) => return Val::Str(String::new()),
            None if v.len() > 1 => return Val::Str(String::new()),
            None => p,
        };
        Val::Str(Ipv4Addr::from(n & mask4(p)).to_string())
    }))
}

fn format_ipv4_mask(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::String, |v| {
        let parsed = match a0(v) {
            Val::Long(n) => u32::try_from(*n).ok().map(|n| (n, 32)),
            other => v4(&other.to_text()),
        };
        let Some((n, p)) = parsed else {
            return Val::Str(String::new());
        };
        let p = match prefix_arg(v, 1) {
            Some(m) if m <= 32 => p.min(m),
            Some(_) => return Val::Str(String::new()),
            None if v.len() > 1 => return Val::Str(String::new()),
            None => p,
        };
        Val::Str(format!("{}/{p}", Ipv4Addr::from(n & mask4(p))))
    }))
}

/// The IPv4 addresses written in a text (as Kusto finds them: dotted quads not part of a
/// longer run of digits and dots).
fn ipv4s_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.'))
        {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let cand: String = chars[i..j].iter().collect();
            let cand = cand.trim_end_matches('.').to_owned();
            let follows_alpha = j < chars.len() && chars[j].is_ascii_alphabetic();
            if !follows_alpha && cand.split('.').count() == 4 && cand.parse::<Ipv4Addr>().is_ok() {
                out.push(cand);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn has_ipv4(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        let ip = s(at(v, 1));
        if ip.parse::<Ipv4Addr>().is_err() {
            return Val::Bool(false);
        }
        Val::Bool(ipv4s_in(&s(a0(v))).contains(&ip))
    }))
}

fn has_ipv4_prefix(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        let prefix = s(at(v, 1));
        Val::Bool(ipv4s_in(&s(a0(v))).iter().any(|ip| ip.starts_with(&prefix)))
    }))
}

fn has_any_ipv4(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    text(c, 0);
    Ok(c.row(KustoType::Bool, |v| {
        let found = ipv4s_in(&s(a0(v)));
        Val::Bool(ranges(&v[1..]).iter().any(|ip| found.contains(ip)))
    }))
}

fn format_v6(n: u128) -> String {
    let segs: Vec<String> = (0..8)
        .map(|i| format!("{:04x}", (n >> (112 - 16 * i)) as u16))
        .collect();
    segs.join(":")
}

fn parse_ipv6(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    texts(c, 1);
    Ok(c.row(KustoType::String, |v| {
        v6(&s(a0(v))).map_or(Val::Null, |(n, p)| Val::Str(format_v6(n & mask6(p))))
    }))
}

fn parse_ipv6_mask(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 1);
    Ok(c.row(KustoType::String, |v| {
        let Some((n, p)) = v6(&s(a0(v))) else {
            return Val::Null;
        };
        let m = match prefix_arg(v, 1) {
            Some(m) if m <= 128 => m,
            _ => return Val::Null,
        };
        // The netmask counts the 128 bits of the IPv6 form, an IPv4 address's too (a /n
        // written in an IPv4 address counts its 32 bits).
        Val::Str(format_v6(n & mask6(p.min(m))))
    }))
}

fn cmp6(v: &[Val]) -> Option<i64> {
    let (a, pa) = v6(&s(a0(v)))?;
    let (b, pb) = v6(&s(at(v, 1)))?;
    let p = match prefix_arg(v, 2) {
        Some(p) if p <= 128 => p.min(pa).min(pb),
        Some(_) => return None,
        None => pa.min(pb),
    };
    let m = mask6(p);
    Some(match (a & m).cmp(&(b & m)) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}

fn ipv6_compare(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    texts(c, 2);
    Ok(c.row(KustoType::Long, |v| cmp6(v).map_or(Val::Null, Val::Long)))
}

fn ipv6_is_match(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        cmp6(v).map_or(Val::Null, |x| Val::Bool(x == 0))
    }))
}

fn in_range6(ip: &str, range: &str) -> Option<bool> {
    let (n, p) = v6(ip)?;
    let (r, rp) = v6(range)?;
    let m = mask6(rp.min(p));
    Some(n & m == r & m)
}

fn ipv6_is_in_range(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    texts(c, 2);
    Ok(c.row(KustoType::Bool, |v| {
        in_range6(&s(a0(v)), &s(at(v, 1))).map_or(Val::Null, Val::Bool)
    }))
}

fn ipv6_is_in_any_range(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    text(c, 0);
    Ok(c.row(KustoType::Bool, |v| {
        let ip = s(a0(v));
        if v6(&ip).is_none() {
            return Val::Null;
        }
        Val::Bool(
            ranges(&v[1..])
                .iter()
                .any(|r| in_range6(&ip, r) == Some(true)),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_ranges() {
        assert_eq!(in_range4("10.1.2.3", "10.0.0.0/8"), Some(true));
        assert_eq!(in_range4("11.1.2.3", "10.0.0.0/8"), Some(false));
        assert_eq!(in_range4("192.168.1.1", "192.168.1.1"), Some(true));
        assert_eq!(in_range4("not an ip", "10.0.0.0/8"), None);
        assert_eq!(
            ipv4s_in("from 10.0.0.1:443 and 1.2.3.4.5"),
            vec!["10.0.0.1".to_owned()]
        );
    }

    #[test]
    fn ipv6_ranges() {
        assert_eq!(
            in_range6("fe80::85d:e82c:9446:7994", "fe80::/10"),
            Some(true)
        );
        assert_eq!(in_range6("2001:db8::1", "fe80::/10"), Some(false));
        assert_eq!(
            format_v6(v6("::1").unwrap().0),
            "0000:0000:0000:0000:0000:0000:0000:0001"
        );
    }
}
