//! The row function behind `parse-kv`: key/value pairs of a text, as a property bag of
//! strings (the planner takes each declared key out of it and converts it to its type).
//!
//! Arguments: the text, the pair delimiter, the key/value delimiter, the quote characters, the
//! escape characters, greedy (bool), and a regular expression (non-empty: regex mode, whose
//! first group is the key and second the value).

use serde_json::{Map, Value};

use super::{a0, at};
use crate::udf::value::Val;

/// Splits `text` at `delim` outside quotes (a quote closes with the same character; an escape
/// character inside quotes takes the next character literally).
fn split_outside_quotes<'a>(
    text: &'a str,
    delim: &str,
    quotes: &[char],
    escapes: &[char],
    max: usize,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut i = 0;
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if escapes.contains(&c) {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else if quotes.contains(&c) {
            quote = Some(c);
        } else if !delim.is_empty() && text[i..].starts_with(delim) && out.len() + 1 < max {
            out.push(&text[start..i]);
            i += delim.len();
            start = i;
            continue;
        }
        i += c.len_utf8();
    }
    out.push(&text[start..]);
    out
}

/// A key or value without its surrounding quotes (escapes resolved) and spaces.
fn unquote(s: &str, quotes: &[char], escapes: &[char]) -> String {
    let t = s.trim();
    match (t.chars().next(), t.chars().next_back()) {
        (Some(a), Some(b)) if t.chars().count() >= 2 && a == b && quotes.contains(&a) => {
            let inner = &t[a.len_utf8()..t.len() - b.len_utf8()];
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if escapes.contains(&c) {
                    escaped = true;
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => t.to_owned(),
    }
}

/// The pairs of `text` with explicit delimiters.
pub(crate) fn pairs(
    text: &str,
    pair_delim: &str,
    kv_delim: &str,
    quotes: &[char],
    escapes: &[char],
    greedy: bool,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for seg in split_outside_quotes(text, pair_delim, quotes, escapes, usize::MAX) {
        let kv = split_outside_quotes(seg, kv_delim, quotes, escapes, 2);
        match kv.as_slice() {
            [k, v] => {
                let k = unquote(k, quotes, escapes);
                if !k.is_empty() {
                    out.push((k, unquote(v, quotes, escapes)));
                }
            }
            [lone] if greedy => {
                // Greedy: a segment without a key continues the previous value.
                if let Some(last) = out.last_mut() {
                    last.1.push_str(pair_delim);
                    last.1.push_str(lone.trim_end());
                }
            }
            _ => {}
        }
    }
    out
}

/// `parse-kv`'s row function (see the module's documentation for the arguments).
pub(crate) fn parse_kv_row(v: &[Val]) -> Val {
    if a0(v).is_null() {
        return Val::Null;
    }
    let text = a0(v).to_text();
    let chars = |i: usize| -> Vec<char> { at(v, i).to_text().chars().collect() };
    let regex = at(v, 6).to_text();
    let pairs: Vec<(String, String)> = if regex.is_empty() {
        pairs(
            &text,
            &at(v, 1).to_text(),
            &at(v, 2).to_text(),
            &chars(3),
            &chars(4),
            at(v, 5).as_bool().unwrap_or(false),
        )
    } else {
        let quotes = chars(3);
        let escapes = chars(4);
        super::string::with_regex(&regex, |r| {
            r.captures_iter(&text)
                .filter_map(|c| {
                    let k = c.get(1)?.as_str();
                    let val = c.get(2).map_or("", |m| m.as_str());
                    Some((
                        unquote(k, &quotes, &escapes),
                        unquote(val, &quotes, &escapes),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let mut m = Map::new();
    for (k, val) in pairs {
        // The first occurrence of a key wins.
        m.entry(k).or_insert(Value::String(val));
    }
    Val::Dynamic(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, pd: &str, kd: &str, q: &str, greedy: bool) -> Vec<(String, String)> {
        let q: Vec<char> = q.chars().collect();
        pairs(text, pd, kd, &q, &['\\'], greedy)
    }

    fn owned(x: &[(&str, &str)]) -> Vec<(String, String)> {
        x.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn delimiters_trim_keys_and_values() {
        assert_eq!(
            p(
                "ThreadId:458745723, Machine:Node001, Text: The service is up",
                ",",
                ":",
                "",
                false
            ),
            owned(&[
                ("ThreadId", "458745723"),
                ("Machine", "Node001"),
                ("Text", "The service is up")
            ])
        );
    }

    #[test]
    fn quotes_protect_delimiters() {
        assert_eq!(
            p(
                r#"src=1.2.3.4 failure="connection aborted" "event time"=2021-01-01T10:00:54 q="a \" b""#,
                " ",
                "=",
                "\"",
                false
            ),
            owned(&[
                ("src", "1.2.3.4"),
                ("failure", "connection aborted"),
                ("event time", "2021-01-01T10:00:54"),
                ("q", "a \" b")
            ])
        );
    }

    #[test]
    fn greedy_values_run_to_the_next_key() {
        assert_eq!(
            p(
                "name=John Doe phone=555 5555 city=New York",
                " ",
                "=",
                "",
                true
            ),
            owned(&[
                ("name", "John Doe"),
                ("phone", "555 5555"),
                ("city", "New York")
            ])
        );
        assert_eq!(
            p("name=John Doe phone=555 5555", " ", "=", "", false),
            owned(&[("name", "John"), ("phone", "555")])
        );
    }
}
