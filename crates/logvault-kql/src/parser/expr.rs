//! Scalar expressions, by precedence: `or`, `and`, comparisons and string operators,
//! `+ -`, `* / %`, unary minus, then member access, indexing and calls.

use super::Parser;
use crate::ast::{Arg, Assign, BinOp, Expr, ExprKind, Ident, Literal, StrOp, StrOpKind, UnaryOp};
use crate::error::{KqlError, Span};
use crate::lexer::Tok;
use crate::literal::{parse_datetime, parse_dynamic, parse_timespan};
use crate::types::KustoType;

fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
    let span = l.span.to(r.span);
    Expr {
        kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
        span,
    }
}

/// `a op b op c ...` as a balanced tree (and/or are associative), so that long chains do not
/// make deep trees.
fn balanced(op: BinOp, mut items: Vec<Expr>) -> Expr {
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len() / 2 + 1);
        let mut it = items.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(bin(op, a, b)),
                None => next.push(a),
            }
        }
        items = next;
    }
    items.pop().unwrap_or(Expr {
        kind: ExprKind::Literal(Literal::Bool(true)),
        span: Span::default(),
    })
}

/// The string operator a word names, if any.
fn str_op(word: &str) -> Option<StrOp> {
    let (negated, w) = match word.strip_prefix('!') {
        Some(w) => (true, w),
        None => (false, word),
    };
    let (cs, w) = match w.strip_suffix("_cs") {
        Some(w) => (true, w),
        None => (false, w),
    };
    let kind = match w {
        "has" => StrOpKind::Has,
        "hasprefix" => StrOpKind::HasPrefix,
        "hassuffix" => StrOpKind::HasSuffix,
        "contains" => StrOpKind::Contains,
        "startswith" => StrOpKind::StartsWith,
        "endswith" => StrOpKind::EndsWith,
        "has_any" if !cs => StrOpKind::HasAny,
        "has_all" if !cs => StrOpKind::HasAll,
        _ => return None,
    };
    Some(StrOp { kind, cs, negated })
}

impl Parser {
    /// Any scalar expression.
    pub(crate) fn expr(&mut self) -> Result<Expr, KqlError> {
        self.enter()?;
        let r = self.or();
        self.leave();
        r
    }

    fn or(&mut self) -> Result<Expr, KqlError> {
        let mut items = vec![self.and()?];
        while self.eat_word("or") {
            items.push(self.and()?);
        }
        Ok(balanced(BinOp::Or, items))
    }

    fn and(&mut self) -> Result<Expr, KqlError> {
        let mut items = vec![self.cmp()?];
        while self.eat_word("and") {
            items.push(self.cmp()?);
        }
        Ok(balanced(BinOp::And, items))
    }

    /// Counts one more operand of a left-deep chain (`a + b + c ...`) against the depth limit.
    fn chain(&mut self, n: &mut usize) -> Result<(), KqlError> {
        *n += 1;
        if self.depth + *n > super::MAX_DEPTH {
            return Err(KqlError::syntax(
                "the expression is too long or nests too deeply",
                self.span(),
            ));
        }
        Ok(())
    }

    fn cmp(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.add()?;
        let mut n = 0;
        loop {
            self.chain(&mut n)?;
            let op = match self.tok() {
                Tok::Sym("==") => BinOp::Eq,
                Tok::Sym("!=" | "<>") => BinOp::NotEq,
                Tok::Sym("<") => BinOp::Lt,
                Tok::Sym("<=") => BinOp::LtEq,
                Tok::Sym(">") => BinOp::Gt,
                Tok::Sym(">=") => BinOp::GtEq,
                Tok::Sym("=~") => BinOp::EqCi,
                Tok::Sym("!~") => BinOp::NotEqCi,
                Tok::Ident(w) if w == "in" || w == "!in" || w == "!in~" => {
                    let negated = w.starts_with('!');
                    let mut ci = w.ends_with('~');
                    self.advance();
                    if self.is_sym("~") {
                        self.advance();
                        ci = true;
                    }
                    let (list, end) = self.paren_list()?;
                    let span = l.span.to(end);
                    l = Expr {
                        kind: ExprKind::In {
                            lhs: Box::new(l),
                            list,
                            negated,
                            ci,
                        },
                        span,
                    };
                    continue;
                }
                Tok::Ident(w) if w == "between" || w == "!between" => {
                    let negated = w.starts_with('!');
                    self.advance();
                    self.expect_sym("(")?;
                    let low = self.expr()?;
                    self.expect_sym("..")?;
                    let high = self.expr()?;
                    let end = self.expect_sym(")")?;
                    let span = l.span.to(end);
                    l = Expr {
                        kind: ExprKind::Between {
                            lhs: Box::new(l),
                            low: Box::new(low),
                            high: Box::new(high),
                            negated,
                        },
                        span,
                    };
                    continue;
                }
                Tok::Ident(w) if w == "matches" && self.word_at(1, "regex") => {
                    self.advance();
                    BinOp::Str(StrOp {
                        kind: StrOpKind::MatchesRegex,
                        cs: true,
                        negated: false,
                    })
                }
                Tok::Ident(w) => match str_op(w) {
                    Some(op) => BinOp::Str(op),
                    None => return Ok(l),
                },
                _ => return Ok(l),
            };
            self.advance();
            let r = if matches!(
                op,
                BinOp::Str(StrOp {
                    kind: StrOpKind::HasAny | StrOpKind::HasAll,
                    ..
                })
            ) {
                let start = self.span();
                let (list, end) = self.paren_list()?;
                Expr {
                    kind: ExprKind::Call {
                        name: Ident {
                            name: "pack_array".into(),
                            span: start,
                        },
                        args: list
                            .into_iter()
                            .map(|value| Arg { name: None, value })
                            .collect(),
                    },
                    span: start.to(end),
                }
            } else {
                self.add()?
            };
            l = bin(op, l, r);
        }
    }

    /// `( expr, expr, ... )`, where an item may be a pipeline.
    fn paren_list(&mut self) -> Result<(Vec<Expr>, Span), KqlError> {
        self.expect_sym("(")?;
        let mut items = Vec::new();
        while !self.is_sym(")") {
            items.push(self.pipe()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        let end = self.expect_sym(")")?;
        Ok((items, end))
    }

    fn add(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.mul()?;
        let mut n = 0;
        loop {
            self.chain(&mut n)?;
            let op = match self.tok() {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                _ => return Ok(l),
            };
            self.advance();
            let r = self.mul()?;
            l = bin(op, l, r);
        }
    }

    fn mul(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.unary()?;
        let mut n = 0;
        loop {
            self.chain(&mut n)?;
            let op = match self.tok() {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                Tok::Sym("%") => BinOp::Mod,
                _ => return Ok(l),
            };
            self.advance();
            let r = self.unary()?;
            l = bin(op, l, r);
        }
    }

    fn unary(&mut self) -> Result<Expr, KqlError> {
        let start = self.span();
        let op = match self.tok() {
            Tok::Sym("-") => UnaryOp::Neg,
            Tok::Sym("+") => UnaryOp::Plus,
            _ => return self.postfix(),
        };
        self.advance();
        self.enter()?;
        let inner = self.unary();
        self.leave();
        let inner = inner?;
        // Fold negative literals so that `-9223372036854775808` and `-1d` stay literals.
        if op == UnaryOp::Neg
            && let ExprKind::Literal(lit) = &inner.kind
        {
            let negated = match lit {
                Literal::Long(v) => Some(Literal::Long(v.wrapping_neg())),
                Literal::Real(v) => Some(Literal::Real(-v)),
                Literal::Timespan(v) => Some(Literal::Timespan(-v)),
                _ => None,
            };
            if let Some(lit) = negated {
                return Ok(Expr {
                    kind: ExprKind::Literal(lit),
                    span: start.to(inner.span),
                });
            }
        }
        let span = start.to(inner.span);
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(inner)),
            span,
        })
    }

    fn postfix(&mut self) -> Result<Expr, KqlError> {
        let mut e = self.primary()?;
        let mut n = 0;
        loop {
            self.chain(&mut n)?;
            if self.is_sym(".") && self.sym_at(1, "[") {
                // `d.[key]` is `d[key]`.
                self.advance();
            } else if self.is_sym(".") {
                self.advance();
                let name = self.member_name()?;
                let span = e.span.to(name.span);
                e = Expr {
                    kind: ExprKind::Member(Box::new(e), name),
                    span,
                };
            } else if self.is_sym("[") {
                self.advance();
                let index = self.expr()?;
                let end = self.expect_sym("]")?;
                let span = e.span.to(end);
                e = Expr {
                    kind: ExprKind::Index(Box::new(e), Box::new(index)),
                    span,
                };
            } else if matches!(self.tok(), Tok::QuotedIdent(_)) && !self.token().space_before {
                // d['x'] lexed as a quoted identifier.
                let Tok::QuotedIdent(key) = self.tok().clone() else {
                    return Ok(e);
                };
                let t = self.advance();
                let span = e.span.to(t.span);
                e = Expr {
                    kind: ExprKind::Index(
                        Box::new(e),
                        Box::new(Expr {
                            kind: ExprKind::Literal(Literal::String(key)),
                            span: t.span,
                        }),
                    ),
                    span,
                };
            } else {
                return Ok(e);
            }
        }
    }

    /// A property name after `.`: any word, including keywords and type names.
    fn member_name(&mut self) -> Result<Ident, KqlError> {
        match self.tok().clone() {
            Tok::Ident(name) | Tok::QuotedIdent(name) => {
                let span = self.advance().span;
                Ok(Ident { name, span })
            }
            Tok::Long(v) => {
                let span = self.advance().span;
                Ok(Ident {
                    name: v.to_string(),
                    span,
                })
            }
            _ => Err(self.unexpected("a property name after '.'")),
        }
    }

    fn literal(&self, lit: Literal, span: Span) -> Expr {
        Expr {
            kind: ExprKind::Literal(lit),
            span,
        }
    }

    fn primary(&mut self) -> Result<Expr, KqlError> {
        let start = self.span();
        match self.tok().clone() {
            Tok::Long(v) => {
                self.advance();
                Ok(self.literal(Literal::Long(v), start))
            }
            Tok::Real(v) => {
                self.advance();
                Ok(self.literal(Literal::Real(v), start))
            }
            Tok::Timespan(v) => {
                self.advance();
                Ok(self.literal(Literal::Timespan(v), start))
            }
            Tok::Str(s) => {
                self.advance();
                // Adjacent string literals concatenate.
                let mut s = s;
                let mut span = start;
                while let Tok::Str(more) = self.tok().clone() {
                    s.push_str(&more);
                    span = span.to(self.advance().span);
                }
                Ok(self.literal(Literal::String(s), span))
            }
            Tok::Typed(ty, raw) => {
                self.advance();
                let lit = typed_literal(&ty, &raw).map_err(|m| KqlError::syntax(m, start))?;
                Ok(self.literal(lit, start))
            }
            Tok::Sym("(") => {
                self.advance();
                let inner = self.pipe()?;
                if self.is_sym(",") {
                    // A tuple only appears as the target of an assignment; report clearly.
                    return Err(KqlError::syntax(
                        "unexpected ',' inside parentheses",
                        self.span(),
                    ));
                }
                let end = self.expect_sym(")")?;
                Ok(Expr {
                    kind: inner.kind,
                    span: start.to(end),
                })
            }
            Tok::Sym("*") => {
                self.advance();
                Ok(Expr {
                    kind: ExprKind::Star,
                    span: start,
                })
            }
            Tok::Sym("[") => {
                // A bracketed list of literals as a dynamic array (in `has_any ([...])` etc).
                Err(self.unexpected("an expression"))
            }
            Tok::Ident(w) if w == "true" || w == "false" => {
                self.advance();
                Ok(self.literal(Literal::Bool(w == "true"), start))
            }
            Tok::Ident(w) if (w == "$left" || w == "$right") && self.sym_at(1, ".") => {
                self.advance();
                self.advance();
                let column = self.member_name()?;
                let span = start.to(column.span);
                Ok(Expr {
                    kind: ExprKind::JoinSide {
                        left: w == "$left",
                        column,
                    },
                    span,
                })
            }
            Tok::Ident(w) if w == "typeof" && self.sym_at(1, "(") => {
                self.advance();
                self.advance();
                let t = self.type_name()?;
                let end = self.expect_sym(")")?;
                Ok(Expr {
                    kind: ExprKind::TypeOf(t),
                    span: start.to(end),
                })
            }
            Tok::Ident(_) | Tok::QuotedIdent(_) => {
                let name = self.ident("a name")?;
                if self.is_sym("(") && matches!(self.tokens[self.pos - 1].tok, Tok::Ident(_)) {
                    let (args, end) = self.call_args()?;
                    return Ok(Expr {
                        span: name.span.to(end),
                        kind: ExprKind::Call { name, args },
                    });
                }
                Ok(Expr {
                    kind: ExprKind::Name(name.name),
                    span: name.span,
                })
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// `( arg, name = arg, * )`.
    pub(crate) fn call_args(&mut self) -> Result<(Vec<Arg>, Span), KqlError> {
        self.expect_sym("(")?;
        let mut args = Vec::new();
        while !self.is_sym(")") {
            let name = if self.is_ident() && self.sym_at(1, "=") {
                let n = self.ident("an argument name")?;
                self.advance();
                Some(n)
            } else {
                None
            };
            let value = self.pipe()?;
            args.push(Arg { name, value });
            if !self.eat_sym(",") {
                break;
            }
        }
        let end = self.expect_sym(")")?;
        Ok((args, end))
    }

    /// `name = expr`, `(a, b) = expr` or `expr`, separated by commas.
    pub(crate) fn assignments(&mut self) -> Result<Vec<Assign>, KqlError> {
        let mut out = Vec::new();
        loop {
            out.push(self.assignment()?);
            if !self.eat_sym(",") {
                return Ok(out);
            }
        }
    }

    pub(crate) fn assignment(&mut self) -> Result<Assign, KqlError> {
        if self.is_ident() && self.sym_at(1, "=") {
            let name = self.ident("a column name")?;
            self.advance();
            let expr = self.expr()?;
            return Ok(Assign {
                names: vec![name],
                expr,
            });
        }
        // (a, b) = expr
        if self.is_sym("(") && self.is_tuple_target() {
            self.advance();
            let mut names = Vec::new();
            loop {
                names.push(self.ident("a column name")?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            self.expect_sym("=")?;
            let expr = self.expr()?;
            return Ok(Assign { names, expr });
        }
        Ok(Assign {
            names: Vec::new(),
            expr: self.expr()?,
        })
    }

    fn is_tuple_target(&self) -> bool {
        let mut i = 1;
        loop {
            if !matches!(self.peek_at(i), Tok::Ident(_) | Tok::QuotedIdent(_)) {
                return false;
            }
            i += 1;
            match self.peek_at(i) {
                Tok::Sym(",") => i += 1,
                Tok::Sym(")") => return self.sym_at(i + 1, "="),
                _ => return false,
            }
        }
    }
}

/// The value of a typed literal `ty(raw)`.
pub(crate) fn typed_literal(ty: &str, raw: &str) -> Result<Literal, String> {
    let t = raw.trim();
    let kt: KustoType = ty.parse().map_err(|_| format!("unknown type '{ty}'"))?;
    if t == "null" && kt != KustoType::Dynamic {
        return Ok(Literal::Null(kt));
    }
    let bad = || format!("invalid {kt} literal '{t}'");
    Ok(match kt {
        KustoType::DateTime => Literal::DateTime(
            parse_datetime(t).ok_or_else(|| format!("invalid datetime literal '{t}'"))?,
        ),
        KustoType::Timespan => Literal::Timespan(parse_timespan(t).ok_or_else(bad)?),
        KustoType::Guid => {
            let g = t
                .trim_matches(|c| c == '{' || c == '}')
                .to_ascii_lowercase();
            let hex: String = g.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            Literal::Guid(g)
        }
        KustoType::Dynamic => {
            Literal::Dynamic(parse_dynamic(t).map_err(|e| format!("invalid dynamic literal: {e}"))?)
        }
        KustoType::Long => Literal::Long(parse_int(t).ok_or_else(bad)?),
        KustoType::Int => Literal::Int(
            parse_int(t)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(bad)?,
        ),
        KustoType::Real => Literal::Real(parse_real(t).ok_or_else(bad)?),
        KustoType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Literal::Bool(true),
            "false" | "0" => Literal::Bool(false),
            _ => return Err(bad()),
        },
        KustoType::Decimal => {
            if parse_real(t).is_none() {
                return Err(bad());
            }
            Literal::Decimal(t.to_owned())
        }
        KustoType::String => Literal::String(t.to_owned()),
    })
}

fn parse_int(t: &str) -> Option<i64> {
    let t = t.trim();
    if let Some(h) = t.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

/// A real literal, also `nan`, `+inf`, `-inf`.
pub(crate) fn parse_real(t: &str) -> Option<f64> {
    match t.trim().to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        s => s.strip_prefix('+').unwrap_or(s).parse().ok(),
    }
}
