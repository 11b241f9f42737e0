//! `SUM`, `AVG`, `COUNT`, `MIN` and `MAX` of a column, aggregated by dictionary key.
//!
//! A batch whose group column was read as a dictionary (`super::dictionary`) has its rows
//! counted by key ([`super::keys::StringGroups::count_dictionary`]) when every aggregate can be
//! taken that way: row counts ([`super::row_count`]) and the aggregates here. Each of these
//! adds a row's value to its key's partial state (eight lanes per key, as keys are counted, so that
//! rows of one key do not wait on one sum), and then hands the batch's partial states, one row
//! per value a row held, to DataFusion's own accumulator through `merge_batch`, as a final
//! aggregation merges partial ones: no group id per row, and no per-row work in DataFusion's
//! accumulator. `top hosts with average latency` (`COUNT(*)`, `AVG` by `Host`) spent 13% of its
//! time giving rows ids and adding them in DataFusion's accumulators.
//!
//! Only aggregates whose partial state folds the rows as DataFusion's accumulator would qualify:
//! `COUNT(column)`, `SUM` of `Int64` or `Float64` (wrapping, as DataFusion's `SUM` of `Int64` in
//! a partial aggregation), `AVG` of `Float64`, and `MIN` and `MAX` of `Int64` or `Float64`
//! (folded row after row from DataFusion's starting value, one lane), neither `DISTINCT` nor
//! filtered, and only in a batch whose argument has no null; for a float `MIN` or `MAX`, no NaN
//! either: DataFusion's keep the last value that does not compare, which depends on the rows'
//! order. The state's types are checked against the aggregate's own state fields.
//! A float sum is added in another order than row by row (per lane, per key, then per batch), as
//! DataFusion's partial and final aggregations already add partial sums of partitions.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, Int64Array, PrimitiveArray, UInt64Array,
};
use arrow::datatypes::{ArrowNativeTypeOp, DataType, Float64Type, Int64Type, Schema};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::GroupsAccumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::keys::{KEY_LANES, KeyRows};

/// Partial sums per key: one per lane (as many as the keys' counters).
const LANES: usize = KEY_LANES;

/// What an aggregate taken by key computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `COUNT(column)`: the rows of a batch without nulls in it.
    Count,
    /// `SUM` of `Int64`.
    SumInt,
    /// `SUM` of `Float64`.
    SumFloat,
    /// `AVG` of `Float64`: its state is the rows and their sum.
    Avg,
    /// `MIN` or `MAX` of `Int64`.
    ExtremeInt(Extreme),
    /// `MIN` or `MAX` of `Float64`, in a batch without NaN.
    ExtremeFloat(Extreme),
}

/// Which end a `MIN` or `MAX` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extreme {
    Min,
    Max,
}

impl Extreme {
    /// DataFusion's starting value: the type's largest for a `MIN`, its smallest for a `MAX`.
    fn start<N>(self, largest: N, smallest: N) -> N {
        match self {
            Self::Min => largest,
            Self::Max => smallest,
        }
    }
}

impl Kind {
    /// The types of the partial state `merge_batch` takes, in order.
    fn state_types(self) -> Vec<DataType> {
        match self {
            Self::Count => vec![DataType::Int64],
            Self::SumInt => vec![DataType::Int64],
            Self::SumFloat => vec![DataType::Float64],
            Self::Avg => vec![DataType::UInt64, DataType::Float64],
            Self::ExtremeInt(_) => vec![DataType::Int64],
            Self::ExtremeFloat(_) => vec![DataType::Float64],
        }
    }

    /// Whether `values` is what this kind adds (any type for a count).
    fn takes(self, values: &dyn Array) -> bool {
        match self {
            Self::Count => true,
            Self::SumInt | Self::ExtremeInt(_) => values.data_type() == &DataType::Int64,
            Self::SumFloat | Self::Avg => values.data_type() == &DataType::Float64,
            // DataFusion's float `MIN`/`MAX` keep the last value that does not compare (NaN),
            // which depends on the rows' order: a batch with NaN keeps the ids' way.
            Self::ExtremeFloat(_) => values
                .as_primitive_opt::<Float64Type>()
                .is_some_and(|v| !v.values().iter().any(|x| x.is_nan())),
        }
    }
}

/// The kind `aggregate` (with `filter`, over rows of `input`) is taken by key as, if any.
pub(crate) fn kind_of(
    aggregate: &AggregateFunctionExpr,
    filter: Option<&Arc<dyn PhysicalExpr>>,
    input: &Schema,
) -> Option<Kind> {
    if aggregate.is_distinct() || filter.is_some() {
        return None;
    }
    let arguments = aggregate.expressions();
    let [argument] = arguments.as_slice() else {
        return None;
    };
    let argument = argument.data_type(input).ok()?;
    let kind = match (aggregate.fun().name(), argument) {
        ("count", _) => Kind::Count,
        ("sum", DataType::Int64) => Kind::SumInt,
        ("sum", DataType::Float64) => Kind::SumFloat,
        ("avg", DataType::Float64) => Kind::Avg,
        ("min", DataType::Int64) => Kind::ExtremeInt(Extreme::Min),
        ("max", DataType::Int64) => Kind::ExtremeInt(Extreme::Max),
        ("min", DataType::Float64) => Kind::ExtremeFloat(Extreme::Min),
        ("max", DataType::Float64) => Kind::ExtremeFloat(Extreme::Max),
        _ => return None,
    };
    let state: Vec<DataType> = aggregate
        .state_fields()
        .ok()?
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    (state == kind.state_types()).then_some(kind)
}

/// DataFusion's accumulator of an aggregate of [`Kind`], with what adding by key needs.
pub(crate) struct Keyed {
    kind: Kind,
    inner: Box<dyn GroupsAccumulator>,
    /// Each key's sums of a batch, in lanes (the type of [`Kind::SumInt`], or of the others).
    ints: Vec<[i64; LANES]>,
    floats: Vec<[f64; LANES]>,
    /// Each key's `MIN` or `MAX` of a batch (one lane: a lane would keep another of two equal
    /// values, `-0.0` and `0.0`, than row order does).
    int_extremes: Vec<i64>,
    float_extremes: Vec<f64>,
    /// The groups of a batch's keys, in [`KeyRows`]' order.
    groups: Vec<usize>,
}

impl Keyed {
    pub(crate) fn new(kind: Kind, inner: Box<dyn GroupsAccumulator>) -> Self {
        Self {
            kind,
            inner,
            ints: Vec::new(),
            floats: Vec::new(),
            int_extremes: Vec::new(),
            float_extremes: Vec::new(),
            groups: Vec::new(),
        }
    }

    pub(crate) fn inner(&mut self) -> &mut dyn GroupsAccumulator {
        self.inner.as_mut()
    }

    /// Whether a batch's `values` (this aggregate's argument) can be added by key: of the
    /// kind's type, without nulls (logical ones: a dictionary's null values count).
    pub(crate) fn takes(&self, values: &dyn Array) -> bool {
        self.kind.takes(values) && values.logical_null_count() == 0
    }

    /// Adds a batch's `values` (which [`Self::takes`]), whose rows have `keys` into a dictionary
    /// of `dictionary_len` values, to the groups `rows` gives each key (each key a row holds,
    /// once, with its group and rows).
    ///
    /// # Errors
    /// A key outside the dictionary, values of another length than the keys, or what the
    /// accumulator's `merge_batch` says.
    pub(crate) fn add(
        &mut self,
        values: &dyn Array,
        keys: &[i32],
        dictionary_len: usize,
        rows: &[KeyRows],
        total_num_groups: usize,
    ) -> Result<()> {
        if values.len() != keys.len() {
            return internal_err!("{} values for {} keys", values.len(), keys.len());
        }
        self.groups.clear();
        self.groups.extend(rows.iter().map(|r| r.group));
        let column = KeyColumn {
            values,
            keys,
            dictionary_len,
            rows,
        };
        let state: Vec<ArrayRef> = match self.kind {
            Kind::Count => vec![Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.rows),
            ))],
            Kind::SumInt => vec![Arc::new(sum_by_key::<Int64Type>(&column, &mut self.ints)?)],
            Kind::ExtremeInt(extreme) => vec![Arc::new(extreme_by_key::<Int64Type>(
                &column,
                extreme,
                extreme.start(i64::MAX, i64::MIN),
                &mut self.int_extremes,
            )?)],
            Kind::ExtremeFloat(extreme) => vec![Arc::new(extreme_by_key::<Float64Type>(
                &column,
                extreme,
                extreme.start(f64::MAX, f64::MIN),
                &mut self.float_extremes,
            )?)],
            Kind::SumFloat | Kind::Avg => {
                let sums: ArrayRef =
                    Arc::new(sum_by_key::<Float64Type>(&column, &mut self.floats)?);
                if self.kind == Kind::Avg {
                    // `AVG`'s state: the rows, then their sum.
                    let counts =
                        UInt64Array::from_iter_values(rows.iter().map(|r| r.rows.unsigned_abs()));
                    vec![Arc::new(counts), sums]
                } else {
                    vec![sums]
                }
            }
        };
        self.inner
            .merge_batch(&state, &self.groups, total_num_groups)
    }

    pub(crate) fn size(&self) -> usize {
        self.inner.size()
            + self.ints.capacity() * size_of::<[i64; LANES]>()
            + self.floats.capacity() * size_of::<[f64; LANES]>()
            + self.int_extremes.capacity() * size_of::<i64>()
            + self.float_extremes.capacity() * size_of::<f64>()
            + self.groups.capacity() * size_of::<usize>()
    }
}

/// The sum of each of `rows`' keys' values (wrapping), in `rows`' order: row `i` is added in
/// lane `i % LANES` of its key, and a key's lanes are added at the end.
fn sum_by_key<T: ArrowPrimitiveType>(
    column: &KeyColumn<'_>,
    lanes: &mut Vec<[T::Native; LANES]>,
) -> Result<PrimitiveArray<T>> {
    let KeyColumn {
        values,
        keys,
        dictionary_len,
        rows,
    } = *column;
    let Some(values) = values.as_primitive_opt::<T>() else {
        return internal_err!(
            "values of {} summed as {}",
            values.data_type(),
            T::DATA_TYPE
        );
    };
    lanes.clear();
    lanes.resize(dictionary_len, [T::Native::ZERO; LANES]);
    let values = values.values();
    let chunks = keys.chunks_exact(LANES).zip(values.chunks_exact(LANES));
    let rest = keys.len() - keys.len() % LANES;
    for (chunk, numbers) in chunks {
        for lane in 0..LANES {
            match usize::try_from(chunk[lane])
                .ok()
                .and_then(|k| lanes.get_mut(k))
            {
                Some(sums) => sums[lane] = sums[lane].add_wrapping(numbers[lane]),
                None => return bad_key(chunk[lane], dictionary_len),
            }
        }
    }
    for (&key, &number) in keys[rest..].iter().zip(&values[rest..]) {
        match usize::try_from(key).ok().and_then(|k| lanes.get_mut(k)) {
            Some(sums) => sums[0] = sums[0].add_wrapping(number),
            None => return bad_key(key, dictionary_len),
        }
    }
    let mut sums = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(l) = lanes.get(r.key) else {
            return bad_key(r.key as i32, dictionary_len);
        };
        // Pairwise: lane i with lane i + width, halving the width.
        let mut l = *l;
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                l[i] = l[i].add_wrapping(l[i + width]);
            }
        }
        sums.push(l[0]);
    }
    Ok(PrimitiveArray::<T>::from_iter_values(sums))
}

/// A batch's argument with its rows' dictionary keys and the keys the rows held.
#[derive(Clone, Copy)]
struct KeyColumn<'a> {
    values: &'a dyn Array,
    keys: &'a [i32],
    dictionary_len: usize,
    rows: &'a [KeyRows],
}

/// Each of `column.rows`' keys' `MIN` or `MAX`, in `rows`' order, as DataFusion's accumulator
/// folds it (from `start`, its own starting value; a row's value replaces the key's when it
/// compares less, or greater, by `partial_cmp`), row after row.
fn extreme_by_key<T: ArrowPrimitiveType>(
    column: &KeyColumn<'_>,
    extreme: Extreme,
    start: T::Native,
    scratch: &mut Vec<T::Native>,
) -> Result<PrimitiveArray<T>>
where
    T::Native: PartialOrd,
{
    let Some(values) = column.values.as_primitive_opt::<T>() else {
        return internal_err!(
            "values of {} folded as {}",
            column.values.data_type(),
            T::DATA_TYPE
        );
    };
    let keeps = match extreme {
        Extreme::Min => std::cmp::Ordering::Less,
        Extreme::Max => std::cmp::Ordering::Greater,
    };
    scratch.clear();
    scratch.resize(column.dictionary_len, start);
    for (&key, &value) in column.keys.iter().zip(values.values().iter()) {
        match usize::try_from(key).ok().and_then(|k| scratch.get_mut(k)) {
            Some(current) => {
                if value.partial_cmp(current) == Some(keeps) {
                    *current = value;
                }
            }
            None => return bad_key(key, column.dictionary_len),
        }
    }
    let mut folded = Vec::with_capacity(column.rows.len());
    for r in column.rows {
        match scratch.get(r.key) {
            Some(&value) => folded.push(value),
            None => return bad_key(r.key as i32, column.dictionary_len),
        }
    }
    Ok(PrimitiveArray::<T>::from_iter_values(folded))
}

fn bad_key<T>(key: i32, dictionary_len: usize) -> Result<T> {
    internal_err!("dictionary key {key} outside a dictionary of {dictionary_len} values")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int32Array, Int64Array};
    use arrow::datatypes::{Field, SchemaRef};
    use datafusion::functions_aggregate::average::avg_udaf;
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::{AggregateUDF, EmitTo};
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
        ]))
    }

    fn aggregate(fun: Arc<AggregateUDF>, column: &str, distinct: bool) -> AggregateFunctionExpr {
        let schema = schema();
        let mut builder = AggregateExprBuilder::new(fun, vec![col(column, &schema).unwrap()])
            .schema(schema)
            .alias("a");
        if distinct {
            builder = builder.distinct();
        }
        builder.build().unwrap()
    }

    #[test]
    fn counts_sums_extremes_and_float_averages_are_taken_by_key_and_nothing_else() {
        let schema = schema();
        let cases = [
            (count_udaf(), "n", false, Some(Kind::Count)),
            (sum_udaf(), "i", false, Some(Kind::SumInt)),
            (sum_udaf(), "f", false, Some(Kind::SumFloat)),
            (avg_udaf(), "f", false, Some(Kind::Avg)),
            (
                min_udaf(),
                "f",
                false,
                Some(Kind::ExtremeFloat(Extreme::Min)),
            ),
            (max_udaf(), "i", false, Some(Kind::ExtremeInt(Extreme::Max))),
            // The average of integers (which the planner casts to floats first, when it plans
            // it); the `MIN` of an `Int32`.
            (avg_udaf(), "i", false, None),
            (min_udaf(), "n", false, None),
            (sum_udaf(), "i", true, None),
            (count_udaf(), "n", true, None),
        ];
        for (fun, column, distinct, kind) in cases {
            let name = fun.name().to_owned();
            let expr = aggregate(fun, column, distinct);
            assert_eq!(kind_of(&expr, None, &schema), kind, "{name}({column})");
        }
        let filter: Arc<dyn PhysicalExpr> = col("n", &schema).unwrap();
        let expr = aggregate(sum_udaf(), "i", false);
        assert_eq!(kind_of(&expr, Some(&filter), &schema), None, "filtered");
    }

    /// Three batches of 1003, 4 and 2 rows over a dictionary of 6 keys (key 5 never held), each
    /// taken by key and, for reference, by group id into DataFusion's accumulator; both
    /// evaluated. Groups are the keys in reverse (key 4 is group 0), to tell a key from its
    /// group.
    fn by_key_and_by_id(
        fun: Arc<AggregateUDF>,
        values: &dyn Fn(usize) -> ArrayRef,
    ) -> (ArrayRef, ArrayRef) {
        let schema = schema();
        let column = match values(1).data_type() {
            DataType::Int64 => "i",
            DataType::Float64 => "f",
            _ => "n",
        };
        let expr = aggregate(fun, column, false);
        let kind = kind_of(&expr, None, &schema).expect("taken by key");
        let mut keyed = Keyed::new(kind, expr.create_groups_accumulator().unwrap());
        let mut reference = expr.create_groups_accumulator().unwrap();
        let pattern = [0, 0, 0, 1, 4, 2, 0, 4, 1, 3, 3];
        let mut start = 0;
        for len in [1003, 4, 2] {
            let keys: Vec<i32> = (start..start + len)
                .map(|i| pattern[i % pattern.len()])
                .collect();
            start += len;
            let batch_values = values(len);
            assert!(keyed.takes(batch_values.as_ref()));
            let mut rows: Vec<KeyRows> = (0..6)
                .map(|key| KeyRows {
                    key,
                    group: 4_usize.wrapping_sub(key),
                    rows: keys.iter().filter(|&&k| k as usize == key).count() as i64,
                })
                .filter(|r| r.rows > 0)
                .collect();
            rows.reverse();
            keyed
                .add(batch_values.as_ref(), &keys, 6, &rows, 5)
                .unwrap();
            let ids: Vec<usize> = keys.iter().map(|&k| 4 - k as usize).collect();
            reference
                .update_batch(&[Arc::clone(&batch_values)], &ids, None, 5)
                .unwrap();
        }
        (
            keyed.inner().evaluate(EmitTo::All).unwrap(),
            reference.evaluate(EmitTo::All).unwrap(),
        )
    }

    #[test]
    fn aggregates_by_key_equal_datafusion_by_group_id() {
        let ints = |len: usize| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                (0..len as i64).map(|i| i * 7 - 300),
            ))
        };
        let floats = |len: usize| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                (0..len).map(|i| (i % 97) as f64 * 0.25),
            ))
        };
        let counted =
            |len: usize| -> ArrayRef { Arc::new(Int32Array::from_iter_values(0..len as i32)) };
        // Zeros of both signs as the extremes (equal to `partial_cmp`: the first one kept),
        // and infinities.
        let zeros_up = |len: usize| -> ArrayRef {
            let cycle = [-1.5, 0.0, -0.0, -3.0, -0.0, 0.0, -0.0];
            Arc::new(Float64Array::from_iter_values(
                (0..len).map(|i| cycle[(i * 5 + len) % cycle.len()]),
            ))
        };
        let zeros_down = |len: usize| -> ArrayRef {
            let cycle = [1.5, -0.0, 0.0, 3.0, 0.0, -0.0, 0.0];
            Arc::new(Float64Array::from_iter_values(
                (0..len).map(|i| cycle[(i * 3 + len) % cycle.len()]),
            ))
        };
        let infinite = |len: usize| -> ArrayRef {
            let cycle = [f64::INFINITY, -2.0, f64::NEG_INFINITY, 4.0];
            Arc::new(Float64Array::from_iter_values(
                (0..len).map(|i| cycle[i % cycle.len()]),
            ))
        };
        for (fun, values) in [
            (count_udaf(), &counted as &dyn Fn(usize) -> ArrayRef),
            (sum_udaf(), &ints),
            (sum_udaf(), &floats),
            (avg_udaf(), &floats),
            (min_udaf(), &ints),
            (max_udaf(), &ints),
            (min_udaf(), &floats),
            (max_udaf(), &zeros_up),
            (min_udaf(), &zeros_down),
            (max_udaf(), &infinite),
            (min_udaf(), &infinite),
        ] {
            let name = fun.name().to_owned();
            let (got, expected) = by_key_and_by_id(fun, values);
            // Quarters sum exactly in any order: the answers are equal, not just close.
            assert_eq!(&got, &expected, "{name}");
            assert_eq!(got.len(), 5);
            // Equal as arrays is not enough for zeros' signs: compare the bits.
            if let (Some(got), Some(expected)) = (
                got.as_primitive_opt::<Float64Type>(),
                expected.as_primitive_opt::<Float64Type>(),
            ) {
                let bits = |a: &PrimitiveArray<Float64Type>| -> Vec<u64> {
                    a.values().iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(got), bits(expected), "{name}");
            }
        }
    }

    #[test]
    fn a_batch_with_nulls_or_another_type_is_not_taken_and_a_bad_key_is_an_error() {
        let schema = schema();
        let expr = aggregate(avg_udaf(), "f", false);
        let mut keyed = Keyed::new(Kind::Avg, expr.create_groups_accumulator().unwrap());
        let with_null = Float64Array::from(vec![Some(1.0), None]);
        assert!(!keyed.takes(&with_null));
        assert!(!keyed.takes(&Int64Array::from(vec![1, 2])));
        let max = Keyed::new(
            Kind::ExtremeFloat(Extreme::Max),
            aggregate(max_udaf(), "f", false)
                .create_groups_accumulator()
                .unwrap(),
        );
        assert!(max.takes(&Float64Array::from(vec![1.0, f64::INFINITY])));
        assert!(!max.takes(&Float64Array::from(vec![1.0, f64::NAN])), "NaN");
        // `COUNT` of a dictionary column whose valid key points at a null value: a null row.
        let counted = Keyed::new(
            Kind::Count,
            aggregate(count_udaf(), "n", false)
                .create_groups_accumulator()
                .unwrap(),
        );
        let null_value = arrow::array::DictionaryArray::<arrow::datatypes::Int32Type>::new(
            Int32Array::from(vec![0, 1]),
            Arc::new(arrow::array::StringArray::from(vec![Some("a"), None])),
        );
        assert_eq!(null_value.null_count(), 0);
        assert!(!counted.takes(&null_value));
        assert!(counted.takes(&Int32Array::from(vec![4, 5])));
        let values = Float64Array::from(vec![1.0, 2.0]);
        let rows = [KeyRows {
            key: 0,
            group: 0,
            rows: 2,
        }];
        assert!(
            keyed.add(&values, &[0, 2], 2, &rows, 1).is_err(),
            "key 2 of 2 values"
        );
        assert!(
            keyed.add(&values, &[0], 2, &rows, 1).is_err(),
            "one key for two values"
        );
        let _ = schema;
    }
}
