//! `mv-expand`, `mv-apply`, `parse`, `parse-kv`.

use super::rel::Rel;
use super::{Env, Planner};
use crate::ast::{Expr, Ident, MvItem, Operator, ParsePart};
use crate::error::{KqlError, Span};
use crate::types::KustoType;

impl Planner<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mv_expand(
        &mut self,
        _rel: Rel,
        _items: &[MvItem],
        _item_index: Option<&Ident>,
        _bag_array: bool,
        _limit: Option<&Expr>,
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("mv-expand", span))
    }

    pub(crate) fn mv_apply(
        &mut self,
        _rel: Rel,
        _items: &[MvItem],
        _item_index: Option<&Ident>,
        _ops: &[Operator],
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("mv-apply", span))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn parse_op(
        &mut self,
        _rel: Rel,
        _expr: &Expr,
        _parts: &[ParsePart],
        _regex: bool,
        _relaxed: bool,
        _filter: bool,
        _flags: &str,
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("parse", span))
    }

    pub(crate) fn parse_kv(
        &mut self,
        _rel: Rel,
        _expr: &Expr,
        _columns: &[(Ident, KustoType)],
        _params: &[(String, Expr)],
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("parse-kv", span))
    }
}
