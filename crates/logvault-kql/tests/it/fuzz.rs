//! Bad input never panics: random token soups and mutations of real queries go through the
//! parser and the planner, which must return `Ok` or `Err`, never unwind.

use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "T",
    "| ",
    "where ",
    "project ",
    "extend ",
    "summarize ",
    "by ",
    "count()",
    "x",
    "y",
    " == ",
    " != ",
    " has ",
    " =~ ",
    " in ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    "let ",
    " = ",
    "1",
    "1.5",
    "1d",
    "'s'",
    "\"t\"",
    "datetime(2020-01-01)",
    "dynamic([1,{}])",
    "print ",
    "range ",
    " from ",
    " to ",
    " step ",
    "datatable(a:long)",
    "join ",
    "on ",
    "$left.",
    "$right.",
    "mv-expand ",
    "parse ",
    " with ",
    "*",
    "bin(",
    "ago(",
    "toscalar(",
    "sort ",
    "top ",
    "union ",
    "..",
    ".",
    "-",
    "+",
    "/",
    "%",
    "iff(",
    "case(",
    "make-series ",
    "evaluate ",
    "bag_unpack(",
    "\n",
    "// c\n",
    "@'v'",
    "['q']",
    "typeof(long)",
    "!contains ",
    "between (",
    "and ",
    "or ",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..40).prop_map(|v| v.concat())
}

fn plan(text: &str) {
    let mut tables = logvault_kql::TableMap::new();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("y", arrow::datatypes::DataType::Utf8, true),
    ]));
    tables.insert(
        "T",
        datafusion::logical_expr::logical_plan::builder::table_source(&schema),
    );
    let _ = logvault_kql::plan_query(text, &tables, &crate::common::options());
}

/// Finding 25 of docs/reliability.md (AFL++, `kql`): the literal's year past the range of
/// ticks panicked with "attempt to multiply with overflow" in the parser.
#[test]
fn a_datetime_literal_past_the_range_of_ticks_is_an_error_not_an_overflow() {
    let options = crate::common::options();
    let e = logvault_kql::plan_query(
        "print datetime(202101-01-01 01:00)",
        &logvault_kql::TableMap::new(),
        &options,
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid datetime literal"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn token_soups_never_panic(text in soup()) {
        plan(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        plan(&text);
    }

    #[test]
    fn cut_queries_never_panic(cut in 0usize..200) {
        let q = "let n = 3; T | where x > n and y has 'a' | extend z = strcat(y, '-', tostring(x)) \
                 | summarize c = count(), m = make_list(z) by bin(x, 2) | top 5 by c desc";
        let end = q.char_indices().map(|(i, _)| i).rfind(|i| *i <= cut).unwrap_or(0);
        plan(&q[..end]);
    }
}
