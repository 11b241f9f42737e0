//! Kusto aggregations DataFusion has no equivalent of: `make_list`, `make_set`, `make_bag`
//! (dynamic results) and `percentile` (nearest rank, exact).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, Volatility,
};
use serde_json::Value;

use super::value::{Val, build_column, read_column};
use crate::types::KustoType;

/// What the aggregation computes.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectKind {
    /// `make-series`: `[bin index, value]` pairs into an array of `n` values, `default`
    /// (JSON) where a bin has none.
    Series {
        /// The number of bins.
        n: usize,
        /// The value of an empty bin.
        default: Value,
    },
    /// `make_list`: every non-null value.
    List,
    /// `make_list_with_nulls`: every value, nulls included.
    ListWithNulls,
    /// `make_set`: distinct non-null values.
    Set,
    /// `make_bag`: the union of property bags.
    Bag,
    /// `percentile(x, p)`: the nearest-rank percentile.
    Percentile(f64),
    /// `buildschema(d)`: the schema that admits every value.
    Schema,
}

/// A collecting aggregation over values of Kusto type `input`.
#[derive(Debug)]
pub struct CollectUdaf {
    kind: CollectKind,
    input: KustoType,
    max: Option<usize>,
    name: String,
    signature: Signature,
}

impl PartialEq for CollectUdaf {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.input == o.input && self.max == o.max && self.kind == o.kind
    }
}
impl Eq for CollectUdaf {}
impl Hash for CollectUdaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.input.hash(state);
        self.max.hash(state);
    }
}

impl CollectUdaf {
    /// The output's Kusto type.
    pub fn output(&self) -> KustoType {
        match &self.kind {
            CollectKind::Percentile(_) => self.input,
            _ => KustoType::Dynamic,
        }
    }
}

/// A call of the aggregation `kind` on `arg` (of Kusto type `input`), keeping at most `max`
/// values, filtered by `filter` (the `*if` variants).
pub fn call(
    kind: CollectKind,
    arg: Expr,
    input: KustoType,
    max: Option<usize>,
    filter: Option<Expr>,
) -> Expr {
    let name = match kind {
        CollectKind::List => "make_list".to_owned(),
        CollectKind::ListWithNulls => "make_list_with_nulls".to_owned(),
        CollectKind::Set => "make_set".to_owned(),
        CollectKind::Bag => "make_bag".to_owned(),
        CollectKind::Percentile(p) => format!("percentile_{p}"),
        CollectKind::Schema => "buildschema".to_owned(),
        CollectKind::Series { n, .. } => format!("make_series_{n}"),
    };
    let udaf = AggregateUDF::from(CollectUdaf {
        kind,
        input,
        max,
        name,
        signature: Signature::any(1, Volatility::Immutable),
    });
    Expr::AggregateFunction(AggregateFunction::new_udf(
        Arc::new(udaf),
        vec![arg],
        false,
        filter.map(Box::new),
        vec![],
        None,
    ))
}

impl AggregateUDFImpl for CollectUdaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.output().arrow())
    }

    fn accumulator(&self, _: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Collect {
            kind: self.kind.clone(),
            input: self.input,
            output: self.output(),
            max: self.max,
            values: Vec::new(),
            bag: serde_json::Map::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_state", args.name),
            DataType::Utf8,
            true,
        ))])
    }
}

#[derive(Debug)]
struct Collect {
    kind: CollectKind,
    input: KustoType,
    output: KustoType,
    max: Option<usize>,
    values: Vec<Value>,
    bag: serde_json::Map<String, Value>,
}

impl Collect {
    fn full(&self) -> bool {
        self.max.is_some_and(|m| self.values.len() >= m)
    }

    fn add(&mut self, v: Value) {
        // make_list and make_set take the elements of an array value (one level), as Kusto.
        if let (CollectKind::List | CollectKind::Set, Value::Array(items)) = (&self.kind, &v) {
            for x in items.clone() {
                self.add_one(x);
            }
            return;
        }
        self.add_one(v);
    }

    fn add_one(&mut self, v: Value) {
        match &self.kind {
            CollectKind::Series { .. } => {
                if !v.is_null() {
                    self.values.push(v);
                }
            }
            CollectKind::List | CollectKind::Percentile(_) | CollectKind::Schema => {
                if !v.is_null() && !self.full() {
                    self.values.push(v);
                }
            }
            CollectKind::ListWithNulls => {
                if !self.full() {
                    self.values.push(v);
                }
            }
            CollectKind::Set => {
                if !v.is_null() && !self.full() && !self.values.contains(&v) {
                    self.values.push(v);
                }
            }
            CollectKind::Bag => {
                if let Value::Object(m) = v {
                    for (k, x) in m {
                        if self.max.is_none_or(|max| self.bag.len() < max) {
                            self.bag.entry(k).or_insert(x);
                        }
                    }
                }
            }
        }
    }
}

impl Accumulator for Collect {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return Ok(());
        };
        for v in read_column(a, self.input)? {
            let j = match (&self.kind, &v) {
                (CollectKind::Series { .. }, other) => other.as_dynamic(),
                (CollectKind::Percentile(_), Val::DateTime(t) | Val::Timespan(t)) => {
                    Value::Number((*t).into())
                }
                _ => v.to_json(),
            };
            self.add(j);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = match &self.kind {
            CollectKind::Series { n, default } => {
                let mut series = vec![default.clone(); *n];
                for pair in &self.values {
                    if let Value::Array(p) = pair
                        && let (Some(i), Some(v)) = (p.first().and_then(Value::as_u64), p.get(1))
                        && let Some(slot) = usize::try_from(i).ok().and_then(|i| series.get_mut(i))
                    {
                        *slot = if v.is_null() {
                            default.clone()
                        } else {
                            v.clone()
                        };
                    }
                }
                Val::Dynamic(Value::Array(series))
            }
            CollectKind::Bag => Val::Dynamic(Value::Object(self.bag.clone())),
            CollectKind::Schema => {
                let mut node = super::schema::Node::default();
                for v in &self.values {
                    node.add(v);
                }
                node.finish().map_or(Val::Null, Val::Dynamic)
            }
            CollectKind::Percentile(p) => {
                let p = *p;
                let mut xs: Vec<f64> = self.values.iter().filter_map(Value::as_f64).collect();
                if xs.is_empty() {
                    Val::Null
                } else {
                    xs.sort_by(f64::total_cmp);
                    let n = xs.len();
                    let rank = ((p / 100.0) * n as f64).ceil() as usize;
                    let x = xs[rank.clamp(1, n) - 1];
                    match self.output {
                        KustoType::DateTime => Val::DateTime(x as i64),
                        KustoType::Timespan => Val::Timespan(x as i64),
                        KustoType::Int | KustoType::Long => Val::Long(x as i64),
                        _ => Val::Real(x),
                    }
                }
            }
            _ => Val::Dynamic(Value::Array(self.values.clone())),
        };
        let array = build_column(&[out], self.output);
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.len() * 32 + self.bag.len() * 48
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let state = match &self.kind {
            CollectKind::Bag => Value::Object(self.bag.clone()),
            _ => Value::Array(self.values.clone()),
        };
        Ok(vec![ScalarValue::Utf8(Some(state.to_string()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(a) = states.first() else {
            return Ok(());
        };
        let a = arrow::compute::cast(a, &DataType::Utf8)?;
        for s in a.as_string::<i32>().iter().flatten() {
            match serde_json::from_str::<Value>(s) {
                // A state holds values already added: an array among them stays whole (adding
                // it again would take its elements a second time).
                Ok(Value::Array(items)) => {
                    for v in items {
                        self.add_one(v);
                    }
                }
                Ok(bag @ Value::Object(_)) => self.add(bag),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Collect {
        Collect {
            kind: CollectKind::List,
            input: KustoType::Dynamic,
            output: KustoType::Dynamic,
            max: None,
            values: Vec::new(),
            bag: serde_json::Map::new(),
        }
    }

    #[test]
    fn merged_states_keep_arrays_whole() {
        // Two partial lists of make_list(pack_array(pack_array(i, i))): each row adds [i, i].
        let mut partials = Vec::new();
        for i in [1, 2] {
            let mut acc = list();
            acc.add(serde_json::json!([[i, i]]));
            partials.push(acc.state().unwrap().remove(0));
        }
        let states: ArrayRef = ScalarValue::iter_to_array(partials).unwrap();
        let mut total = list();
        total.merge_batch(&[states]).unwrap();
        assert_eq!(
            total.values,
            [serde_json::json!([1, 1]), serde_json::json!([2, 2])]
        );
    }
}
