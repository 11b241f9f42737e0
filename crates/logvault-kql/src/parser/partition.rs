//! The `partition` operator's syntax.

use super::Parser;
use crate::ast::{OpKind, Partition, PartitionBody};
use crate::error::KqlError;

impl Parser {
    /// After `partition`: `[hint.name=value ...] by Column` then `( op | ... )` or
    /// `{ tabular expression }`.
    pub(crate) fn partition(&mut self) -> Result<OpKind, KqlError> {
        let mut strategy = None;
        while self.is_word("hint") && self.sym_at(1, ".") {
            let (name, value) = self.param()?;
            if name == "hint.strategy" {
                strategy = Some(value.to_ascii_lowercase());
            }
        }
        self.expect_word("by")?;
        let column = self.ident("the partition column")?;
        let body = if self.eat_sym("(") {
            let mut ops = vec![self.operator()?];
            while self.eat_sym("|") {
                ops.push(self.operator()?);
            }
            self.expect_sym(")")?;
            PartitionBody::Ops(ops)
        } else if self.eat_sym("{") {
            let source = self.pipe()?;
            self.expect_sym("}")?;
            PartitionBody::Source(Box::new(source))
        } else {
            return Err(self.unexpected("'(' or '{' and the partition's subquery"));
        };
        Ok(OpKind::Partition(Box::new(Partition {
            column,
            strategy,
            body,
        })))
    }
}
