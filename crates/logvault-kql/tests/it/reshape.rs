//! `evaluate pivot` and `evaluate narrow` over a stored table and over constant rows: both
//! give the answers worked out by hand.

use datafusion::prelude::SessionContext;

use crate::common::{run_in, schema, texts};
use crate::events::{both, constant, rows, table};

#[tokio::test]
async fn pivot_counts_by_default_and_sums() {
    let q = "Events | project State, EventType | evaluate pivot(State) : (EventType:string, AR:long, AZ:long)";
    let (s, stored, computed) = both(q).await;
    assert_eq!(s, ["EventType:string", "AR:long", "AZ:long"]);
    let want = rows(&[
        &["Heat", "1", "0"],
        &["Wind", "2", "0"],
        &["Flood", "0", "2"],
        &["Lightning", "0", "1"],
    ]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
    let q = "Events | evaluate pivot(State, sum(Deaths), EventType) : (EventType:string, AZ:long, AR:long)";
    let (s, stored, _) = both(q).await;
    assert_eq!(s, ["EventType:string", "AZ:long", "AR:long"]);
    assert_eq!(
        stored,
        rows(&[
            &["Heat", "0", "3"],
            &["Wind", "0", "1"],
            &["Flood", "6", "0"],
            &["Lightning", "1", "0"],
        ])
    );
}

#[tokio::test]
async fn pivot_columns_come_from_constant_rows_or_the_schema() {
    // Without a schema, over constants: the values in order of first appearance.
    let text = format!(
        "{}Events | evaluate pivot(EventType, max(Deaths))",
        constant()
    );
    let out = run_in(&SessionContext::new(), &text).await.unwrap();
    assert_eq!(
        schema(&out),
        [
            "State:string",
            "Heat:long",
            "Wind:long",
            "Flood:long",
            "Lightning:long"
        ]
    );
    let mut got = texts(&out);
    got.sort();
    assert_eq!(
        got,
        rows(&[&["AR", "3", "1", "", ""], &["AZ", "", "", "4", "1"]])
    );
    // Without a schema over stored rows: refused, saying what to write.
    let e = run_in(&table(), "Events | evaluate pivot(State)")
        .await
        .unwrap_err();
    assert!(e.contains("output schema"), "{e}");
}

#[tokio::test]
async fn narrow_turns_cells_into_rows() {
    let (s, stored, computed) =
        both("Events | where EventType == 'Heat' | evaluate narrow()").await;
    assert_eq!(s, ["Row:long", "Column:string", "Value:string"]);
    let want = rows(&[
        &["0", "State", "AR"],
        &["0", "EventType", "Heat"],
        &["0", "Deaths", "3"],
    ]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
    let (_, stored, _) =
        both("Events | evaluate narrow() | summarize rows = dcount(Row), cells = count()").await;
    assert_eq!(stored, rows(&[&["6", "18"]]));
}
