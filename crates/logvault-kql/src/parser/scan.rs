//! The `scan` operator's syntax.

use super::Parser;
use crate::ast::{OpKind, Scan, ScanOutput, ScanStep};
use crate::error::KqlError;

impl Parser {
    /// After `scan`: `[with_match_id=Id] [declare (c:type [= default], ...)] with (steps)`.
    pub(crate) fn scan(&mut self) -> Result<OpKind, KqlError> {
        let mut match_id = None;
        if self.is_word("with_match_id") && self.sym_at(1, "=") {
            self.advance();
            self.advance();
            match_id = Some(self.ident("a column name")?);
        }
        let mut declare = Vec::new();
        if self.eat_word("declare") {
            self.expect_sym("(")?;
            loop {
                let name = self.ident("a column name")?;
                self.expect_sym(":")?;
                let ty = self.type_name()?;
                let default = if self.eat_sym("=") {
                    Some(self.expr()?)
                } else {
                    None
                };
                declare.push((name, ty, default));
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        self.expect_word("with")?;
        self.expect_sym("(")?;
        let mut steps = Vec::new();
        while self.eat_word("step") {
            let name = self.ident("a step name")?;
            let mut output = ScanOutput::All;
            if self.is_word("output") && self.sym_at(1, "=") {
                self.advance();
                self.advance();
                let v = self.ident("all, last or none")?;
                output = match v.name.as_str() {
                    "all" => ScanOutput::All,
                    "last" => ScanOutput::Last,
                    "none" => ScanOutput::None,
                    _ => return Err(KqlError::syntax("expected all, last or none", v.span)),
                };
            }
            self.expect_sym(":")?;
            let condition = self.expr()?;
            let mut assigns = Vec::new();
            if self.eat_sym("=>") {
                loop {
                    let col = self.ident("a declared column")?;
                    self.expect_sym("=")?;
                    assigns.push((col, self.expr()?));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            }
            self.expect_sym(";")?;
            steps.push(ScanStep {
                name,
                output,
                condition,
                assigns,
            });
        }
        if steps.is_empty() {
            return Err(self.unexpected("a step ('step Name: condition;')"));
        }
        self.expect_sym(")")?;
        Ok(OpKind::Scan(Box::new(Scan {
            match_id,
            declare,
            steps,
        })))
    }
}

impl Parser {
    /// `declare pattern Name = (p:type, ...)[path:type] { (args).[path] = { query }; ... }`
    /// (the `[path]` and the body are optional).
    pub(crate) fn pattern_statement(&mut self) -> Result<crate::ast::Statement, KqlError> {
        use crate::ast::{Expr, ExprKind, LetValue, Literal, Pattern, PatternCase, Statement};
        self.advance();
        self.advance();
        let name = self.ident("a pattern name")?;
        self.expect_sym("=")?;
        self.expect_sym("(")?;
        let mut params = 0;
        while !self.is_sym(")") {
            self.ident("a parameter name")?;
            self.expect_sym(":")?;
            self.type_name()?;
            params += 1;
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        if self.eat_sym("[") {
            self.ident("a path parameter")?;
            self.expect_sym(":")?;
            self.type_name()?;
            self.expect_sym("]")?;
        }
        let mut cases = Vec::new();
        if self.eat_sym("{") {
            while !self.is_sym("}") && !self.at_eof() {
                self.expect_sym("(")?;
                let mut args = Vec::new();
                while !self.is_sym(")") {
                    args.push(self.expr()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                let mut path = None;
                if self.eat_sym(".") {
                    if let crate::lexer::Tok::QuotedIdent(key) = self.tok().clone() {
                        let span = self.advance().span;
                        path = Some(Expr {
                            kind: ExprKind::Literal(Literal::String(key)),
                            span,
                        });
                    } else {
                        self.expect_sym("[")?;
                        path = Some(self.expr()?);
                        self.expect_sym("]")?;
                    }
                }
                self.expect_sym("=")?;
                self.expect_sym("{")?;
                let body = self.statements(&["}"])?;
                self.expect_sym("}")?;
                self.eat_sym(";");
                cases.push(PatternCase { args, path, body });
            }
            self.expect_sym("}")?;
        }
        Ok(Statement::Let {
            name,
            value: LetValue::Pattern(Pattern { params, cases }),
        })
    }
}
