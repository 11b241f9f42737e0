//! `mv-expand`, `mv-apply`, `parse`, `parse-kv`.

use datafusion::common::{Column, UnnestOptions};
use datafusion::logical_expr::LogicalPlanBuilder;

use super::consts;
use super::operators::{convert, dynamic_path};
use super::ops::expr_name;
use super::rel::{Rel, TExpr};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::{Expr, Ident, MvItem, ParsePart};
use crate::error::{KqlError, Span};
use crate::types::KustoType;
use crate::udf::dynamic::{MvIndex, MvList};

impl Planner<'_> {
    /// `mv-expand`: each element of the arrays (or bags) in its own row, the other columns
    /// repeated; several arrays expand side by side, the shorter padded with nulls.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mv_expand(
        &mut self,
        rel: Rel,
        items: &[MvItem],
        item_index: Option<&Ident>,
        bag_array: bool,
        limit: Option<&Expr>,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let limit = match limit {
            Some(l) => {
                let t = self.scalar(l, &sc)?;
                usize::try_from(consts::eval_i64(&t, "the mv-expand limit", l.span)?.max(0))
                    .unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        };
        let mut out: Vec<(String, TExpr)> = rel.scope_cols();
        let mut expanded: Vec<(String, Option<KustoType>)> = Vec::new();
        let mut lists = Vec::new();
        for it in items {
            let t = self.scalar(&it.expr, &sc)?;
            let name = match &it.name {
                Some(n) => n.name.clone(),
                None => expr_name(&it.expr).ok_or_else(|| {
                    KqlError::semantic(
                        "name the expanded value: mv-expand Name = expression",
                        it.expr.span,
                    )
                })?,
            };
            let list = MvList::call(convert(t, KustoType::Dynamic).expr, bag_array, limit);
            lists.push(list.clone());
            let lt = TExpr::new(list, KustoType::Dynamic);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = lt,
                None => out.push((name.clone(), lt)),
            }
            expanded.push((name, it.to));
        }
        if let Some(ix) = item_index {
            out.push((
                ix.name.clone(),
                TExpr::new(MvIndex::call(lists), KustoType::Long),
            ));
            expanded.push((ix.name.clone(), None));
        }
        let projected = rel.project(out)?;
        let columns: Vec<Column> = expanded
            .iter()
            .map(|(n, _)| {
                let i = projected.index(n).unwrap_or(0);
                let (q, f) = projected.plan.schema().qualified_field(i);
                Column::new(q.cloned(), f.name())
            })
            .collect();
        let plan = LogicalPlanBuilder::from(projected.plan.clone())
            .unnest_columns_with_options(columns, UnnestOptions::new().with_preserve_nulls(true))?
            .build()?;
        let unnested = Rel {
            plan,
            cols: projected.cols.clone(),
            ordered: false,
            keys: Vec::new(),
        };
        if expanded.iter().all(|(_, to)| to.is_none()) {
            return Ok(unnested);
        }
        let items = (0..unnested.cols.len())
            .map(|i| {
                let name = unnested.cols[i].name.clone();
                let t = unnested.texpr(i);
                let t = match expanded.iter().find(|(n, _)| *n == name) {
                    Some((_, Some(to))) => convert(t, *to),
                    _ => t,
                };
                (name, t)
            })
            .collect();
        let _ = span;
        unnested.project(items)
    }

    /// `parse` / `parse-where`: the pattern becomes one regular expression (text parts
    /// escaped, unless `kind=regex`; a column part captures lazily, the last one the rest);
    /// each captured group is converted to its column's type. Rows that do not match get empty
    /// values (`parse`) or are dropped (`parse-where`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn parse_op(
        &mut self,
        rel: Rel,
        expr: &Expr,
        parts: &[ParsePart],
        regex: bool,
        _relaxed: bool,
        filter: bool,
        flags: &str,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let subject = convert(self.scalar(expr, &sc)?, KustoType::String);
        let mut pattern = String::new();
        let inline: String = flags
            .chars()
            .filter_map(|c| match c {
                'i' => Some('i'),
                's' => Some('s'),
                'm' => Some('m'),
                'U' => Some('U'),
                _ => None,
            })
            .collect();
        if !inline.is_empty() {
            pattern.push_str(&format!("(?{inline})"));
        }
        let mut columns: Vec<(Ident, KustoType)> = Vec::new();
        let last_column = parts
            .iter()
            .rposition(|p| matches!(p, ParsePart::Column(..)));
        let trailing_text = last_column.is_some_and(|i| i + 1 < parts.len());
        for (i, p) in parts.iter().enumerate() {
            match p {
                ParsePart::Text(t) => {
                    if regex {
                        pattern.push_str(t);
                    } else {
                        pattern.push_str(&regex::escape(t));
                    }
                }
                ParsePart::Star => pattern.push_str(".*?"),
                ParsePart::Column(name, ty) => {
                    let greedy = Some(i) == last_column && !trailing_text;
                    let group = match ty {
                        KustoType::Long | KustoType::Int => r"(-?\d+)".to_owned(),
                        KustoType::Real | KustoType::Decimal => {
                            r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)".to_owned()
                        }
                        _ if regex => "(.*?)".to_owned(),
                        _ if greedy => "(.*)".to_owned(),
                        _ => "(.*?)".to_owned(),
                    };
                    pattern.push_str(&group);
                    columns.push((name.clone(), *ty));
                }
            }
        }
        if regex::Regex::new(&pattern).is_err() {
            return Err(KqlError::semantic(
                format!("the parse pattern is not a valid regular expression: {pattern}"),
                span,
            ));
        }
        let captures = TExpr::new(
            crate::udf::rowfn::RowUdf::call(
                "parse_captures",
                vec![subject.expr, TExpr::string(pattern).expr],
                vec![KustoType::String, KustoType::String],
                KustoType::Dynamic,
                false,
                crate::functions::parse_captures,
            ),
            KustoType::Dynamic,
        );
        let hidden = self.fresh("parsed");
        let mut items = rel.scope_cols();
        items.push((hidden.clone(), captures));
        let mut with = rel.project(items)?;
        if filter {
            let i = with.cols.len() - 1;
            with = with.filter(with.column(i).is_not_null())?;
        }
        let i = with.cols.len() - 1;
        let cap = with.texpr(i);
        let mut out: Vec<(String, TExpr)> = (0..i)
            .map(|k| (with.cols[k].name.clone(), with.texpr(k)))
            .collect();
        for (k, (name, ty)) in columns.iter().enumerate() {
            let v = convert(
                dynamic_path(cap.clone(), vec![TExpr::long(k as i64)], name.span)?,
                *ty,
            );
            match out.iter_mut().find(|(n, _)| *n == name.name) {
                Some(slot) => slot.1 = v,
                None => out.push((name.name.clone(), v)),
            }
        }
        with.project(out)
    }

    /// `parse-kv text as (key:type, ...) with (pair_delimiter=..., kv_delimiter=..., quote=...,
    /// escape=..., greedy=..., regex=...)`: a row function gives the pairs as a bag of strings;
    /// each declared key is taken out of it and converted to its type (missing: null, or empty
    /// for a string).
    pub(crate) fn parse_kv(
        &mut self,
        rel: Rel,
        expr: &Expr,
        columns: &[(Ident, KustoType)],
        params: &[(String, Expr)],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let subject = convert(self.scalar(expr, &sc)?, KustoType::String);
        let (mut pair, mut kv, mut quote, mut escape, mut greedy, mut regex) = (
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            false,
            String::new(),
        );
        for (name, value) in params {
            let t = self.scalar(value, &Scope::empty(env))?;
            let text = || -> Result<String, KqlError> {
                t.literal_str().map(str::to_owned).ok_or_else(|| {
                    KqlError::semantic(
                        format!("parse-kv: '{name}' must be a constant string"),
                        value.span,
                    )
                })
            };
            match name.as_str() {
                "pair_delimiter" => pair = text()?,
                "kv_delimiter" => kv = text()?,
                "quote" => quote = text()?,
                "escape" => escape = text()?,
                "regex" => regex = text()?,
                "greedy" => {
                    greedy = match t.literal() {
                        Some(datafusion::common::ScalarValue::Boolean(Some(b))) => *b,
                        _ => {
                            return Err(KqlError::semantic(
                                "parse-kv: 'greedy' must be true or false",
                                value.span,
                            ));
                        }
                    }
                }
                other => {
                    return Err(KqlError::semantic(
                        format!(
                            "parse-kv: unknown parameter '{other}'{}",
                            crate::error::did_you_mean(
                                other,
                                [
                                    "pair_delimiter",
                                    "kv_delimiter",
                                    "quote",
                                    "escape",
                                    "greedy",
                                    "regex"
                                ]
                            )
                        ),
                        value.span,
                    ));
                }
            }
        }
        if regex.is_empty() && (pair.is_empty() || kv.is_empty()) {
            return Err(KqlError::semantic(
                "parse-kv needs with (pair_delimiter=..., kv_delimiter=...) or with (regex=...)",
                span,
            ));
        }
        if !regex.is_empty() {
            match regex::Regex::new(&regex) {
                Ok(r) if r.captures_len() >= 3 => {}
                Ok(_) => {
                    return Err(KqlError::semantic(
                        "parse-kv: the regex needs two groups (the key, then the value)",
                        span,
                    ));
                }
                Err(e) => {
                    return Err(KqlError::semantic(
                        format!("parse-kv: invalid regex: {e}"),
                        span,
                    ));
                }
            }
        }
        let args = vec![
            subject,
            TExpr::string(pair),
            TExpr::string(kv),
            TExpr::string(quote),
            TExpr::string(escape),
            TExpr::bool(greedy),
            TExpr::string(regex),
        ];
        let types = args.iter().map(|a| a.ty).collect();
        let bag = TExpr::new(
            crate::udf::rowfn::RowUdf::call(
                "parse_kv",
                args.into_iter().map(|a| a.expr).collect(),
                types,
                KustoType::Dynamic,
                false,
                crate::functions::kv::parse_kv_row,
            ),
            KustoType::Dynamic,
        );
        let hidden = self.fresh("kv");
        let mut items = rel.scope_cols();
        items.push((hidden, bag));
        let with = rel.project(items)?;
        let i = with.cols.len() - 1;
        let bag = with.texpr(i);
        let mut out: Vec<(String, TExpr)> = (0..i)
            .map(|k| (with.cols[k].name.clone(), with.texpr(k)))
            .collect();
        for (name, ty) in columns {
            let v = convert(
                dynamic_path(
                    bag.clone(),
                    vec![TExpr::string(name.name.clone())],
                    name.span,
                )?,
                *ty,
            );
            match out.iter_mut().find(|(n, _)| *n == name.name) {
                Some(slot) => slot.1 = v,
                None => out.push((name.name.clone(), v)),
            }
        }
        with.project(out)
    }
}
