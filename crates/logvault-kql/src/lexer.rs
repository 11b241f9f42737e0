//! The lexer: KQL text to tokens with their byte spans.
//!
//! KQL's lexical quirks handled here:
//! - operator names with hyphens (`project-away`, `mv-expand`, `!contains`, ...) are one token;
//! - typed literals whose content is not made of tokens (`datetime(2017-01-02 10:00)`,
//!   `timespan(1.02:03:04)`, `guid(...)`, `dynamic({...})`, `long(null)`) are one token holding
//!   the raw text between the parentheses;
//! - timespan literals (`1d`, `1.5h`, `100ms`, `10microseconds`) are numbers with a unit;
//! - quoted identifiers `['a b']` and `["a b"]`;
//! - strings: `"..."` and `'...'` with escapes, verbatim `@"..."`, multi-line ```` ``` ````, and
//!   obfuscated `h"..."` (logged as `***` by Kusto; here the same as a plain string).

use crate::error::{KqlError, Span};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (`where`, `project-away`, `$left`, `!contains`).
    Ident(String),
    /// A quoted identifier (`['a b']`): never a keyword.
    QuotedIdent(String),
    /// An integer literal.
    Long(i64),
    /// A real literal (`1.5`, `1e3`).
    Real(f64),
    /// A timespan literal, in 100 ns ticks.
    Timespan(i64),
    /// A string literal (unescaped).
    Str(String),
    /// A typed literal: the type name (lower case) and the raw text between its parentheses.
    Typed(String, String),
    /// Punctuation or an operator symbol (`|`, `==`, `=~`, `..`, `=>`, ...).
    Sym(&'static str),
    /// The end of the text.
    Eof,
}

impl Tok {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::QuotedIdent(s) => format!("['{s}']"),
            Tok::Long(v) => v.to_string(),
            Tok::Real(v) => v.to_string(),
            Tok::Timespan(_) => "a timespan literal".into(),
            Tok::Str(_) => "a string literal".into(),
            Tok::Typed(t, _) => format!("{t}(...)"),
            Tok::Sym(s) => format!("'{s}'"),
            Tok::Eof => "the end of the query".into(),
        }
    }
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its bytes in the text.
    pub span: Span,
    /// Whether whitespace or a comment came right before it.
    pub space_before: bool,
}

/// Words that, followed by `-word`, form one keyword.
const HYPHENATED: &[&str] = &[
    "project-away",
    "project-keep",
    "project-rename",
    "project-reorder",
    "project-smart",
    "mv-expand",
    "mv-apply",
    "make-series",
    "make-graph",
    "top-nested",
    "top-hitters",
    "parse-kv",
    "parse-where",
    "graph-match",
    "graph-merge",
    "graph-to-table",
    "graph-shortest-paths",
    "graph-mark-components",
    "sample-distinct",
];

/// Negated string operators written with a leading `!`.
const BANG_WORDS: &[&str] = &[
    "contains",
    "contains_cs",
    "has",
    "has_cs",
    "hasprefix",
    "hasprefix_cs",
    "hassuffix",
    "hassuffix_cs",
    "startswith",
    "startswith_cs",
    "endswith",
    "endswith_cs",
    "in",
    "between",
    "has_any",
    "has_all",
];

/// Type names that take a literal in parentheses.
const TYPED_LITERALS: &[&str] = &[
    "datetime", "date", "timespan", "time", "guid", "uuid", "uniqueid", "dynamic", "long", "int",
    "int64", "int32", "real", "double", "bool", "boolean", "decimal",
];

/// Splits `text` into tokens, ending with [`Tok::Eof`].
///
/// # Errors
/// [`KqlError::Syntax`] for an unterminated string or literal, or a character KQL does not use.
pub fn tokenize(text: &str) -> Result<Vec<Token>, KqlError> {
    let mut lx = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    out: Vec<Token>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.text.get(at..).and_then(|s| s.chars().next())
    }

    fn err(&self, start: usize, message: impl Into<String>) -> KqlError {
        KqlError::syntax(message, Span::new(start, (start + 1).min(self.text.len())))
    }

    fn push(&mut self, tok: Tok, start: usize, space_before: bool) {
        self.out.push(Token {
            tok,
            span: Span::new(start, self.pos),
            space_before,
        });
    }

    /// Skips whitespace and comments; says whether anything was skipped.
    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek_char() {
                Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                Some('/') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    while let Some(c) = self.peek_char() {
                        if c == '\n' {
                            break;
                        }
                        self.pos += c.len_utf8();
                    }
                }
                _ => break,
            }
        }
        self.pos > start
    }

    fn run(&mut self) -> Result<(), KqlError> {
        loop {
            let space = self.skip_space();
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                self.push(Tok::Eof, start, space);
                return Ok(());
            };
            if c.is_ascii_digit()
                || (c == '.'
                    && self
                        .char_at(self.pos + 1)
                        .is_some_and(|d| d.is_ascii_digit())
                    && !matches!(self.out.last().map(|t| &t.tok), Some(Tok::Sym(".."))))
            {
                let tok = self.number(start)?;
                self.push(tok, start, space);
            } else if c == '"' || c == '\'' {
                let s = self.string(start, c)?;
                self.push(Tok::Str(s), start, space);
            } else if c == '`' && self.text[self.pos..].starts_with("```") {
                self.pos += 3;
                let Some(end) = self.text[self.pos..].find("```") else {
                    return Err(self.err(start, "unterminated ``` string"));
                };
                let s = self.text[self.pos..self.pos + end].to_owned();
                self.pos += end + 3;
                self.push(Tok::Str(s), start, space);
            } else if (c == '@' || c == 'h' || c == 'H')
                && matches!(self.char_at(self.pos + 1), Some('"' | '\''))
            {
                let quote = self.char_at(self.pos + 1).unwrap_or('"');
                self.pos += 1;
                let s = if c == '@' {
                    self.verbatim(start, quote)?
                } else {
                    self.string(start, quote)?
                };
                self.push(Tok::Str(s), start, space);
            } else if (c == 'h' || c == 'H')
                && self.text[self.pos + 1..].starts_with('@')
                && matches!(self.char_at(self.pos + 2), Some('"' | '\''))
            {
                let quote = self.char_at(self.pos + 2).unwrap_or('"');
                self.pos += 2;
                let s = self.verbatim(start, quote)?;
                self.push(Tok::Str(s), start, space);
            } else if c == '[' && matches!(self.next_non_space(self.pos + 1), Some('"' | '\'')) {
                // ['quoted identifier'] (or the start of a list of strings: only when the
                // string is followed by `]`).
                if let Some(tok) = self.quoted_ident()? {
                    self.push(tok, start, space);
                } else {
                    self.pos = start + 1;
                    self.push(Tok::Sym("["), start, space);
                }
            } else if is_ident_start(c) {
                let tok = self.word(start)?;
                self.push(tok, start, space);
            } else if c == '!'
                && self
                    .char_at(self.pos + 1)
                    .is_some_and(|d| d.is_ascii_alphabetic())
            {
                // !contains, !has, !in~, ...
                let word_start = self.pos + 1;
                let mut end = word_start;
                while let Some(d) = self.char_at(end) {
                    if is_ident_char(d) {
                        end += d.len_utf8();
                    } else {
                        break;
                    }
                }
                let word = &self.text[word_start..end];
                if BANG_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    self.pos = end;
                    let mut name = format!("!{}", word.to_ascii_lowercase());
                    if name == "!in" && self.peek_char() == Some('~') {
                        self.pos += 1;
                        name.push('~');
                    }
                    self.push(Tok::Ident(name), start, space);
                } else {
                    self.pos += 1;
                    self.push(Tok::Sym("!"), start, space);
                }
            } else {
                let sym = self.symbol(start)?;
                self.push(Tok::Sym(sym), start, space);
            }
        }
    }

    fn next_non_space(&self, mut at: usize) -> Option<char> {
        while let Some(c) = self.char_at(at) {
            if c.is_whitespace() {
                at += c.len_utf8();
            } else {
                return Some(c);
            }
        }
        None
    }

    fn quoted_ident(&mut self) -> Result<Option<Tok>, KqlError> {
        let save = self.pos;
        self.pos += 1;
        self.skip_space();
        let start = self.pos;
        let Some(q) = self.peek_char() else {
            return Ok(None);
        };
        let s = self.string(start, q)?;
        self.skip_space();
        if self.peek_char() == Some(']') {
            self.pos += 1;
            Ok(Some(Tok::QuotedIdent(s)))
        } else {
            self.pos = save;
            Ok(None)
        }
    }

    fn symbol(&mut self, start: usize) -> Result<&'static str, KqlError> {
        const SYMS: &[&str] = &[
            "-->", "<--", "!~", "=~", "==", "!=", "<>", "<=", ">=", "=>", "..", "--", "|", "(",
            ")", "[", "]", "{", "}", ",", ";", ":", ".", "=", "<", ">", "+", "-", "*", "/", "%",
            "~", "!", "?", "@", "#",
        ];
        let rest = &self.text[self.pos..];
        for s in SYMS {
            if rest.starts_with(s) {
                // `--` is graph syntax only; `x--1` is x - -1.
                if (*s == "--" || *s == "-->" || *s == "<--")
                    && !rest.starts_with("-->")
                    && !rest.starts_with("<--")
                {
                    continue;
                }
                self.pos += s.len();
                return Ok(s);
            }
        }
        let c = self.peek_char().unwrap_or('?');
        Err(self.err(start, format!("unexpected character '{c}'")))
    }

    fn string(&mut self, start: usize, quote: char) -> Result<String, KqlError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(self.err(start, "unterminated string literal"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                return Ok(out);
            }
            if c == '\n' {
                return Err(self.err(start, "unterminated string literal (a line ends inside it)"));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek_char() else {
                return Err(self.err(start, "unterminated string literal"));
            };
            self.pos += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'u' => {
                    let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                    let code = u32::from_str_radix(hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.err(self.pos, "invalid \\u escape"))?;
                    self.pos += 4;
                    out.push(code);
                }
                other => out.push(other),
            }
        }
    }

    fn verbatim(&mut self, start: usize, quote: char) -> Result<String, KqlError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(self.err(start, "unterminated verbatim string literal"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                if self.peek_char() == Some(quote) {
                    self.pos += 1;
                    out.push(quote);
                    continue;
                }
                return Ok(out);
            }
            out.push(c);
        }
    }

    fn number(&mut self, start: usize) -> Result<Tok, KqlError> {
        let bytes = self.bytes;
        let mut end = self.pos;
        if bytes[end..].starts_with(b"0x") || bytes[end..].starts_with(b"0X") {
            end += 2;
            while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
                end += 1;
            }
            let digits = &self.text[self.pos + 2..end];
            self.pos = end;
            return u64::from_str_radix(digits, 16)
                .map(|v| Tok::Long(v as i64))
                .map_err(|_| self.err(start, "invalid hexadecimal literal"));
        }
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let mut is_real = false;
        // A fraction, but not the `..` of a range.
        if end < bytes.len() && bytes[end] == b'.' && bytes.get(end + 1) != Some(&b'.') {
            is_real = true;
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        if end < bytes.len()
            && (bytes[end] == b'e' || bytes[end] == b'E')
            && (bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
                || (matches!(bytes.get(end + 1), Some(b'+' | b'-'))
                    && bytes.get(end + 2).is_some_and(u8::is_ascii_digit)))
        {
            is_real = true;
            end += 2;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        let number = &self.text[self.pos..end];
        // A unit right after the digits makes a timespan.
        let mut unit_end = end;
        while let Some(c) = self.char_at(unit_end) {
            if c.is_ascii_alphabetic() {
                unit_end += 1;
            } else {
                break;
            }
        }
        let unit = &self.text[end..unit_end];
        if !unit.is_empty() {
            let value: f64 = number
                .parse()
                .map_err(|_| self.err(start, format!("invalid number '{number}'")))?;
            let Some(ticks) = unit_ticks(unit) else {
                return Err(self.err(
                    start,
                    format!("invalid literal '{number}{unit}': unknown timespan unit '{unit}'"),
                ));
            };
            self.pos = unit_end;
            return Ok(Tok::Timespan((value * ticks as f64).round() as i64));
        }
        self.pos = end;
        if is_real {
            number
                .parse()
                .map(Tok::Real)
                .map_err(|_| self.err(start, format!("invalid number '{number}'")))
        } else {
            match number.parse::<i64>() {
                Ok(v) => Ok(Tok::Long(v)),
                Err(_) => number
                    .parse()
                    .map(Tok::Real)
                    .map_err(|_| self.err(start, format!("invalid number '{number}'"))),
            }
        }
    }

    fn word(&mut self, start: usize) -> Result<Tok, KqlError> {
        let mut end = self.pos;
        let first = self.peek_char().unwrap_or('_');
        end += first.len_utf8();
        while let Some(c) = self.char_at(end) {
            if is_ident_char(c) {
                end += c.len_utf8();
            } else {
                break;
            }
        }
        let mut word = self.text[self.pos..end].to_owned();
        // project-away and friends.
        if self.char_at(end) == Some('-') {
            let mut e2 = end + 1;
            while let Some(c) = self.char_at(e2) {
                if is_ident_char(c) {
                    e2 += c.len_utf8();
                } else {
                    break;
                }
            }
            let joined = &self.text[self.pos..e2];
            if HYPHENATED.iter().any(|h| h.eq_ignore_ascii_case(joined)) {
                word = joined.to_owned();
                end = e2;
            }
        }
        self.pos = end;
        // Typed literal: `datetime(...)` and friends.
        let lower = word.to_ascii_lowercase();
        if TYPED_LITERALS.contains(&lower.as_str()) && word == lower {
            let after = self.skip_space_at(self.pos);
            if self.char_at(after) == Some('(') {
                let (raw, close) = self.balanced(after, start)?;
                // `string(...)` and `int(...)` as function calls over expressions are not KQL
                // literals when they hold something other than a literal; keep the raw text.
                self.pos = close + 1;
                return Ok(Tok::Typed(lower, raw));
            }
        }
        Ok(Tok::Ident(word))
    }

    fn skip_space_at(&self, mut at: usize) -> usize {
        while let Some(c) = self.char_at(at) {
            if c.is_whitespace() {
                at += c.len_utf8();
            } else {
                break;
            }
        }
        at
    }

    /// The raw text between the parenthesis at `open` and its match, and the match's offset.
    fn balanced(&self, open: usize, start: usize) -> Result<(String, usize), KqlError> {
        let mut depth = 0usize;
        let mut at = open;
        let mut quote: Option<char> = None;
        while let Some(c) = self.char_at(at) {
            if let Some(q) = quote {
                if c == '\\' {
                    at += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '"' | '\'' => quote = Some(c),
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok((self.text[open + 1..at].to_owned(), at));
                        }
                    }
                    _ => {}
                }
            }
            at += c.len_utf8();
        }
        Err(self.err(start, "unterminated literal: a '(' has no matching ')'"))
    }
}

/// Ticks (100 ns) in one `unit` of a timespan literal.
pub fn unit_ticks(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "d" | "day" | "days" => 864_000_000_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 36_000_000_000,
        "m" | "min" | "minute" | "minutes" => 600_000_000,
        "s" | "sec" | "second" | "seconds" => 10_000_000,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 10_000,
        "microsecond" | "microseconds" | "micros" | "micro" => 10,
        "tick" | "ticks" => 1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_words() {
        assert_eq!(
            toks("T | project-away a | where x !contains 'b' and y =~ \"c\""),
            vec![
                Tok::Ident("T".into()),
                Tok::Sym("|"),
                Tok::Ident("project-away".into()),
                Tok::Ident("a".into()),
                Tok::Sym("|"),
                Tok::Ident("where".into()),
                Tok::Ident("x".into()),
                Tok::Ident("!contains".into()),
                Tok::Str("b".into()),
                Tok::Ident("and".into()),
                Tok::Ident("y".into()),
                Tok::Sym("=~"),
                Tok::Str("c".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks("1d 1.5h 10ms 3 2.5 1e3 datetime(2017-01-02 10:00) ['a b'] @'c:\\x' 0x10"),
            vec![
                Tok::Timespan(864_000_000_000),
                Tok::Timespan(54_000_000_000),
                Tok::Timespan(100_000),
                Tok::Long(3),
                Tok::Real(2.5),
                Tok::Real(1000.0),
                Tok::Typed("datetime".into(), "2017-01-02 10:00".into()),
                Tok::QuotedIdent("a b".into()),
                Tok::Str("c:\\x".into()),
                Tok::Long(16),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn ranges_and_minus() {
        assert_eq!(
            toks("x between (1 .. 10) a-1"),
            vec![
                Tok::Ident("x".into()),
                Tok::Ident("between".into()),
                Tok::Sym("("),
                Tok::Long(1),
                Tok::Sym(".."),
                Tok::Long(10),
                Tok::Sym(")"),
                Tok::Ident("a".into()),
                Tok::Sym("-"),
                Tok::Long(1),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks("1..2")[..3],
            [Tok::Long(1), Tok::Sym(".."), Tok::Long(2)]
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = tokenize("print 'abc").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        assert!(tokenize("print a ^ b").is_err());
    }
}
