//! `partition by Column (subquery)`: the subquery run on the rows of each value of the column,
//! and the union of the results.
//!
//! Two plans, chosen by what the planner knows:
//! - when the partition values are known while planning (the rows come from the query's own
//!   constants: `datatable`, `range`, ...), one branch per value, `where Column == value`
//!   then the subquery, and the union of the branches. Any subquery works, and so does the
//!   legacy form `{ subquery with its own source }`, where `toscalar(Column)` (or `Column`)
//!   is the branch's value;
//! - over rows read at run time, the subquery is planned over all rows at once, partitioned by
//!   the column, as `mv-apply` plans its subquery: `summarize` groups by it too, `take` and
//!   `top` keep the first rows of each partition, window functions (`row_number`, `prev`, ...)
//!   are partitioned by it. The operators that cannot be planned so (`join`, `union`, `scan`,
//!   `make-series`, ...) are refused, and so is the legacy form, whose branches need the values.
//!
//! `hint.strategy` (`native`, `shuffle`, `legacy`) and the other hints choose how Kusto runs
//! the partitions; they change no result, and DataFusion parallelizes the plan its own way.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{LogicalPlanBuilder, lit};

use super::rel::{Rel, TExpr};
use super::{Binding, Env, Planner, ops};
use crate::ast::{Partition, PartitionBody};
use crate::error::{KqlError, Span};

/// The most partition values planned as branches of a union.
const MAX_BRANCHES: usize = 1_000;

impl Planner<'_> {
    /// `partition [hints] by Column (subquery)` or `{ subquery }`.
    pub(crate) fn partition(
        &mut self,
        rel: Rel,
        part: &Partition,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let key = rel.require(&part.column.name, part.column.span)?;
        if let Some(values) = self.partition_values(&rel, key, span)? {
            let mut branches = Vec::with_capacity(values.len());
            for v in values {
                let test = match v.is_null() {
                    true => rel.column(key).is_null(),
                    false => rel.column(key).eq(lit(v.clone())),
                };
                let rows = rel.filter(test)?;
                let branch = match &part.body {
                    PartitionBody::Ops(list) => {
                        let mut benv = env.clone();
                        let mut b = rows;
                        for op in list {
                            b = ops::apply(self, b, op, &mut benv)?;
                        }
                        b
                    }
                    PartitionBody::Source(query) => {
                        let mut benv = env.clone();
                        benv.bind(
                            &part.column.name,
                            Binding::Scalar(TExpr::lit(v, rel.cols[key].ty)),
                        );
                        self.tabular(query, &benv)?
                    }
                };
                branches.push((String::new(), branch));
            }
            if branches.is_empty() {
                // No rows: the subquery over the empty input gives the result's columns.
                return self.partition_of_nothing(rel, part, env);
            }
            let mut out = self.union_rels(branches, false, None, span)?;
            out.ordered = false;
            return Ok(out);
        }
        let PartitionBody::Ops(list) = &part.body else {
            return Err(KqlError::unsupported(
                "partition with a subquery of its own source ('{ ... }') over rows read at run time: its branches need the partition values while planning; write the subquery in parentheses, over the partition's rows",
                span,
            ));
        };
        // All partitions at once: a copy of the column tells them apart (the subquery may
        // drop or change the column itself).
        let pid = self.fresh("partition");
        let mut items = rel.scope_cols();
        items.push((pid.clone(), rel.texpr(key)));
        let marked = rel.project(items)?;
        let sub = self.partitioned_ops(marked, list, &pid, "partition", env)?;
        let kept = (0..sub.cols.len())
            .filter(|i| sub.cols[*i].name != pid)
            .map(|i| (sub.cols[i].name.clone(), sub.texpr(i)))
            .collect();
        let mut out = sub.project(kept)?;
        out.ordered = false;
        out.keys = Vec::new();
        Ok(out)
    }

    /// The distinct values of column `key`, sorted, when the rows are known while planning and
    /// there are not too many of them.
    fn partition_values(
        &mut self,
        rel: &Rel,
        key: usize,
        span: Span,
    ) -> Result<Option<Vec<ScalarValue>>, KqlError> {
        if !self.is_constant(&rel.plan) {
            return Ok(None);
        }
        let only = rel.project(vec![(rel.cols[key].name.clone(), rel.texpr(key))])?;
        let plan = LogicalPlanBuilder::from(only.plan.clone())
            .distinct()?
            .build()?;
        let distinct = Rel { plan, ..only };
        let Some(batches) = self.constant_rows_of(&distinct, "partition", span)? else {
            return Ok(None);
        };
        let mut values = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                values.push(ScalarValue::try_from_array(b.column(0), r)?);
            }
        }
        if values.len() > MAX_BRANCHES {
            return Ok(None);
        }
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Ok(Some(values))
    }

    /// The result of a partition over no rows: the subquery's columns and no rows.
    fn partition_of_nothing(
        &mut self,
        rel: Rel,
        part: &Partition,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sub = match &part.body {
            PartitionBody::Ops(list) => {
                let mut benv = env.clone();
                let mut b = rel;
                for op in list {
                    b = ops::apply(self, b, op, &mut benv)?;
                }
                b
            }
            PartitionBody::Source(query) => {
                let mut benv = env.clone();
                let ty = rel.cols.iter().find(|c| c.name == part.column.name);
                let ty = ty.map_or(crate::types::KustoType::String, |c| c.ty);
                benv.bind(&part.column.name, Binding::Scalar(TExpr::null(ty)));
                self.tabular(query, &benv)?
            }
        };
        let plan = LogicalPlanBuilder::from(sub.plan)
            .filter(lit(false))?
            .build()?;
        Ok(Rel {
            plan,
            cols: sub.cols,
            ordered: false,
            keys: Vec::new(),
        })
    }
}
