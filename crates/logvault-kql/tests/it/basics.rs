//! The core operators and functions, checked on small inputs whose answers are known.

use crate::common::{ok, run, schema, texts};

#[tokio::test]
async fn print_and_arithmetic() {
    let o = ok("print a = 1 + 2, b = 7 / 2, c = 7.0 / 2, d = 1d / 1h, e = 'x'").await;
    assert_eq!(
        schema(&o),
        ["a:long", "b:long", "c:real", "d:real", "e:string"]
    );
    assert_eq!(texts(&o), [["3", "3", "3.5", "24", "x"]]);
}

#[tokio::test]
async fn datatable_where_project_sort() {
    let o = ok("datatable(n:string, v:long) ['a', 3, 'b', 1, 'c', 2] \
                | where v > 1 | project n, w = v * 10 | sort by w")
    .await;
    assert_eq!(texts(&o), [["a", "30"], ["c", "20"]]);
}

#[tokio::test]
async fn summarize_with_implicit_names() {
    let o = ok(
        "range x from 1 to 10 step 1 | summarize count(), sum(x), avg(x), max(x) by odd = x % 2",
    )
    .await;
    assert_eq!(
        schema(&o),
        [
            "odd:long",
            "count_:long",
            "sum_x:long",
            "avg_x:real",
            "max_x:long"
        ]
    );
    let mut t = texts(&o);
    t.sort();
    assert_eq!(t, [["0", "5", "30", "6", "10"], ["1", "5", "25", "5", "9"]]);
}

#[tokio::test]
async fn unknown_column_suggests() {
    let e = run("range x from 1 to 3 step 1 | where xx > 1")
        .await
        .unwrap_err();
    assert!(
        e.contains("unknown name 'xx'") && e.contains("did you mean 'x'"),
        "{e}"
    );
    assert!(e.contains("line 1, column 36"), "{e}");
}

#[tokio::test]
async fn render_is_a_hint_and_changes_no_rows() {
    let o = ok("range x from 1 to 3 step 1 | render timechart with (title='x')").await;
    assert_eq!(o.render.as_deref(), Some("timechart"));
    assert_eq!(texts(&o), [["1"], ["2"], ["3"]]);
}

#[tokio::test]
async fn time_filters_keep_the_column_bare_for_pruning() {
    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "TimeGenerated",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )]));
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema,
        vec![Arc::new(
            TimestampMicrosecondArray::from(vec![1_704_067_000_000_000]).with_timezone("UTC"),
        )],
    )
    .unwrap();
    let ctx = crate::common::with_table("T", batch);
    let plan = logvault_kql::plan_in_session(
        &ctx,
        "T | where TimeGenerated > ago(1h)",
        &crate::common::options(),
    )
    .await
    .unwrap();
    let optimized = ctx.state().optimize(&plan.plan).unwrap();
    let text = optimized.display_indent().to_string();
    println!("{text}");
    assert!(!text.contains("CAST(T.TimeGenerated"), "{text}");
}

#[tokio::test]
async fn union_star_reads_every_table() {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let batch = |n: i64| {
        arrow::record_batch::RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![n; n as usize]))],
        )
        .unwrap()
    };
    let ctx = crate::common::with_table("First", batch(2));
    let t =
        datafusion::datasource::MemTable::try_new(batch(3).schema(), vec![vec![batch(3)]]).unwrap();
    ctx.register_table(
        datafusion::common::TableReference::bare("Second"),
        Arc::new(t),
    )
    .unwrap();
    let out = crate::common::run_in(&ctx, "union withsource=T * | summarize c = count() by T")
        .await
        .unwrap();
    let mut rows = crate::common::texts(&out);
    rows.sort();
    assert_eq!(rows, vec![vec!["First", "2"], vec!["Second", "3"]]);
}

#[tokio::test]
async fn range_bounds_computed_by_the_query_from_a_stored_table() {
    let ctx = crate::events::table();
    let run = |q: &'static str| {
        let ctx = ctx.clone();
        async move {
            crate::common::run_in(&ctx, q)
                .await
                .unwrap_or_else(|e| panic!("{q}\n{e}"))
        }
    };
    let o = run(
        "let n = toscalar(Events | count); range x from 1 to n step 2 | serialize r = row_number()",
    )
    .await;
    assert_eq!(schema(&o), ["x:long", "r:long"]);
    assert_eq!(texts(&o), [["1", "1"], ["3", "2"], ["5", "3"]]);
    let o =
        run("let top = toscalar(Events | summarize max(Deaths)); range x from top to 0 step -1.5")
            .await;
    assert_eq!(schema(&o), ["x:real"]);
    assert_eq!(texts(&o), [["4"], ["2.5"], ["1"]]);
    let o = run("let d = toscalar(Events | summarize max(Deaths)) * 1h; \
         range t from datetime(2024-01-01) to datetime(2024-01-01) + d step 2h")
    .await;
    assert_eq!(schema(&o), ["t:datetime"]);
    assert_eq!(
        texts(&o),
        [
            ["2024-01-01T00:00:00Z"],
            ["2024-01-01T02:00:00Z"],
            ["2024-01-01T04:00:00Z"]
        ]
    );
    let e = crate::common::run_in(
        &ctx,
        "let n = toscalar(Events | count); range x from 1 to n step 0",
    )
    .await
    .unwrap_err();
    assert!(e.contains("step must not be 0"), "{e}");
}

/// Finding 26 of docs/reliability.md: a constant `range` is built as an Arrow array of its type
/// directly (it was one DataFusion scalar per value, about 90 bytes each). A million values of
/// each type keep their type, count, order and bounds.
#[tokio::test]
async fn a_large_constant_range_of_each_type_keeps_its_values() {
    for (q, out_of_order, schema_of, row) in [
        (
            "range t from datetime(2024-01-01) to datetime(2024-01-12) + 13h + 46min + 39s step 1s",
            "t <= p",
            ["n:long", "lo:datetime", "hi:datetime", "wrong:long"],
            [
                "1000000",
                "2024-01-01T00:00:00Z",
                "2024-01-12T13:46:39Z",
                "0",
            ],
        ),
        (
            "range t from 0s to 999999s step 1s",
            "t <= p",
            ["n:long", "lo:timespan", "hi:timespan", "wrong:long"],
            ["1000000", "00:00:00", "11.13:46:39", "0"],
        ),
        (
            "range t from 999999 to 0 step -1",
            "t >= p",
            ["n:long", "lo:long", "hi:long", "wrong:long"],
            ["1000000", "0", "999999", "0"],
        ),
        (
            "range t from 0.5 to 500000 step 0.5",
            "t <= p",
            ["n:long", "lo:real", "hi:real", "wrong:long"],
            ["1000000", "0.5", "500000", "0"],
        ),
    ] {
        // `p` is the value before in range's own order: none may be out of it.
        let o = ok(&format!(
            "{q} | serialize p = prev(t) \
             | summarize n = count(), lo = min(t), hi = max(t), \
               wrong = countif(isnotnull(p) and {out_of_order})"
        ))
        .await;
        assert_eq!(schema(&o), schema_of, "{q}");
        assert_eq!(texts(&o), [row], "{q}");
    }
}

/// Regression (found reading the code after finding 25 of docs/reliability.md): date arithmetic
/// that lands past the range of ticks (about 29,000 years either side of 1970, inside chrono's
/// dates) overflowed: a panic with overflow checks, a wrong date in a release build. It is null.
#[tokio::test]
async fn date_arithmetic_past_the_range_of_ticks_is_null_not_an_overflow() {
    let o = ok(
        "print a = datetime_add('month', 1200000, datetime(2020-01-01)), \
                b = startofmonth(datetime(2020-01-01), 1200000), \
                c = make_datetime(100000, 1, 1), \
                d = datetime_add('year', 9223372036854775807, datetime(2020-01-01)), \
                e = startofday(datetime(2020-01-01), 9223372036854775807), \
                f = datetime_add('month', 1, datetime(2020-01-31))",
    )
    .await;
    assert_eq!(texts(&o), [["", "", "", "", "", "2020-02-29T00:00:00Z"]]);
}
