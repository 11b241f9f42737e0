//! `evaluate` plugins that are compositions of operators: `rows_near`, `ipv4_lookup`,
//! `ipv6_lookup`, `geo_polygon_lookup`, `geo_line_lookup`, `rolling_percentile`.
//!
//! Each is written as a KQL template over the plugin's input (bound to `__kql_in`) and its
//! lookup table (`__kql_lookup`); the template's placeholder names `__kql_argN` are replaced
//! by the user's argument expressions before planning, so a plugin gets the same planning,
//! types and optimizer as the operators it is made of.

use std::collections::HashMap;

use super::rel::Rel;
use super::scalar::Scope;
use super::{Binding, Env, Planner, consts};
use crate::ast::{Arg, Evaluate, Expr, ExprKind, OpKind, Operator, Statement};
use crate::error::{KqlError, Span};

/// Replaces the names of `map` in `e` by their expressions.
fn subst(e: &mut Expr, map: &HashMap<String, Expr>) {
    match &mut e.kind {
        ExprKind::Name(n) => {
            if let Some(r) = map.get(n.as_str()) {
                *e = r.clone();
            }
        }
        ExprKind::Member(a, _) | ExprKind::Unary(_, a) => subst(a, map),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            subst(a, map);
            subst(b, map);
        }
        ExprKind::In { lhs, list, .. } => {
            subst(lhs, map);
            list.iter_mut().for_each(|x| subst(x, map));
        }
        ExprKind::Between { lhs, low, high, .. } => {
            subst(lhs, map);
            subst(low, map);
            subst(high, map);
        }
        ExprKind::Call { args, .. } => args.iter_mut().for_each(|a| subst(&mut a.value, map)),
        ExprKind::Pipe { source, ops } => {
            subst(source, map);
            ops.iter_mut().for_each(|o| subst_op(o, map));
        }
        _ => {}
    }
}

fn subst_op(op: &mut Operator, map: &HashMap<String, Expr>) {
    match &mut op.kind {
        OpKind::Where(e) | OpKind::Take(e) => subst(e, map),
        OpKind::Project(items) | OpKind::Extend(items) | OpKind::Serialize(items) => {
            items.iter_mut().for_each(|a| subst(&mut a.expr, map));
        }
        OpKind::Summarize { aggs, by } => {
            aggs.iter_mut()
                .chain(by.iter_mut())
                .for_each(|a| subst(&mut a.expr, map));
        }
        OpKind::Join { right, on, .. } => {
            subst(right, map);
            on.iter_mut().for_each(|x| subst(x, map));
        }
        OpKind::Sort(keys) => keys.iter_mut().for_each(|k| subst(&mut k.expr, map)),
        _ => {}
    }
}

/// A name usable in KQL text whatever its characters: `['name']`.
fn quoted(name: &str) -> String {
    format!("['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Planner<'_> {
    /// Plans the KQL `text` with `__kql_in` (and `__kql_lookup`) bound to tables and the
    /// placeholders `__kql_argN` replaced by `args`.
    fn template(
        &mut self,
        plugin: &str,
        text: &str,
        tables: Vec<(&str, Rel)>,
        args: &[&Expr],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let query = crate::parser::parse(text)
            .map_err(|e| KqlError::semantic(format!("{plugin}: {e}"), span))?;
        let map: HashMap<String, Expr> = args
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("__kql_arg{i}"), (*e).clone()))
            .collect();
        let mut stmts = query.statements;
        for s in &mut stmts {
            match s {
                Statement::Let {
                    value: crate::ast::LetValue::Expr(e),
                    ..
                }
                | Statement::Expr(e) => subst(e, &map),
                _ => {}
            }
        }
        let mut env = env.clone();
        for (name, rel) in tables {
            env.bind(name, Binding::Tabular(rel));
        }
        self.statements_pub(&stmts, &mut env).map_err(|e| match e {
            KqlError::Semantic { message, .. } | KqlError::Syntax { message, .. } => {
                KqlError::semantic(format!("{plugin}: {message}"), span)
            }
            KqlError::Unsupported { message, .. } => {
                KqlError::unsupported(format!("{plugin}: {message}"), span)
            }
            other => other,
        })
    }

    fn positional(ev: &Evaluate) -> Vec<&Arg> {
        ev.args.iter().filter(|a| a.name.is_none()).collect()
    }

    /// A named or positional boolean option (`return_unmatched = true`), constant.
    fn flag(&mut self, ev: &Evaluate, name: &str, pos: usize, env: &Env) -> Result<bool, KqlError> {
        let a = ev
            .args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
            .or_else(|| Self::positional(ev).get(pos).copied());
        let Some(a) = a else {
            return Ok(false);
        };
        let t = self.scalar(&a.value, &Scope::empty(env))?;
        match consts::eval(&t, name, a.value.span)? {
            datafusion::common::ScalarValue::Boolean(b) => Ok(b.unwrap_or(false)),
            _ => Err(KqlError::semantic(
                format!("{name} must be a bool"),
                a.value.span,
            )),
        }
    }

    pub(crate) fn composed_plugin(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let name = ev.plugin.name.as_str();
        let pos = Self::positional(ev);
        let need = |n: usize| {
            if pos.len() < n {
                Err(KqlError::semantic(
                    format!("{name} needs at least {n} arguments"),
                    span,
                ))
            } else {
                Ok(())
            }
        };
        match name {
            "rows_near" => {
                need(2)?;
                let after = pos.get(2).map_or(&pos[1].value, |a| &a.value);
                let text = "let __s = __kql_in | serialize __kql_rn = row_number(), __kql_m = __kql_arg0;\n\
                    let __near = __s | where __kql_m | project __kql_c = __kql_rn, __kql_k = 1\n\
                    | join kind=inner (__s | project __kql_rn, __kql_k = 1) on __kql_k\n\
                    | where __kql_rn >= __kql_c - __kql_arg1 and __kql_rn <= __kql_c + __kql_arg2\n\
                    | distinct __kql_rn;\n\
                    __s | join kind=leftsemi (__near) on __kql_rn | sort by __kql_rn asc | project-away __kql_rn, __kql_m";
                let args = [&pos[0].value, &pos[1].value, after];
                let mut out =
                    self.template(name, text, vec![("__kql_in", rel)], &args, span, env)?;
                out.ordered = true;
                Ok(out)
            }
            "ipv4_lookup" | "ipv6_lookup" | "geo_polygon_lookup" | "geo_line_lookup" => {
                self.lookup_plugin(rel, ev, &pos, span, env)
            }
            "rolling_percentile" => self.rolling_percentile(rel, &pos, span, env),
            "dcount_intersect" => {
                // s0 = dcount(h0), s1 = dcount(h0 ∩ h1), ... over exact hll sketches.
                need(2)?;
                let mut cols = Vec::new();
                let mut inter = "__kql_arg0".to_owned();
                for i in 0..pos.len() {
                    if i > 0 {
                        inter = format!("set_intersect({inter}, __kql_arg{i})");
                    }
                    cols.push(format!("s{i} = array_length({inter})"));
                }
                let text = format!("__kql_in | project {}", cols.join(", "));
                let args: Vec<&Expr> = pos.iter().map(|a| &a.value).collect();
                self.template(name, &text, vec![("__kql_in", rel)], &args, span, env)
            }
            _ => Err(KqlError::unsupported(
                format!("the plugin '{name}'"),
                ev.plugin.span,
            )),
        }
    }

    /// The lookup plugins: every input row with the lookup rows that match it (the lookup
    /// table's columns first), unmatched input rows too with `return_unmatched`.
    fn lookup_plugin(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        pos: &[&Arg],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let name = ev.plugin.name.as_str();
        let (min_args, unmatched_pos, key_pos) = match name {
            "geo_polygon_lookup" => (4, 5, 7),
            "geo_line_lookup" => (5, 5, 7),
            _ => (3, 3, usize::MAX),
        };
        if pos.len() < min_args {
            return Err(KqlError::semantic(
                format!("{name} needs at least {min_args} arguments"),
                span,
            ));
        }
        let lookup = self.tabular(&pos[0].value, env)?;
        // ipv4/ipv6_lookup(LookupTable, SourceKey, LookupKey); the geo lookups
        // (LookupTable, LookupKey, SourceLongitude, SourceLatitude, ...).
        // The radius of the geo lookups: positional (fifth) or named.
        let radius = ev
            .args
            .iter()
            .find(|a| {
                a.name
                    .as_ref()
                    .is_some_and(|n| n.name.eq_ignore_ascii_case("radius"))
            })
            .or_else(|| pos.get(4).copied())
            .map(|a| &a.value);
        let (key_arg, source_args) = match name {
            "ipv4_lookup" | "ipv6_lookup" => (pos[2], vec![&pos[1].value]),
            _ => {
                let mut a = vec![&pos[2].value, &pos[3].value];
                if let Some(r) = radius {
                    a.push(r);
                }
                (pos[1], a)
            }
        };
        let ExprKind::Name(key) = &key_arg.value.kind else {
            return Err(KqlError::semantic(
                format!("{name}: the lookup key must be a column of the lookup table"),
                key_arg.value.span,
            ));
        };
        let unmatched = self.flag(ev, "return_unmatched", unmatched_pos, env)?;
        let keep_key = key_pos == usize::MAX || self.flag(ev, "return_lookup_key", key_pos, env)?;
        let lookup_names = lookup.names();
        if !lookup_names.iter().any(|n| n == key) {
            return Err(KqlError::semantic(
                format!("{name}: the lookup table has no column '{key}'"),
                key_arg.value.span,
            ));
        }
        let test = match name {
            "ipv4_lookup" => "ipv4_is_in_range(__kql_arg0, __kql_key)".to_owned(),
            "ipv6_lookup" => "ipv6_is_in_range(__kql_arg0, __kql_key)".to_owned(),
            "geo_polygon_lookup" => {
                if radius.is_some() {
                    "geo_distance_point_to_polygon(__kql_arg0, __kql_arg1, __kql_key) <= __kql_arg2"
                        .to_owned()
                } else {
                    "geo_point_in_polygon(__kql_arg0, __kql_arg1, __kql_key)".to_owned()
                }
            }
            _ => "geo_distance_point_to_line(__kql_arg0, __kql_arg1, __kql_key) <= __kql_arg2"
                .to_owned(),
        };
        let test = test.replace("__kql_key", &quoted(key));
        let right_cols: Vec<String> = lookup_names
            .iter()
            .filter(|n| keep_key || *n != key)
            .map(|n| quoted(n))
            .collect();
        let left_cols: Vec<String> = rel.names().iter().map(|n| quoted(n)).collect();
        // The IP lookups return the lookup table's columns first, the geo lookups last.
        let order: Vec<String> = if name.starts_with("ip") {
            right_cols.into_iter().chain(left_cols).collect()
        } else {
            left_cols.into_iter().chain(right_cols).collect()
        };
        let text = format!(
            "let __s = __kql_in | serialize __kql_rn = row_number();\n\
             let __m = __s | extend __kql_k = 1 | join kind=inner (__kql_lookup | extend __kql_k = 1) on __kql_k\n\
             | where {test};\n\
             {}\n\
             | project {}",
            if unmatched {
                "union __m, (__s | join kind=leftanti (__m) on __kql_rn)"
            } else {
                "__m"
            },
            order.join(", ")
        );
        self.template(
            name,
            &text,
            vec![("__kql_in", rel), ("__kql_lookup", lookup)],
            &source_args,
            span,
            env,
        )
    }

    /// `rolling_percentile(value, p, index, bin_size, bins_back [, dims...])`: per bin of the
    /// index (and per dimension values), the percentile of the values in that bin and the
    /// `bins_back - 1` bins before it.
    fn rolling_percentile(
        &mut self,
        rel: Rel,
        pos: &[&Arg],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        if pos.len() < 5 {
            return Err(KqlError::semantic(
                "rolling_percentile needs at least 5 arguments",
                span,
            ));
        }
        let sc = Scope::empty(env);
        let p = self.scalar(&pos[1].value, &sc)?;
        let p = super::eval_f64_pub(&p, "the percentile", pos[1].value.span)?;
        let back = self.scalar(&pos[4].value, &sc)?;
        let back = consts::eval_i64(&back, "the number of bins", pos[4].value.span)?;
        let name_of = |e: &Expr| match &e.kind {
            ExprKind::Name(n) => Some(n.clone()),
            _ => None,
        };
        let value_name = name_of(&pos[0].value).unwrap_or_else(|| "value".into());
        let index_name = name_of(&pos[2].value).unwrap_or_else(|| "index".into());
        let mut dims = Vec::new();
        for d in &pos[5..] {
            match name_of(&d.value) {
                Some(n) => dims.push(quoted(&n)),
                None => {
                    return Err(KqlError::semantic(
                        "rolling_percentile: a dimension must be a column",
                        d.value.span,
                    ));
                }
            }
        }
        let p_text = if p.fract() == 0.0 {
            format!("{p:.0}")
        } else {
            p.to_string()
        };
        let result = quoted(&format!(
            "rolling_{back}_percentile_{value_name}_{}",
            p_text.replace('.', "_")
        ));
        let dim_list: String = dims.iter().map(|d| format!(", {d}")).collect();
        let text = format!(
            "let __b = __kql_in | extend __kql_v = __kql_arg0, __kql_i = bin(__kql_arg1, __kql_arg2);\n\
             __b | summarize by __kql_i{dim_list} | extend __kql_k = 1\n\
             | join kind=inner (__b | project __kql_v, __kql_j = __kql_i, __kql_k = 1{dim_list}) on __kql_k{dim_list}\n\
             | where __kql_j <= __kql_i and __kql_j > __kql_i - __kql_arg2 * {back}\n\
             | summarize {result} = percentile(__kql_v, {p_text}) by {index} = __kql_i{dim_list}\n\
             | sort by {sort_keys}",
            sort_keys = dims
                .iter()
                .map(|d| format!("{d} asc"))
                .chain(std::iter::once(format!("{} asc", quoted(&index_name))))
                .collect::<Vec<_>>()
                .join(", "),
            index = quoted(&index_name),
        );
        let args = [&pos[0].value, &pos[2].value, &pos[3].value];
        self.template(
            "rolling_percentile",
            &text,
            vec![("__kql_in", rel)],
            &args,
            span,
            env,
        )
    }
}
