//! Text encodings and parsers of text: URL percent-encoding, base64, Unicode code points, and
//! `parse_url`, `parse_urlquery`, `parse_path`, `parse_csv`, `parse_command_line`,
//! `parse_version`, `tohex`, `format_bytes`.

use serde_json::Value;

use super::string::{s, text};
use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("url_encode", url_encode),
    ("url_encode_component", url_encode_component),
    ("url_decode", url_decode),
    ("base64_encode_tostring", base64_encode_tostring),
    ("base64_decode_tostring", base64_decode_tostring),
    ("base64_encode_fromarray", base64_encode_fromarray),
    ("base64_decode_toarray", base64_decode_toarray),
    ("base64_encode_fromguid", base64_encode_fromguid),
    ("unicode_codepoints_to_string", unicode_codepoints_to_string),
    (
        "unicode_codepoints_from_string",
        unicode_codepoints_from_string,
    ),
    ("parse_url", parse_url),
    ("parse_urlquery", parse_urlquery),
    ("parse_path", parse_path),
    ("parse_csv", parse_csv),
    ("parse_command_line", parse_command_line),
    ("parse_version", parse_version),
    ("tohex", tohex),
    ("format_bytes", format_bytes),
];

/// Percent-encoding of the UTF-8 bytes of `t` but ASCII letters, digits and `keep`, in
/// lower-case hex as Kusto writes it (`%2f`).
fn percent_encode(t: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// `url_encode`: the form encoding of .NET's `HttpUtility.UrlEncode`, which Kusto's output
/// shows (a space is `+`; `-_.!*()` stay as they are).
fn url_encode(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        Val::Str(percent_encode(&s(a0(v)), "-_.!*() ").replace(' ', "+"))
    }))
}

fn url_encode_component(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        Val::Str(percent_encode(&s(a0(v)), "-_.~"))
    }))
}

/// Percent-decoding (`+` as space when `plus`).
pub(crate) fn percent_decode(t: &str, plus: bool) -> String {
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&t[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if plus && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_decode(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        Val::Str(percent_decode(&s(a0(v)), true))
    }))
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn base64_encode_tostring(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use base64::Engine;
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        Val::Str(b64().encode(s(a0(v)).as_bytes()))
    }))
}

fn base64_decode_tostring(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use base64::Engine;
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::String, |v| {
        b64()
            .decode(s(a0(v)).trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map_or(Val::Null, Val::Str)
    }))
}

fn base64_encode_fromarray(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use base64::Engine;
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| match a0(v).as_dynamic() {
        Value::Array(a) => {
            let bytes: Option<Vec<u8>> = a
                .iter()
                .map(|x| x.as_u64().and_then(|u| u8::try_from(u).ok()))
                .collect();
            bytes.map_or(Val::Null, |b| Val::Str(b64().encode(b)))
        }
        _ => Val::Null,
    }))
}

fn base64_decode_toarray(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use base64::Engine;
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        b64().decode(s(a0(v)).trim()).ok().map_or(Val::Null, |b| {
            Val::Dynamic(Value::Array(b.into_iter().map(Value::from).collect()))
        })
    }))
}

fn base64_encode_fromguid(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use base64::Engine;
    c.arity(1, 1)?;
    Ok(c.row(KustoType::String, |v| {
        let hex: String = s(a0(v)).chars().filter(char::is_ascii_hexdigit).collect();
        if hex.len() != 32 {
            return Val::Null;
        }
        let Ok(b) = hex::decode(&hex) else {
            return Val::Null;
        };
        // .NET's Guid byte order: the first three groups little-endian.
        let mut g = b.clone();
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        Val::Str(b64().encode(g))
    }))
}

fn unicode_codepoints_to_string(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(c.row(KustoType::String, |v| {
        let mut out = String::new();
        for x in v {
            let items = match x {
                Val::Dynamic(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
                other => other.as_i64().into_iter().collect::<Vec<_>>(),
            };
            for i in items {
                match u32::try_from(i).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => return Val::Null,
                }
            }
        }
        Val::Str(out)
    }))
}

fn unicode_codepoints_from_string(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        Val::Dynamic(Value::Array(
            s(a0(v)).chars().map(|ch| Value::from(ch as u32)).collect(),
        ))
    }))
}

fn parse_url(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        let Ok(u) = url::Url::parse(&s(a0(v))) else {
            return Val::Dynamic(Value::Object(serde_json::Map::new()));
        };
        let mut params = serde_json::Map::new();
        for (k, val) in u.query_pairs() {
            params.insert(k.into_owned(), Value::String(val.into_owned()));
        }
        Val::Dynamic(serde_json::json!({
            "Scheme": u.scheme(),
            "Host": u.host_str().unwrap_or(""),
            "Port": u.port().map(|p| p.to_string()).unwrap_or_default(),
            "Path": u.path(),
            "Username": u.username(),
            "Password": u.password().unwrap_or(""),
            "Query Parameters": params,
            "Fragment": u.fragment().unwrap_or(""),
        }))
    }))
}

fn parse_urlquery(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        let t = s(a0(v));
        let q = t.strip_prefix('?').unwrap_or(&t);
        let mut params = serde_json::Map::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(
                percent_decode(k, true),
                Value::String(percent_decode(val, true)),
            );
        }
        Val::Dynamic(serde_json::json!({ "Query Parameters": params }))
    }))
}

fn parse_path(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        let whole = s(a0(v));
        // `scheme://path`: the scheme apart.
        let (scheme, p) = match whole.split_once("://") {
            Some((sc, rest)) if !sc.is_empty() && sc.chars().all(|c| c.is_ascii_alphanumeric()) => {
                (sc.to_owned(), rest.to_owned())
            }
            _ => (String::new(), whole.clone()),
        };
        let sep = if p.contains('\\') { '\\' } else { '/' };
        let (dir, file) = match p.rfind(sep) {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => ("", p.as_str()),
        };
        // `file.txt:stream`: an NTFS alternate data stream.
        let (file, stream) = file.split_once(':').unwrap_or((file, ""));
        let ext = file.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let root = if p.len() > 1 && p.as_bytes().get(1) == Some(&b':') {
            p[..2].to_owned()
        } else {
            String::new()
        };
        Val::Dynamic(serde_json::json!({
            "Scheme": scheme,
            "RootPath": root,
            "DirectoryPath": dir,
            "DirectoryName": dir.rsplit(sep).next().unwrap_or(""),
            "Filename": file,
            "Extension": ext,
            "AlternateDataStreamName": stream,
        }))
    }))
}

fn parse_csv(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        let t = s(a0(v));
        // The first record: a line break inside quotes belongs to the field.
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = t.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\r' | '\n' if !quoted => break,
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(Value::String(std::mem::take(&mut cur))),
                other => cur.push(other),
            }
        }
        fields.push(Value::String(cur));
        Val::Dynamic(Value::Array(fields))
    }))
}

fn parse_command_line(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Dynamic, |v| {
        // Windows rules: whitespace separates, double quotes group, backslashes before quotes.
        let t = s(a0(v));
        let mut args = Vec::new();
        let mut cur = String::new();
        let mut in_arg = false;
        let mut quoted = false;
        let chars: Vec<char> = t.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            if ch == '\\' {
                let mut n = 0;
                while i < chars.len() && chars[i] == '\\' {
                    n += 1;
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    cur.push_str(&"\\".repeat(n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += 1;
                    }
                } else {
                    cur.push_str(&"\\".repeat(n));
                }
                in_arg = true;
                continue;
            }
            if ch == '"' {
                quoted = !quoted;
                in_arg = true;
            } else if ch.is_whitespace() && !quoted {
                if in_arg {
                    args.push(Value::String(std::mem::take(&mut cur)));
                    in_arg = false;
                }
            } else {
                cur.push(ch);
                in_arg = true;
            }
            i += 1;
        }
        if in_arg {
            args.push(Value::String(cur));
        }
        Val::Dynamic(Value::Array(args))
    }))
}

fn parse_version(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    c.args[0] = text(c.arg(0));
    Ok(c.row(KustoType::Decimal, |v| {
        let t = s(a0(v));
        let parts: Vec<&str> = t.trim().split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return Val::Null;
        }
        let mut out = 0f64;
        for i in 0..4 {
            let p = parts.get(i).copied().unwrap_or("0");
            let Ok(n) = p.parse::<u64>() else {
                return Val::Null;
            };
            if n > 99_999_999 {
                return Val::Null;
            }
            out = out * 1e8 + n as f64;
        }
        Val::Decimal(out)
    }))
}

fn tohex(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::String, |v| {
        let Some(x) = a0(v).as_i64() else {
            return Val::Null;
        };
        let h = if x < 0 && matches!(a0(v), Val::Int(_)) {
            format!("{:x}", x as i32)
        } else {
            format!("{x:x}")
        };
        let min = if v.len() > 1 {
            at(v, 1).as_i64().unwrap_or(0).max(0) as usize
        } else {
            0
        };
        Val::Str(format!("{h:0>min$}"))
    }))
}

fn format_bytes(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 3)?;
    Ok(c.row(KustoType::String, |v| {
        let Some(x) = a0(v).as_f64() else {
            return Val::Null;
        };
        let precision = if v.len() > 1 {
            at(v, 1).as_i64().unwrap_or(0).max(0) as usize
        } else {
            0
        };
        let units = ["Bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
        let wanted = if v.len() > 2 { Some(s(at(v, 2))) } else { None };
        let mut i = 0;
        let mut y = x;
        match wanted {
            Some(u) => {
                if let Some(k) = units.iter().position(|n| n.eq_ignore_ascii_case(&u)) {
                    i = k;
                    y = x / 1024f64.powi(k as i32);
                }
            }
            None => {
                while y.abs() >= 1024.0 && i < units.len() - 1 {
                    y /= 1024.0;
                    i += 1;
                }
            }
        }
        Val::Str(format!("{y:.precision$} {}", units[i]))
    }))
}
