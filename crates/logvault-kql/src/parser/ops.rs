//! The tabular operators that follow `|`.

use super::Parser;
use crate::ast::{
    ColumnPattern, Evaluate, Expr, Ident, JoinKind, OpKind, Operator, ParsePart, Search, SortKey,
    TopNestedLevel, Union,
};
use crate::error::{KqlError, Span};
use crate::lexer::Tok;

/// Every operator name, for "did you mean".
pub(crate) const OPERATORS: &[&str] = &[
    "where",
    "filter",
    "project",
    "project-away",
    "project-keep",
    "project-rename",
    "project-reorder",
    "extend",
    "summarize",
    "count",
    "take",
    "limit",
    "top",
    "sort",
    "order",
    "distinct",
    "union",
    "join",
    "lookup",
    "as",
    "parse",
    "parse-where",
    "parse-kv",
    "mv-expand",
    "mv-apply",
    "make-series",
    "serialize",
    "sample",
    "sample-distinct",
    "top-nested",
    "getschema",
    "evaluate",
    "invoke",
    "render",
    "search",
    "consume",
    "scan",
    "partition",
];

impl Parser {
    /// One operator after `|`.
    pub(crate) fn operator(&mut self) -> Result<Operator, KqlError> {
        let start = self.span();
        let Tok::Ident(word) = self.tok().clone() else {
            return Err(self.unexpected("an operator after '|'"));
        };
        self.advance();
        let kind = match word.as_str() {
            "where" | "filter" => OpKind::Where(self.expr()?),
            "project" => OpKind::Project(self.assignments()?),
            "project-away" => OpKind::ProjectAway(self.patterns()?),
            "project-keep" => OpKind::ProjectKeep(self.patterns()?),
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let new = self.ident("a new column name")?;
                    self.expect_sym("=")?;
                    let old = self.ident("a column name")?;
                    pairs.push((new, old));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                OpKind::ProjectRename(pairs)
            }
            "project-reorder" => {
                let mut items = Vec::new();
                loop {
                    let p = self.pattern()?;
                    let order = if self.eat_word("asc") || self.eat_word("granny-asc") {
                        Some(true)
                    } else if self.eat_word("desc") || self.eat_word("granny-desc") {
                        Some(false)
                    } else {
                        None
                    };
                    items.push((p, order));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                OpKind::ProjectReorder(items)
            }
            "extend" => OpKind::Extend(self.assignments()?),
            "summarize" => {
                self.skip_hints();
                let aggs = if self.is_word("by") {
                    Vec::new()
                } else {
                    self.assignments()?
                };
                let by = if self.eat_word("by") {
                    self.assignments()?
                } else {
                    Vec::new()
                };
                OpKind::Summarize { aggs, by }
            }
            "count" => OpKind::Count,
            "take" | "limit" => OpKind::Take(self.expr()?),
            "top" => {
                let n = self.expr()?;
                self.expect_word("by")?;
                OpKind::Top {
                    n,
                    by: self.sort_keys()?,
                }
            }
            "sort" | "order" => {
                self.skip_hints();
                self.expect_word("by")?;
                OpKind::Sort(self.sort_keys()?)
            }
            "distinct" => {
                let mut items = Vec::new();
                loop {
                    items.push(self.expr()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                OpKind::Distinct(items)
            }
            "union" => OpKind::Union(self.union_body(start)?),
            "join" => self.join()?,
            "lookup" => {
                let mut inner = false;
                while self.is_word("kind") || self.is_word("hint") {
                    let (name, value) = self.param()?;
                    if name == "kind" {
                        inner = value.eq_ignore_ascii_case("inner");
                    }
                }
                let right = self.join_right()?;
                self.expect_word("on")?;
                OpKind::Lookup {
                    inner,
                    right: Box::new(right),
                    on: self.join_on()?,
                }
            }
            "as" => {
                self.skip_hints();
                OpKind::As(self.ident("a name after 'as'")?)
            }
            "parse" | "parse-where" => self.parse_op(word == "parse-where")?,
            "parse-kv" => self.parse_kv()?,
            "mv-expand" => self.mv_expand()?,
            "mv-apply" => self.mv_apply()?,
            "scan" => self.scan()?,
            "partition" => self.partition()?,
            "make-series" => self.make_series()?,
            "serialize" => {
                let cols = if self.at_op_end() {
                    Vec::new()
                } else {
                    self.assignments()?
                };
                OpKind::Serialize(cols)
            }
            "sample" => OpKind::Sample(self.expr()?),
            "sample-distinct" => {
                let n = self.expr()?;
                self.expect_word("of")?;
                OpKind::SampleDistinct(n, self.expr()?)
            }
            "top-nested" => self.top_nested()?,
            "getschema" => OpKind::GetSchema,
            "evaluate" => OpKind::Evaluate(self.evaluate_body()?),
            "invoke" => OpKind::Invoke(self.expr()?),
            "render" => {
                let chart = self.ident("a chart kind after 'render'")?.name;
                if self.eat_word("with") {
                    self.skip_balanced()?;
                }
                OpKind::Render { chart }
            }
            "search" => OpKind::Search(self.search_body()?),
            "consume" => {
                while self.is_word("decodeblocks") {
                    self.param()?;
                }
                OpKind::Consume
            }
            other => {
                return Err(KqlError::syntax(
                    format!(
                        "unknown operator '{other}'{}",
                        crate::error::did_you_mean(other, OPERATORS.iter().copied())
                    ),
                    start,
                ));
            }
        };
        Ok(Operator {
            kind,
            span: start.to(self.prev_span()),
        })
    }

    fn at_op_end(&self) -> bool {
        self.is_sym("|") || self.is_sym(";") || self.is_sym(")") || self.at_eof()
    }

    /// `name=value` operator parameters (`kind=inner`, `hint.strategy=shuffle`).
    pub(crate) fn param(&mut self) -> Result<(String, String), KqlError> {
        let mut name = self.ident("a parameter name")?.name;
        while self.eat_sym(".") {
            name.push('.');
            name.push_str(&self.ident("a parameter name")?.name);
        }
        self.expect_sym("=")?;
        let value = match self.tok().clone() {
            Tok::Ident(v) | Tok::Str(v) | Tok::QuotedIdent(v) => {
                self.advance();
                v
            }
            Tok::Long(v) => {
                self.advance();
                v.to_string()
            }
            _ => return Err(self.unexpected("a parameter value")),
        };
        Ok((name, value))
    }

    /// Skips `hint.x = y` parameters.
    fn skip_hints(&mut self) {
        while self.is_word("hint") && self.sym_at(1, ".") {
            if self.param().is_err() {
                return;
            }
        }
    }

    /// Skips a parenthesized group (for `render ... with (...)`).
    fn skip_balanced(&mut self) -> Result<(), KqlError> {
        self.expect_sym("(")?;
        let mut depth = 1;
        while depth > 0 {
            if self.at_eof() {
                return Err(self.unexpected("')'"));
            }
            if self.is_sym("(") {
                depth += 1;
            } else if self.is_sym(")") {
                depth -= 1;
            }
            self.advance();
        }
        Ok(())
    }

    fn pattern(&mut self) -> Result<ColumnPattern, KqlError> {
        let start = self.span();
        let mut text = String::new();
        let mut first = true;
        loop {
            let adjacent = first || !self.token().space_before;
            if !adjacent {
                break;
            }
            match self.tok().clone() {
                Tok::Ident(w) | Tok::QuotedIdent(w) => {
                    text.push_str(&w);
                    self.advance();
                }
                Tok::Sym("*") => {
                    text.push('*');
                    self.advance();
                }
                Tok::Long(v) if !first => {
                    text.push_str(&v.to_string());
                    self.advance();
                }
                _ => break,
            }
            first = false;
        }
        if text.is_empty() {
            return Err(self.unexpected("a column name"));
        }
        Ok(ColumnPattern {
            pattern: text,
            span: start.to(self.prev_span()),
        })
    }

    fn patterns(&mut self) -> Result<Vec<ColumnPattern>, KqlError> {
        let mut out = Vec::new();
        loop {
            out.push(self.pattern()?);
            if !self.eat_sym(",") {
                return Ok(out);
            }
        }
    }

    /// `expr [asc|desc] [nulls first|last], ...`.
    fn sort_keys(&mut self) -> Result<Vec<SortKey>, KqlError> {
        let mut keys = Vec::new();
        loop {
            let expr = self.expr()?;
            let asc = if self.eat_word("asc") {
                true
            } else {
                self.eat_word("desc");
                false
            };
            let nulls_first = if self.eat_word("nulls") {
                if self.eat_word("first") {
                    true
                } else {
                    self.expect_word("last")?;
                    false
                }
            } else {
                asc
            };
            keys.push(SortKey {
                expr,
                asc,
                nulls_first,
            });
            if !self.eat_sym(",") {
                return Ok(keys);
            }
        }
    }

    /// After `union`: parameters, then tables.
    pub(crate) fn union_body(&mut self, start: Span) -> Result<Union, KqlError> {
        let mut inner = false;
        let mut with_source = None;
        let mut fuzzy = false;
        loop {
            if self.is_word("kind") && self.sym_at(1, "=") {
                let (_, v) = self.param()?;
                inner = v == "inner";
            } else if self.is_word("withsource") && self.sym_at(1, "=") {
                self.advance();
                self.advance();
                with_source = Some(self.ident("a column name")?);
            } else if self.is_word("isfuzzy") && self.sym_at(1, "=") {
                let (_, v) = self.param()?;
                fuzzy = v == "true";
            } else if self.is_word("hint") && (self.sym_at(1, "=") || self.sym_at(1, ".")) {
                self.param()?;
            } else {
                break;
            }
        }
        let mut tables = Vec::new();
        loop {
            tables.push(self.union_item()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Union {
            inner,
            with_source,
            fuzzy,
            tables,
            span: start.to(self.prev_span()),
        })
    }

    fn union_item(&mut self) -> Result<Expr, KqlError> {
        if self.is_sym("(") {
            self.advance();
            let e = self.pipe()?;
            self.expect_sym(")")?;
            return Ok(e);
        }
        // `union *`: every table.
        if self.is_sym("*") {
            let span = self.span();
            self.advance();
            return Ok(Expr {
                kind: crate::ast::ExprKind::Name("*".to_owned()),
                span,
            });
        }
        // A table name, maybe with wildcards.
        if self.is_ident() && !self.sym_at(1, "(") {
            let p = self.pattern()?;
            return Ok(Expr {
                kind: crate::ast::ExprKind::Name(p.pattern),
                span: p.span,
            });
        }
        self.expr()
    }

    fn join(&mut self) -> Result<OpKind, KqlError> {
        let mut kind = JoinKind::InnerUnique;
        while (self.is_word("kind") || self.is_word("hint"))
            && (self.sym_at(1, "=") || self.sym_at(1, "."))
        {
            let span = self.span();
            let (name, value) = self.param()?;
            if name == "kind" {
                kind = match value.as_str() {
                    "innerunique" => JoinKind::InnerUnique,
                    "inner" => JoinKind::Inner,
                    "leftouter" => JoinKind::LeftOuter,
                    "rightouter" => JoinKind::RightOuter,
                    "fullouter" | "outer" => JoinKind::FullOuter,
                    "leftsemi" => JoinKind::LeftSemi,
                    "rightsemi" => JoinKind::RightSemi,
                    "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                    "rightanti" | "rightantisemi" => JoinKind::RightAnti,
                    other => {
                        return Err(KqlError::syntax(
                            format!("unknown join kind '{other}'"),
                            span,
                        ));
                    }
                };
            }
        }
        let right = self.join_right()?;
        let on = if self.eat_word("on") {
            self.join_on()?
        } else if self.eat_word("where") {
            vec![self.expr()?]
        } else {
            return Err(self.unexpected("'on' after the right side of the join"));
        };
        Ok(OpKind::Join {
            kind,
            right: Box::new(right),
            on,
        })
    }

    fn join_right(&mut self) -> Result<Expr, KqlError> {
        if self.is_sym("(") {
            let start = self.advance().span;
            let e = self.pipe()?;
            let end = self.expect_sym(")")?;
            return Ok(Expr {
                kind: e.kind,
                span: start.to(end),
            });
        }
        self.expr()
    }

    fn join_on(&mut self) -> Result<Vec<Expr>, KqlError> {
        let mut on = Vec::new();
        loop {
            on.push(self.expr()?);
            if !self.eat_sym(",") {
                return Ok(on);
            }
        }
    }

    fn parse_op(&mut self, filter: bool) -> Result<OpKind, KqlError> {
        let mut regex = false;
        let mut relaxed = false;
        let mut flags = String::new();
        while (self.is_word("kind") || self.is_word("flags")) && self.sym_at(1, "=") {
            let (name, value) = self.param()?;
            if name == "kind" {
                regex = value == "regex";
                relaxed = value == "relaxed";
            } else {
                flags = value;
            }
        }
        let expr = self.expr()?;
        self.expect_word("with")?;
        let mut parts = Vec::new();
        loop {
            match self.tok().clone() {
                Tok::Str(s) => {
                    self.advance();
                    parts.push(ParsePart::Text(s));
                }
                Tok::Sym("*") => {
                    self.advance();
                    parts.push(ParsePart::Star);
                }
                Tok::Ident(_) | Tok::QuotedIdent(_) => {
                    let name = self.ident("a column name")?;
                    let ty = if self.eat_sym(":") {
                        self.type_name()?
                    } else {
                        crate::types::KustoType::String
                    };
                    parts.push(ParsePart::Column(name, ty));
                }
                _ => break,
            }
        }
        if parts.is_empty() {
            return Err(self.unexpected("a parse pattern"));
        }
        Ok(OpKind::Parse {
            expr,
            parts,
            regex,
            relaxed,
            filter,
            flags,
        })
    }

    fn parse_kv(&mut self) -> Result<OpKind, KqlError> {
        let expr = self.expr()?;
        self.expect_word("as")?;
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        while !self.is_sym(")") {
            let name = self.ident("a column name")?;
            self.expect_sym(":")?;
            columns.push((name, self.type_name()?));
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        let mut params = Vec::new();
        if self.eat_word("with") {
            self.expect_sym("(")?;
            while !self.is_sym(")") {
                let name = self.ident("a parameter name")?.name;
                self.expect_sym("=")?;
                params.push((name, self.expr()?));
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        Ok(OpKind::ParseKv {
            expr,
            columns,
            params,
        })
    }

    /// `[Name =] expr [to typeof(T)]`, separated by commas.
    fn top_nested(&mut self) -> Result<OpKind, KqlError> {
        let mut levels = Vec::new();
        loop {
            let n = if self.is_word("of") {
                None
            } else {
                Some(self.expr()?)
            };
            self.expect_word("of")?;
            let of = self.assignment()?;
            let others = if self.eat_word("with") {
                self.expect_word("others")?;
                self.expect_sym("=")?;
                Some(self.expr()?)
            } else {
                None
            };
            self.expect_word("by")?;
            let by = self.assignment()?;
            let asc = if self.eat_word("asc") {
                true
            } else {
                self.eat_word("desc");
                false
            };
            levels.push(TopNestedLevel {
                n,
                of,
                others,
                by,
                asc,
            });
            if !self.eat_sym(",") {
                return Ok(OpKind::TopNested(levels));
            }
            // Each further level repeats the operator's name.
            self.eat_word("top-nested");
        }
    }

    /// After `evaluate`: hints, `plugin(args)`, and an optional `: (schema)`.
    pub(crate) fn evaluate_body(&mut self) -> Result<Evaluate, KqlError> {
        self.skip_hints();
        let plugin = self.ident("a plugin name after 'evaluate'")?;
        let (args, _) = self.call_args()?;
        let mut schema = None;
        let mut schema_star = false;
        if self.eat_sym(":") {
            self.expect_sym("(")?;
            let mut cols = Vec::new();
            while !self.is_sym(")") {
                if self.eat_sym("*") {
                    schema_star = true;
                } else {
                    let name = self.ident("a column name")?;
                    self.expect_sym(":")?;
                    cols.push((name, self.type_name()?));
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            schema = Some(cols);
        }
        Ok(Evaluate {
            plugin,
            args,
            schema,
            schema_star,
        })
    }

    /// After `search`: `kind=`, `in (tables)`, then the predicate.
    pub(crate) fn search_body(&mut self) -> Result<Search, KqlError> {
        let mut case_sensitive = false;
        if self.is_word("kind") && self.sym_at(1, "=") {
            let (_, v) = self.param()?;
            case_sensitive = v == "case_sensitive";
        }
        let mut tables = Vec::new();
        if self.is_word("in") && self.sym_at(1, "(") {
            self.advance();
            self.advance();
            while !self.is_sym(")") {
                let p = self.pattern()?;
                tables.push(Ident {
                    name: p.pattern,
                    span: p.span,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        let predicate = self.expr()?;
        Ok(Search {
            tables,
            predicate,
            case_sensitive,
        })
    }
}
