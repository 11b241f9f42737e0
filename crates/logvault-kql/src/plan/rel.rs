//! A relation being planned: a DataFusion plan and the Kusto view of its columns.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SortExpr};

use crate::error::{KqlError, Span, did_you_mean};
use crate::types::{KustoColumn, KustoType};

/// A typed scalar expression: a DataFusion expression and its Kusto type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TExpr {
    /// The expression.
    pub expr: Expr,
    /// Its Kusto type.
    pub ty: KustoType,
}

impl TExpr {
    pub(crate) fn new(expr: Expr, ty: KustoType) -> Self {
        Self { expr, ty }
    }

    /// A literal of Kusto type `ty`.
    pub(crate) fn lit(value: ScalarValue, ty: KustoType) -> Self {
        Self::new(Expr::Literal(value, None), ty)
    }

    /// A typed null.
    pub(crate) fn null(ty: KustoType) -> Self {
        let v = ScalarValue::try_from(&ty.arrow()).unwrap_or(ScalarValue::Null);
        Self::lit(v, ty)
    }

    /// A string literal.
    pub(crate) fn string(s: impl Into<String>) -> Self {
        Self::lit(ScalarValue::Utf8(Some(s.into())), KustoType::String)
    }

    /// A long literal.
    pub(crate) fn long(v: i64) -> Self {
        Self::lit(ScalarValue::Int64(Some(v)), KustoType::Long)
    }

    /// A real literal.
    pub(crate) fn real(v: f64) -> Self {
        Self::lit(ScalarValue::Float64(Some(v)), KustoType::Real)
    }

    /// A bool literal.
    pub(crate) fn bool(v: bool) -> Self {
        Self::lit(ScalarValue::Boolean(Some(v)), KustoType::Bool)
    }

    /// The literal value, if the expression is one.
    pub(crate) fn literal(&self) -> Option<&ScalarValue> {
        match &self.expr {
            Expr::Literal(v, _) => Some(v),
            Expr::Cast(c) => match c.expr.as_ref() {
                Expr::Literal(v, _) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// The literal text, if the expression is a string literal.
    pub(crate) fn literal_str(&self) -> Option<&str> {
        match self.literal()? {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => Some(s),
            _ => None,
        }
    }
}

/// A relation: a logical plan whose output fields are, in order, `cols`.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    /// The plan.
    pub plan: LogicalPlan,
    /// The Kusto name and type of each output field, in order.
    pub cols: Vec<KustoColumn>,
    /// Whether the rows are in a meaningful order (after `sort`, `top`, `serialize`...).
    pub ordered: bool,
    /// The sort keys that give that order, while they are still valid over the columns (what
    /// window functions order by); empty when the order is the source's own.
    pub keys: Vec<SortExpr>,
}

impl Rel {
    /// A relation over `plan`, whose fields have the Kusto types `types`.
    pub(crate) fn new(plan: LogicalPlan, types: Vec<KustoType>) -> Rel {
        let cols = plan
            .schema()
            .fields()
            .iter()
            .zip(types)
            .map(|(f, ty)| KustoColumn {
                name: f.name().clone(),
                ty,
            })
            .collect();
        Rel {
            plan,
            cols,
            ordered: false,
            keys: Vec::new(),
        }
    }

    /// The DataFusion column of field `i`.
    pub(crate) fn column(&self, i: usize) -> Expr {
        let (q, f) = self.plan.schema().qualified_field(i);
        Expr::Column(Column::new(q.cloned(), f.name()))
    }

    /// The typed column `i`.
    pub(crate) fn texpr(&self, i: usize) -> TExpr {
        TExpr::new(self.column(i), self.cols[i].ty)
    }

    /// The index of column `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.cols.iter().position(|c| c.name == name)
    }

    /// The index of column `name`, or an error suggesting the closest name.
    pub(crate) fn require(&self, name: &str, span: Span) -> Result<usize, KqlError> {
        self.index(name).ok_or_else(|| {
            KqlError::semantic(
                format!(
                    "unknown column '{name}'{}",
                    did_you_mean(name, self.cols.iter().map(|c| c.name.as_str()))
                ),
                span,
            )
        })
    }

    /// The names of the columns.
    pub(crate) fn names(&self) -> Vec<String> {
        self.cols.iter().map(|c| c.name.clone()).collect()
    }

    /// The relation's columns as a scope of typed expressions.
    pub(crate) fn scope_cols(&self) -> Vec<(String, TExpr)> {
        (0..self.cols.len())
            .map(|i| (self.cols[i].name.clone(), self.texpr(i)))
            .collect()
    }

    /// A projection of `items` (name, typed expression) over this relation.
    pub(crate) fn project(&self, items: Vec<(String, TExpr)>) -> Result<Rel, KqlError> {
        let keys = kept_keys(&self.keys, &items);
        let mut rel = project(self.plan.clone(), items, self.ordered)?;
        rel.keys = keys;
        Ok(rel)
    }

    /// A filter.
    pub(crate) fn filter(&self, predicate: Expr) -> Result<Rel, KqlError> {
        let plan = LogicalPlanBuilder::from(self.plan.clone())
            .filter(predicate)?
            .build()?;
        Ok(Rel {
            plan,
            cols: self.cols.clone(),
            ordered: self.ordered,
            keys: self.keys.clone(),
        })
    }
}

/// A projection of `items` over `plan`: each expression aliased to its name (unless it already
/// is the column of that name).
pub(crate) fn project(
    plan: LogicalPlan,
    items: Vec<(String, TExpr)>,
    ordered: bool,
) -> Result<Rel, KqlError> {
    let mut exprs = Vec::with_capacity(items.len());
    let mut cols = Vec::with_capacity(items.len());
    for (name, t) in items {
        let e = match &t.expr {
            Expr::Column(c) if c.name == name => t.expr.clone(),
            _ => t.expr.clone().alias(name.clone()),
        };
        exprs.push(e);
        cols.push(KustoColumn { name, ty: t.ty });
    }
    let plan = super::window::plan_windows(plan, &mut exprs)?;
    let plan = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
    Ok(Rel {
        plan,
        cols,
        ordered,
        keys: Vec::new(),
    })
}

/// `name`, or `name1`, `name2`... if taken.
pub(crate) fn unique_name(name: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == name) {
        return name.to_owned();
    }
    (1..)
        .map(|i| format!("{name}{i}"))
        .find(|n| !taken.iter().any(|t| t == n))
        .unwrap_or_else(|| name.to_owned())
}

/// An empty relation of one row and no columns (the input of `print`).
pub(crate) fn one_row() -> Result<LogicalPlan, KqlError> {
    Ok(LogicalPlanBuilder::empty(true).build()?)
}

/// The plan as shared by subqueries.
pub(crate) fn arc(plan: LogicalPlan) -> Arc<LogicalPlan> {
    Arc::new(plan)
}

/// The sort keys still valid after projecting `items`: those whose columns all pass through
/// under their own names (unqualified, as the projection may drop qualifiers).
fn kept_keys(keys: &[SortExpr], items: &[(String, TExpr)]) -> Vec<SortExpr> {
    let passes = |name: &str| {
        items
            .iter()
            .any(|(n, t)| n == name && matches!(&t.expr, Expr::Column(c) if c.name == *n))
    };
    let valid = keys
        .iter()
        .all(|k| k.expr.column_refs().iter().all(|c| passes(&c.name)));
    if !valid {
        return Vec::new();
    }
    keys.iter()
        .map(|k| {
            let e = k
                .expr
                .clone()
                .transform(|e| {
                    Ok(match e {
                        Expr::Column(c) => {
                            Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
                        }
                        other => Transformed::no(other),
                    })
                })
                .map(|t| t.data)
                .unwrap_or_else(|_| k.expr.clone());
            SortExpr::new(e, k.asc, k.nulls_first)
        })
        .collect()
}
