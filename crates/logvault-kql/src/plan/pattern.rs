//! `declare pattern`: a call of a pattern runs the query of the case whose constant arguments
//! (and path) match.

use super::{Binding, Env, Planner, consts, scalar};
use crate::ast::Expr;
use crate::error::{KqlError, Span};
use crate::plan::rel::Rel;

impl Planner<'_> {
    /// `P(args)` or `P(args).path`: the query of the pattern's case with those values.
    pub(super) fn pattern_call(
        &mut self,
        name: &str,
        args: &[crate::ast::Arg],
        path: Option<&str>,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let Some(Binding::Pattern(p, penv)) = env.get(name).cloned() else {
            return Err(KqlError::semantic(
                format!("'{name}' is not a pattern"),
                span,
            ));
        };
        let constant = |planner: &mut Self, e: &Expr, env: &Env| -> Result<String, KqlError> {
            let t = planner.scalar(e, &scalar::Scope::empty(env))?;
            let v = consts::eval(&t, "a pattern argument", e.span)?;
            Ok(match v {
                datafusion::common::ScalarValue::Utf8(Some(s))
                | datafusion::common::ScalarValue::LargeUtf8(Some(s))
                | datafusion::common::ScalarValue::Utf8View(Some(s)) => s,
                other => other.to_string(),
            })
        };
        if args.len() != p.params {
            return Err(KqlError::semantic(
                format!(
                    "pattern '{name}' takes {} arguments, {} given",
                    p.params,
                    args.len()
                ),
                span,
            ));
        }
        let mut values = Vec::new();
        for a in args {
            values.push(constant(self, &a.value, env)?);
        }
        for case in &p.cases {
            let mut ok = case.args.len() == values.len();
            for (e, v) in case.args.iter().zip(&values) {
                ok = ok && constant(self, e, &penv)? == *v;
            }
            let path_ok = match (&case.path, path) {
                (Some(e), Some(want)) => constant(self, e, &penv)? == want,
                (None, None) => true,
                _ => false,
            };
            if ok && path_ok {
                let mut inner = penv.clone();
                return self.statements(&case.body, &mut inner);
            }
        }
        Err(KqlError::semantic(
            format!(
                "pattern '{name}' has no case for ({}){}",
                values.join(", "),
                path.map(|p| format!(".{p}")).unwrap_or_default()
            ),
            span,
        ))
    }
}
