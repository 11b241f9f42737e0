//! Arrow record batches ingested directly (`Engine::ingest_batches`), as an embedder has them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, ListArray, RecordBatch, StringViewArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};

use crate::common::{CLUSTER, KEY, VAULT, WS, home};

fn batch(hosts: &[&str], extra: Option<(Field, ArrayRef)>) -> RecordBatch {
    let n = hosts.len();
    let times: Vec<i64> = (0..n as i64)
        .map(|i| 1_772_323_200_000_000_000 + i * 1_000_000_000)
        .collect();
    let mut fields = vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("Host", DataType::Utf8View, true),
        Field::new("Code", DataType::Int32, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(arrow::array::TimestampNanosecondArray::from(times).with_timezone("UTC")),
        Arc::new(StringViewArray::from(hosts.to_vec())),
        Arc::new(Int32Array::from((0..n as i32).collect::<Vec<_>>())),
    ];
    if let Some((f, c)) = extra {
        fields.push(f);
        columns.push(c);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[tokio::test]
async fn arrow_batches_are_ingested_under_the_key_gate_like_payloads() {
    let h = home().await;
    h.workspace(WS);
    let r = h
        .engine
        .ingest_batches(
            WS,
            "Metrics",
            &[batch(&["a", "b", "c"], None), batch(&["d"], None)],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.accepted, r.dropped, r.account.as_str()),
        (4, 0, "service")
    );
    let hosts = h
        .column(&h.engine, WS, "SELECT Host FROM Metrics ORDER BY Host")
        .await
        .unwrap();
    assert_eq!(hosts, ["a", "b", "c", "d"]);
    // Narrower types were widened to what tables hold; the time kept to the microsecond.
    let types = h
        .column(
            &h.engine,
            WS,
            "SELECT arrow_typeof(Code) || ' ' || arrow_typeof(TimeGenerated) FROM Metrics LIMIT 1",
        )
        .await
        .unwrap();
    assert_eq!(types, ["Int64 Timestamp(µs, \"UTC\")"]);

    // A batch a table cannot hold is refused whole, naming the column: nothing is written.
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let bad = batch(
        &["x"],
        Some((
            Field::new("Tags", list.data_type().clone(), true),
            Arc::new(list) as ArrayRef,
        )),
    );
    let err = h
        .engine
        .ingest_batches(WS, "Metrics", &[batch(&["y"], None), bad])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column Tags") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(h.count(&h.engine, WS, "Metrics").await.unwrap(), 4);

    // Under a revoked key, the rows are dropped and counted.
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)
        .unwrap();
    h.pass_check_interval();
    let r = h
        .engine
        .ingest_batches(WS, "Metrics", &[batch(&["z", "w"], None)])
        .await
        .unwrap();
    assert_eq!((r.accepted, r.dropped), (0, 2), "{r:?}");
    assert!(r.reason.unwrap().contains("revoked"));
    let status = h.engine.status(Some(WS)).await.unwrap();
    assert_eq!(status.workspaces[0].dropped_rows, 2);
}

/// A server answers its clients once `log_requests` returns, before the rows are batched
/// (`store_logged`): what it acknowledged is durable then. A process that stops right after the
/// answer (the batched rows never stored) loses nothing: the next open replays the log, and the
/// request's key is known, so its retry is not stored again.
#[tokio::test]
async fn rows_acknowledged_before_they_are_batched_survive_a_stop_right_after_the_answer() {
    use logvault::{Appended, RequestRows};
    let h = home().await;
    h.workspace(WS);
    let request = |key: &str| RequestRows {
        key: Some(key.to_owned()),
        records: vec![("Metrics".to_owned(), batch(&["a", "b", "c"], None))],
    };
    {
        let mut ingestor = h
            .engine
            .ingestor(WS, logvault::ingest::BatcherOptions::default())
            .unwrap();
        let (appended, logged) = ingestor.log_requests(&[request("r1")]).await.unwrap();
        assert_eq!(appended.outcome, Appended::Accepted { rows: 3 });
        assert!(logged.is_some());
        // Stopped here: never batched, never stored, the writer not closed.
        drop(logged);
        drop(ingestor);
    }
    let engine = h.reopen().await;
    let mut ingestor = engine
        .ingestor(WS, logvault::ingest::BatcherOptions::default())
        .unwrap();
    // The retry of the acknowledged request: known from the log, not stored again.
    let again = ingestor.append_requests(&[request("r1")]).await.unwrap();
    assert_eq!(again.duplicates, vec![true]);
    let (appended, logged) = ingestor.log_requests(&[request("r2")]).await.unwrap();
    assert_eq!(appended.outcome, Appended::Accepted { rows: 3 });
    ingestor.store_logged(logged.unwrap()).await.unwrap();
    ingestor.release().await.unwrap();
    assert_eq!(h.count(&engine, WS, "Metrics").await.unwrap(), 6);
}
