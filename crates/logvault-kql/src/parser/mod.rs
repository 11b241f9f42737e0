//! A hand-written recursive-descent parser: tokens to [`crate::ast::Query`].
//!
//! Split by concept: this module holds the cursor, statements (`let`, functions) and the
//! sources a query starts from (`datatable`, `print`, `range`, `union`, ...); `expr` parses
//! scalar expressions; `ops` parses the tabular operators after `|` (`expand` those that
//! expand or build arrays, `scan`, `partition`).

mod expand;
mod expr;
mod ops;
mod partition;
mod scan;

pub(crate) use expr::parse_real;

use crate::ast::{Expr, ExprKind, Ident, Lambda, LetValue, Param, ParamType, Query, Statement};
use crate::error::{KqlError, Span};
use crate::lexer::{Tok, Token, tokenize};
use crate::types::KustoType;

/// Parses a whole query.
///
/// # Errors
/// [`KqlError::Syntax`] with the line, column and a caret.
pub fn parse(text: &str) -> Result<Query, KqlError> {
    parse_inner(text).map_err(|e| e.locate(text))
}

fn parse_inner(text: &str) -> Result<Query, KqlError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let statements = p.statements(&[])?;
    if !p.at_eof() {
        return Err(p.unexpected("';' or the end of the query"));
    }
    if !statements.iter().any(|s| matches!(s, Statement::Expr(_))) {
        let end = text.len();
        return Err(KqlError::syntax(
            "the query has no tabular expression to return (only let statements)",
            Span::new(end.saturating_sub(1), end),
        ));
    }
    Ok(Query { statements })
}

/// How deep expressions may nest before the parser refuses (no stack overflow on bad input).
/// A parenthesized level costs two (its pipeline and its expression) and, in a debug build,
/// about 41 KB of stack; 80 keeps 40 levels well inside a 2 MiB thread (100 left 3 KB).
pub(crate) const MAX_DEPTH: usize = 80;

pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn tok(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn token(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.token().span
    }

    /// The span of the previous token.
    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn advance(&mut self) -> Token {
        let t = self.token().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn at_eof(&self) -> bool {
        matches!(self.tok(), Tok::Eof)
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.tok(), Tok::Sym(x) if *x == s)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.tok(), Tok::Ident(x) if x == w)
    }

    fn word_at(&self, n: usize, w: &str) -> bool {
        matches!(self.peek_at(n), Tok::Ident(x) if x == w)
    }

    fn sym_at(&self, n: usize, s: &str) -> bool {
        matches!(self.peek_at(n), Tok::Sym(x) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, wanted: &str) -> KqlError {
        KqlError::syntax(
            format!("expected {wanted}, found {}", self.tok().describe()),
            self.span(),
        )
    }

    fn expect_sym(&mut self, s: &str) -> Result<Span, KqlError> {
        if self.is_sym(s) {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected(&format!("'{s}'")))
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<Span, KqlError> {
        if self.is_word(w) {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected(&format!("'{w}'")))
        }
    }

    /// An identifier (plain or quoted).
    fn ident(&mut self, what: &str) -> Result<Ident, KqlError> {
        match self.tok().clone() {
            Tok::Ident(name) | Tok::QuotedIdent(name) => {
                let span = self.advance().span;
                Ok(Ident { name, span })
            }
            // Type names are words too (`datatable(date:datetime)` uses `date` as a column).
            Tok::Typed(..) => Err(self.unexpected(what)),
            _ => Err(self.unexpected(what)),
        }
    }

    fn is_ident(&self) -> bool {
        matches!(self.tok(), Tok::Ident(_) | Tok::QuotedIdent(_))
    }

    fn enter(&mut self) -> Result<(), KqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(KqlError::syntax("the query nests too deeply", self.span()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A type name (`long`, `string`, `dynamic`, ...).
    fn type_name(&mut self) -> Result<KustoType, KqlError> {
        let span = self.span();
        let name = match self.tok().clone() {
            Tok::Ident(n) => n,
            _ => return Err(self.unexpected("a type name")),
        };
        self.advance();
        name.parse().map_err(|_| {
            KqlError::syntax(
                format!(
                    "unknown type '{name}'{}",
                    crate::error::did_you_mean(&name, KustoType::ALL.iter().map(|t| t.name()))
                ),
                span,
            )
        })
    }

    /// Statements separated by `;`, until the end or one of `stop` symbols.
    fn statements(&mut self, stop: &[&str]) -> Result<Vec<Statement>, KqlError> {
        let mut out = Vec::new();
        loop {
            while self.eat_sym(";") {}
            if self.at_eof() || stop.iter().any(|s| self.is_sym(s)) {
                return Ok(out);
            }
            out.push(self.statement()?);
            if !self.eat_sym(";") {
                return Ok(out);
            }
        }
    }

    fn statement(&mut self) -> Result<Statement, KqlError> {
        let start = self.span();
        if self.is_word("let") {
            self.advance();
            let name = self.ident("a name after 'let'")?;
            self.expect_sym("=")?;
            let value = self.let_value()?;
            return Ok(Statement::Let { name, value });
        }
        if self.is_word("set")
            && (self.word_at(1, "query_bin_auto_size") || self.word_at(1, "query_bin_auto_at"))
            && self.sym_at(2, "=")
        {
            self.advance();
            let name = self.ident("an option name")?;
            self.advance();
            let value = self.expr()?;
            return Ok(Statement::Set(name, value));
        }
        if self.is_word("set") && matches!(self.peek_at(1), Tok::Ident(_)) {
            // `set option = value;` or `set option;`: query options, ignored.
            while !self.is_sym(";") && !self.at_eof() {
                self.advance();
            }
            return Ok(Statement::Ignored(start.to(self.prev_span())));
        }
        if self.is_word("declare") && self.word_at(1, "pattern") {
            return self.pattern_statement();
        }
        if (self.is_word("declare") && self.word_at(1, "query_parameters")) || self.is_word("alias")
        {
            let mut depth = 0i32;
            while (depth != 0 || !self.is_sym(";")) && !self.at_eof() {
                if self.is_sym("(") || self.is_sym("{") || self.is_sym("[") {
                    depth += 1;
                } else if self.is_sym(")") || self.is_sym("}") || self.is_sym("]") {
                    depth -= 1;
                }
                self.advance();
            }
            return Ok(Statement::Ignored(start.to(self.prev_span())));
        }
        Ok(Statement::Expr(self.pipe()?))
    }

    fn let_value(&mut self) -> Result<LetValue, KqlError> {
        let start = self.span();
        // view () { ... }
        if self.is_word("view") && self.sym_at(1, "(") {
            self.advance();
            return self.lambda(start).map(|mut l| {
                l.view = true;
                LetValue::Function(l)
            });
        }
        if self.is_sym("(") && self.looks_like_lambda() {
            return self.lambda(start).map(LetValue::Function);
        }
        Ok(LetValue::Expr(self.pipe()?))
    }

    /// At `(`: is this a parameter list followed by `{`?
    fn looks_like_lambda(&self) -> bool {
        let mut depth = 0usize;
        let mut i = self.pos;
        while i < self.tokens.len() {
            match &self.tokens[i].tok {
                Tok::Sym("(") => depth += 1,
                Tok::Sym(")") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return matches!(
                            self.tokens.get(i + 1).map(|t| &t.tok),
                            Some(Tok::Sym("{"))
                        );
                    }
                }
                Tok::Eof => return false,
                _ => {}
            }
            i += 1;
        }
        false
    }

    fn lambda(&mut self, start: Span) -> Result<Lambda, KqlError> {
        self.expect_sym("(")?;
        let mut params = Vec::new();
        while !self.is_sym(")") {
            let name = self.ident("a parameter name")?;
            self.expect_sym(":")?;
            let ty = if self.is_sym("(") {
                self.advance();
                let mut cols = Vec::new();
                while !self.is_sym(")") {
                    if self.eat_sym("*") {
                    } else {
                        let c = self.ident("a column name")?;
                        self.expect_sym(":")?;
                        cols.push((c, self.type_name()?));
                    }
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                ParamType::Tabular(cols)
            } else {
                ParamType::Scalar(self.type_name()?)
            };
            let default = if self.eat_sym("=") {
                Some(self.expr()?)
            } else {
                None
            };
            params.push(Param { name, ty, default });
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        self.expect_sym("{")?;
        let body = self.statements(&["}"])?;
        let end = self.expect_sym("}")?;
        if !body.iter().any(|s| matches!(s, Statement::Expr(_))) {
            return Err(KqlError::syntax("a function body needs an expression", end));
        }
        Ok(Lambda {
            params,
            body,
            span: start.to(end),
            view: false,
        })
    }

    /// `source (| operator)*`.
    pub(crate) fn pipe(&mut self) -> Result<Expr, KqlError> {
        self.enter()?;
        let source = self.source()?;
        let mut ops = Vec::new();
        while self.is_sym("|") {
            self.advance();
            ops.push(self.operator()?);
        }
        self.leave();
        if ops.is_empty() {
            return Ok(source);
        }
        let span = source.span.to(self.prev_span());
        Ok(Expr {
            kind: ExprKind::Pipe {
                source: Box::new(source),
                ops,
            },
            span,
        })
    }

    /// What a pipeline starts from: a tabular source keyword or any expression.
    fn source(&mut self) -> Result<Expr, KqlError> {
        let start = self.span();
        let kind = match self.tok() {
            Tok::Ident(w) if w == "datatable" && self.sym_at(1, "(") => self.datatable()?,
            Tok::Ident(w) if w == "print" && !self.sym_at(1, "(") => {
                self.advance();
                let cols = if self.is_sym("|") || self.is_sym(";") || self.at_eof() {
                    Vec::new()
                } else {
                    self.assignments()?
                };
                ExprKind::Print(cols)
            }
            Tok::Ident(w) if w == "range" && !self.sym_at(1, "(") && !self.sym_at(1, "|") => {
                self.advance();
                let column = self.ident("a column name after 'range'")?;
                self.expect_word("from")?;
                let from = self.expr()?;
                self.expect_word("to")?;
                let to = self.expr()?;
                self.expect_word("step")?;
                let step = self.expr()?;
                ExprKind::Range {
                    column,
                    from: Box::new(from),
                    to: Box::new(to),
                    step: Box::new(step),
                }
            }
            Tok::Ident(w) if w == "union" && !self.sym_at(1, "|") => {
                self.advance();
                ExprKind::Union(self.union_body(start)?)
            }
            Tok::Ident(w) if w == "search" && !self.sym_at(1, "|") => {
                self.advance();
                ExprKind::Search(Box::new(self.search_body()?))
            }
            Tok::Ident(w) if w == "evaluate" && !self.sym_at(1, "|") => {
                self.advance();
                ExprKind::Evaluate(self.evaluate_body()?)
            }
            _ => return self.expr(),
        };
        Ok(Expr {
            kind,
            span: start.to(self.prev_span()),
        })
    }

    fn datatable(&mut self) -> Result<ExprKind, KqlError> {
        self.advance();
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        while !self.is_sym(")") {
            let name = self.column_name_token("a column name")?;
            self.expect_sym(":")?;
            columns.push((name, self.type_name()?));
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        // `[ 'text' ]`: the lexer took a one-string list for a quoted name.
        if let Tok::QuotedIdent(text) = self.tok().clone() {
            let span = self.advance().span;
            return Ok(ExprKind::Datatable {
                columns,
                values: vec![Expr {
                    kind: ExprKind::Literal(crate::ast::Literal::String(text)),
                    span,
                }],
            });
        }
        self.expect_sym("[")?;
        let mut values = Vec::new();
        while !self.is_sym("]") {
            values.push(self.expr()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym("]")?;
        Ok(ExprKind::Datatable { columns, values })
    }

    /// A column name, also when it is a word the lexer took for a typed literal's type.
    fn column_name_token(&mut self, what: &str) -> Result<Ident, KqlError> {
        self.ident(what)
    }
}

#[cfg(test)]
mod tests;
