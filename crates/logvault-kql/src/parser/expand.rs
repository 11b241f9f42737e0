//! The syntax of the operators that expand arrays (`mv-expand`, `mv-apply`) or build them
//! (`make-series`).

use super::Parser;
use crate::ast::{Ident, MakeSeries, MvItem, OpKind};
use crate::error::KqlError;

impl Parser {
    pub(super) fn mv_items(&mut self) -> Result<Vec<MvItem>, KqlError> {
        let mut items = Vec::new();
        loop {
            let a = self.assignment()?;
            let to = if self.eat_word("to") {
                self.expect_word("typeof")?;
                self.expect_sym("(")?;
                let t = self.type_name()?;
                self.expect_sym(")")?;
                Some(t)
            } else {
                None
            };
            items.push(MvItem {
                name: a.names.into_iter().next(),
                expr: a.expr,
                to,
            });
            if !self.eat_sym(",") {
                return Ok(items);
            }
        }
    }

    pub(super) fn mv_params(&mut self) -> Result<(Option<Ident>, bool), KqlError> {
        let mut item_index = None;
        let mut bag_array = false;
        loop {
            if self.is_word("with_itemindex") && self.sym_at(1, "=") {
                self.advance();
                self.advance();
                item_index = Some(self.ident("a column name")?);
            } else if (self.is_word("bagexpansion") || self.is_word("kind")) && self.sym_at(1, "=")
            {
                let (_, v) = self.param()?;
                bag_array = v == "array";
            } else if self.is_word("hint") && self.sym_at(1, ".") {
                self.param()?;
            } else {
                return Ok((item_index, bag_array));
            }
        }
    }

    pub(super) fn mv_expand(&mut self) -> Result<OpKind, KqlError> {
        let (item_index, bag_array) = self.mv_params()?;
        let items = self.mv_items()?;
        let limit = if self.eat_word("limit") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(OpKind::MvExpand {
            items,
            item_index,
            bag_array,
            limit,
        })
    }

    pub(super) fn mv_apply(&mut self) -> Result<OpKind, KqlError> {
        let (mut item_index, _) = self.mv_params()?;
        let items = self.mv_items()?;
        if self.eat_word("limit") {
            self.expr()?;
        }
        if item_index.is_none() {
            item_index = self.mv_params()?.0;
        }
        self.expect_word("on")?;
        self.expect_sym("(")?;
        let mut ops = vec![self.operator()?];
        while self.eat_sym("|") {
            ops.push(self.operator()?);
        }
        self.expect_sym(")")?;
        Ok(OpKind::MvApply {
            items,
            item_index,
            ops,
        })
    }

    pub(super) fn make_series(&mut self) -> Result<OpKind, KqlError> {
        let mut nonempty = false;
        while self.is_word("kind") && self.sym_at(1, "=") || self.is_word("hint") {
            let (name, value) = self.param()?;
            if name == "kind" {
                nonempty = value == "nonempty";
            }
        }
        let mut aggs = Vec::new();
        loop {
            let a = self.assignment()?;
            let default = if self.is_word("default") && self.sym_at(1, "=") {
                self.advance();
                self.advance();
                Some(self.expr()?)
            } else {
                None
            };
            aggs.push((a, default));
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_word("on")?;
        let on = self.expr()?;
        let (mut from, mut to, step);
        if self.eat_word("in") {
            // in range(from, to, step)
            let span = self.span();
            let name = self.ident("'range'")?;
            if name.name != "range" {
                return Err(KqlError::syntax("expected 'range(from, to, step)'", span));
            }
            let (args, _) = self.call_args()?;
            let mut it = args.into_iter().map(|a| a.value);
            from = it.next();
            to = it.next();
            step = it
                .next()
                .ok_or_else(|| KqlError::syntax("range(from, to, step) needs a step", span))?;
        } else {
            from = None;
            to = None;
            if self.eat_word("from") {
                from = Some(self.expr()?);
            }
            if self.eat_word("to") {
                to = Some(self.expr()?);
            }
            self.expect_word("step")?;
            step = self.expr()?;
        }
        let by = if self.eat_word("by") {
            self.assignments()?
        } else {
            Vec::new()
        };
        Ok(OpKind::MakeSeries(Box::new(MakeSeries {
            nonempty,
            aggs,
            on,
            from,
            to,
            step,
            by,
        })))
    }
}
