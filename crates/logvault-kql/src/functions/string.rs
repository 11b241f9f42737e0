//! String functions.

use std::cell::RefCell;
use std::collections::HashMap;

use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions::string::expr_fn as sf;
use datafusion::functions::unicode::expr_fn as uf;
use datafusion::logical_expr::{Expr, cast, lit};
use regex::Regex;
use serde_json::Value;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("strlen", strlen),
    ("tolower", tolower),
    ("toupper", toupper),
    ("strcat", strcat),
    ("strcat_delim", strcat_delim),
    ("substring", substring),
    ("split", split),
    ("replace_string", replace_string),
    ("replace_regex", replace_regex),
    ("replace", replace),
    ("trim", trim),
    ("trim_start", trim_start),
    ("trim_end", trim_end),
    ("indexof", indexof),
    ("indexof_regex", indexof_regex),
    ("reverse", reverse),
    ("extract", extract),
    ("extract_all", extract_all),
    ("countof", countof),
    ("strrep", strrep),
    ("strcmp", strcmp),
    ("string_size", string_size),
    ("translate", translate),
    ("regex_quote", regex_quote),
    ("has_any_index", has_any_index),
];

pub(super) fn text(t: TExpr) -> TExpr {
    crate::plan::convert_pub(t, KustoType::String)
}

pub(super) fn text_args(c: &FnCall<'_>) -> Vec<Expr> {
    c.args.iter().map(|a| text(a.clone()).expr).collect()
}

pub(super) fn s(v: &Val) -> String {
    v.to_text()
}

fn strlen(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let e = text(c.arg(0)).expr;
    Ok(TExpr::new(
        cast(
            uf::character_length(coalesce(vec![e, lit("")])),
            KustoType::Long.arrow(),
        ),
        KustoType::Long,
    ))
}

fn tolower(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(
        sf::lower(text(c.arg(0)).expr),
        KustoType::String,
    ))
}

fn toupper(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(
        sf::upper(text(c.arg(0)).expr),
        KustoType::String,
    ))
}

fn strcat(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(TExpr::new(sf::concat(text_args(c)), KustoType::String))
}

fn strcat_delim(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 65)?;
    let args: Vec<Expr> = text_args(c)
        .into_iter()
        .map(|e| coalesce(vec![e, lit("")]))
        .collect();
    let (d, rest) = args
        .split_first()
        .ok_or_else(|| c.err("missing delimiter"))?;
    Ok(TExpr::new(
        sf::concat_ws(d.clone(), rest.to_vec()),
        KustoType::String,
    ))
}

fn chars_slice(s: &str, start: i64, len: Option<i64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = if start < 0 {
        (n + start).max(0)
    } else {
        start.min(n)
    };
    let end = match len {
        Some(l) if l < 0 => start,
        Some(l) => (start + l).min(n),
        None => n,
    };
    chars[start as usize..end.max(start) as usize]
        .iter()
        .collect()
}

fn substring(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        let Some(start) = at(v, 1).as_i64() else {
            return Val::Null;
        };
        let len = if v.len() > 2 { at(v, 2).as_i64() } else { None };
        Val::Str(chars_slice(&s(a0(v)), start, len))
    }))
}

fn split(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        let text = s(a0(v));
        let delim = s(at(v, 1));
        let parts: Vec<Value> = if delim.is_empty() {
            vec![Value::String(text)]
        } else {
            text.split(delim.as_str())
                .map(|p| Value::String(p.into()))
                .collect()
        };
        if v.len() > 2 {
            let Some(i) = at(v, 2).as_i64() else {
                return Val::Null;
            };
            return match usize::try_from(i).ok().and_then(|i| parts.get(i)) {
                Some(p) => Val::Dynamic(Value::Array(vec![p.clone()])),
                None => Val::Dynamic(Value::Array(vec![])),
            };
        }
        Val::Dynamic(Value::Array(parts))
    }))
}

fn replace_string(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    let a = text_args(c);
    Ok(TExpr::new(
        sf::replace(a[0].clone(), a[1].clone(), a[2].clone()),
        KustoType::String,
    ))
}

thread_local! {
    static REGEXES: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// A compiled regex (cached per thread), or `None` when the pattern is invalid.
pub(crate) fn with_regex<R>(pattern: &str, f: impl FnOnce(&Regex) -> R) -> Option<R> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        let re = cache
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref().map(f)
    })
}

/// Kusto's rewrite syntax (`\1`) to the regex crate's (`${1}`).
fn rewrite(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

fn regex_replace_row(v: &[Val]) -> Val {
    let (t, re, rw) = (s(a0(v)), s(at(v, 1)), rewrite(&s(at(v, 2))));
    with_regex(&re, |r| {
        Val::Str(r.replace_all(&t, rw.as_str()).into_owned())
    })
    .unwrap_or(Val::Null)
}

fn replace_regex(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    let args = vec![text(c.arg(0)), text(c.arg(1)), text(c.arg(2))];
    Ok(c.row_with(args, KustoType::String, regex_replace_row))
}

fn replace(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    // replace(regex, rewrite, text)
    c.arity(3, 3)?;
    let args = vec![text(c.arg(2)), text(c.arg(0)), text(c.arg(1))];
    Ok(c.row_with(args, KustoType::String, regex_replace_row))
}

fn trim_with(v: &[Val], start: bool, end: bool) -> Val {
    let re = s(a0(v));
    let mut t = s(at(v, 1));
    let anchored_start = format!("^(?:{re})+");
    let anchored_end = format!("(?:{re})+$");
    if start {
        match with_regex(&anchored_start, |r| r.replace(&t, "").into_owned()) {
            Some(x) => t = x,
            None => return Val::Null,
        }
    }
    if end {
        match with_regex(&anchored_end, |r| r.replace(&t, "").into_owned()) {
            Some(x) => t = x,
            None => return Val::Null,
        }
    }
    Val::Str(t)
}

fn trim(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::String, |v| trim_with(v, true, true)))
}

fn trim_start(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::String, |v| trim_with(v, true, false)))
}

fn trim_end(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::String, |v| trim_with(v, false, true)))
}

fn indexof(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 5)?;
    c.args[0] = text(c.arg(0));
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::Long, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        let hay: Vec<char> = s(a0(v)).chars().collect();
        let needle: Vec<char> = s(at(v, 1)).chars().collect();
        let n = hay.len() as i64;
        let start = if v.len() > 2 {
            at(v, 2).as_i64().unwrap_or(0)
        } else {
            0
        };
        let start = if start < 0 { (n + start).max(0) } else { start };
        if start > n {
            return Val::Long(-1);
        }
        let len = if v.len() > 3 {
            at(v, 3).as_i64().unwrap_or(-1)
        } else {
            -1
        };
        let occurrence = if v.len() > 4 {
            at(v, 4).as_i64().unwrap_or(1)
        } else {
            1
        };
        if needle.is_empty() {
            return Val::Long(start);
        }
        // Each further occurrence is looked for from just after the previous one, in a
        // range of the same length.
        let mut from = start as usize;
        for seen in 1..=occurrence.max(1) {
            let end = if len < 0 {
                n as usize
            } else {
                (from as i64 + len).min(n) as usize
            };
            let found = (from..end)
                .find(|&i| i + needle.len() <= end && hay[i..i + needle.len()] == needle[..]);
            match found {
                Some(i) if seen == occurrence.max(1) => return Val::Long(i as i64),
                Some(i) => from = i + 1,
                None => return Val::Long(-1),
            }
        }
        Val::Long(-1)
    }))
}

fn indexof_regex(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 5)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Long, |v| {
        let hay = s(a0(v));
        let re = s(at(v, 1));
        let start = if v.len() > 2 {
            at(v, 2).as_i64().unwrap_or(0)
        } else {
            0
        };
        // A negative start is invalid: null.
        if start < 0 {
            return Val::Null;
        }
        let len = if v.len() > 3 {
            at(v, 3).as_i64().unwrap_or(-1)
        } else {
            -1
        };
        let occurrence = if v.len() > 4 {
            at(v, 4).as_i64().unwrap_or(1)
        } else {
            1
        };
        let chars = hay.chars().count() as i64;
        let end = if len < 0 {
            chars
        } else {
            (start + len).min(chars)
        };
        let byte_at = |i: i64| {
            hay.char_indices()
                .nth(i.max(0) as usize)
                .map_or(hay.len(), |(b, _)| b)
        };
        let (byte_start, byte_end) = (byte_at(start), byte_at(end));
        if byte_start > byte_end {
            return Val::Long(-1);
        }
        with_regex(&re, |r| {
            r.find_iter(&hay[byte_start..byte_end])
                .nth((occurrence.max(1) - 1) as usize)
                .map_or(Val::Long(-1), |m| {
                    Val::Long(hay[..byte_start + m.start()].chars().count() as i64)
                })
        })
        .unwrap_or(Val::Null)
    }))
}

fn reverse(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(
        uf::reverse(text(c.arg(0)).expr),
        KustoType::String,
    ))
}

fn extract(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 4)?;
    let ty = if c.args.len() == 4 {
        match c.args[3].literal_str() {
            Some(t) => t
                .parse()
                .map_err(|_| c.err(format!("unknown type '{t}'")))?,
            None => c.args[3].ty,
        }
    } else {
        KustoType::String
    };
    let args = vec![text(c.arg(0)), c.arg(1), text(c.arg(2))];
    let t = c.row_with(args, KustoType::String, |v| {
        let (re, text) = (s(a0(v)), s(at(v, 2)));
        let Some(group) = at(v, 1).as_i64() else {
            return Val::Null;
        };
        with_regex(&re, |r| {
            r.captures(&text)
                .and_then(|cap| cap.get(group.max(0) as usize))
                .map_or(Val::Null, |m| Val::Str(m.as_str().to_owned()))
        })
        .flatten_null()
    });
    Ok(crate::plan::convert_pub(t, ty))
}

trait FlattenNull {
    fn flatten_null(self) -> Val;
}

impl FlattenNull for Option<Val> {
    fn flatten_null(self) -> Val {
        self.unwrap_or(Val::Null)
    }
}

fn extract_all(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    // extract_all(regex, [groups,] text)
    let (re, groups, textarg) = if c.args.len() == 3 {
        (c.arg(0), c.arg(1), c.arg(2))
    } else {
        (c.arg(0), TExpr::null(KustoType::Dynamic), c.arg(1))
    };
    let args = vec![text(re), groups, text(textarg)];
    Ok(c.row_with(args, KustoType::Dynamic, |v| {
        let (re, text) = (s(a0(v)), s(at(v, 2)));
        let wanted: Option<Vec<usize>> = match at(v, 1) {
            Val::Dynamic(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_u64().map(|u| u as usize))
                    .collect(),
            ),
            _ => None,
        };
        with_regex(&re, |r| {
            let n_groups = r.captures_len() - 1;
            let mut out = Vec::new();
            for cap in r.captures_iter(&text) {
                let pick = |i: usize| {
                    cap.get(i)
                        .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()))
                };
                match (&wanted, n_groups) {
                    (Some(ws), _) => out.push(Value::Array(ws.iter().map(|i| pick(*i)).collect())),
                    (None, 0) => out.push(pick(0)),
                    (None, 1) => out.push(pick(1)),
                    (None, n) => out.push(Value::Array((1..=n).map(pick).collect())),
                }
            }
            if out.is_empty() {
                Val::Null
            } else {
                Val::Dynamic(Value::Array(out))
            }
        })
        .flatten_null()
    }))
}

fn countof(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    c.args[0] = text(c.arg(0));
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::Long, |v| {
        let (t, needle) = (s(a0(v)), s(at(v, 1)));
        let regex = v.len() > 2 && s(at(v, 2)) == "regex";
        if needle.is_empty() {
            return Val::Long(0);
        }
        if regex {
            return with_regex(&needle, |r| Val::Long(r.find_iter(&t).count() as i64))
                .flatten_null();
        }
        // Overlapping occurrences, as Kusto counts them.
        let (h, n): (Vec<char>, Vec<char>) = (t.chars().collect(), needle.chars().collect());
        let count = (0..h.len().saturating_sub(n.len()) + 1)
            .filter(|i| h.len() >= n.len() && h[*i..*i + n.len()] == n[..])
            .count();
        Val::Long(count as i64)
    }))
}

fn strrep(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        let Some(n) = at(v, 1).as_i64() else {
            return Val::Null;
        };
        let delim = if v.len() > 2 {
            s(at(v, 2))
        } else {
            String::new()
        };
        let item = s(a0(v));
        Val::Str(vec![item; n.clamp(0, 1024) as usize].join(&delim))
    }))
}

fn strcmp(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[0] = text(c.arg(0));
    c.args[1] = text(c.arg(1));
    Ok(c.row(KustoType::Int, |v| {
        Val::Int(match s(a0(v)).cmp(&s(at(v, 1))) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })
    }))
}

fn string_size(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Long, |v| Val::Long(s(a0(v)).len() as i64)))
}

fn translate(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    // translate(searchList, replacementList, text)
    c.arity(3, 3)?;
    let args = vec![text(c.arg(0)), text(c.arg(1)), text(c.arg(2))];
    Ok(c.row_with(args, KustoType::String, |v| {
        let from: Vec<char> = s(a0(v)).chars().collect();
        let to: Vec<char> = s(at(v, 1)).chars().collect();
        let out = s(at(v, 2))
            .chars()
            .filter_map(|ch| match from.iter().position(|f| *f == ch) {
                Some(i) if to.is_empty() => {
                    let _ = i;
                    None
                }
                Some(i) => Some(*to.get(i).or(to.last()).unwrap_or(&ch)),
                None => Some(ch),
            })
            .collect();
        Val::Str(out)
    }))
}

fn regex_quote(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| Val::Str(regex::escape(&s(a0(v))))))
}

fn has_any_index(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Long, |v| {
        let t = s(a0(v));
        let Value::Array(items) = at(v, 1).as_dynamic() else {
            return Val::Long(-1);
        };
        for (i, it) in items.iter().enumerate() {
            let needle = match it {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            if crate::udf::strings::TermMatcher::new(
                crate::udf::strings::TermOp::Has,
                &needle,
                false,
            )
            .matches(&t)
            {
                return Val::Long(i as i64);
            }
        }
        Val::Long(-1)
    }))
}
