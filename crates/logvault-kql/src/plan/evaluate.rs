//! `evaluate` plugins, `invoke`, `make-series`, `top-nested`.

use super::rel::Rel;
use super::{Env, Planner};
use crate::ast::{Evaluate, Expr, MakeSeries, TopNestedLevel};
use crate::error::{KqlError, Span};

impl Planner<'_> {
    pub(crate) fn evaluate(
        &mut self,
        _input: Option<Rel>,
        ev: &Evaluate,
        _span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported(
            format!("the plugin '{}'", ev.plugin.name),
            ev.plugin.span,
        ))
    }

    pub(crate) fn invoke(&mut self, _rel: Rel, call: &Expr, _env: &Env) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("invoke", call.span))
    }

    pub(crate) fn make_series(
        &mut self,
        _rel: Rel,
        _ms: &MakeSeries,
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("make-series", span))
    }

    pub(crate) fn top_nested(
        &mut self,
        _rel: Rel,
        _levels: &[TopNestedLevel],
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("top-nested", span))
    }
}
