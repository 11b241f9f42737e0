//! Segments round-trip under the service key and under a customer key; the wrong account key
//! cannot read them; bad input is refused.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use chrono::Duration;
use logvault_store::{AccountId, KeyScheme, SegmentLocation, StoreError};

use crate::common::*;

#[tokio::test]
async fn round_trip_under_service_and_customer_keys() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(false).await;
    for (account, marker) in [(AccountId::service(), "svc"), (cluster.clone(), "cmk")] {
        let batches = vec![
            log_batch(t0(), 500, marker),
            log_batch(t0() + Duration::hours(1), 300, marker),
        ];
        let (entry, manifest) = h
            .store
            .append(&account, WS, TABLE, batches.clone())
            .await
            .unwrap();
        assert_eq!(entry.rows, 800);
        assert_eq!(entry.min_time, t0());
        assert_eq!(
            entry.max_time,
            t0() + Duration::hours(1) + Duration::seconds(299)
        );
        assert_eq!(entry.schema, log_schema());
        let back = h
            .store
            .read_segment(&manifest.location(&entry), None)
            .await
            .unwrap();
        assert_eq!(concat(&back), concat(&batches));
    }
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    assert_eq!(manifest.segments.len(), 2);
    assert_eq!(
        manifest.segments[0].key_scheme,
        KeyScheme::Service {
            key_version: "1".into()
        }
    );
    assert_eq!(
        manifest.segments[1].key_scheme,
        KeyScheme::Customer {
            cluster: CLUSTER.into(),
            vault: CUSTOMER_VAULT.into(),
            key: CUSTOMER_KEY.into(),
            key_version: "1".into()
        }
    );
    assert_eq!(manifest.segments[1].account, cluster);
}

#[tokio::test]
async fn projection_reads_only_named_columns() {
    let h = Harness::new().await;
    let (entry, manifest) = h
        .store
        .append(
            &AccountId::service(),
            WS,
            TABLE,
            vec![log_batch(t0(), 100, "p")],
        )
        .await
        .unwrap();
    let loc = manifest.location(&entry);
    let back = h
        .store
        .read_segment(&loc, Some(vec!["Computer".into(), "EventId".into()]))
        .await
        .unwrap();
    let names: Vec<_> = back[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["Computer", "EventId"]);
    assert_eq!(concat(&back).num_rows(), 100);
    let err = h
        .store
        .read_segment(&loc, Some(vec!["Nope".into()]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidName { kind: "column", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_wrong_account_key_cannot_read_a_segment() {
    // Two deployments with the same account id but their own random account keys: a segment
    // copied from one to the other must not decrypt.
    let a = Harness::new().await;
    let b = Harness::new().await;
    let (entry, manifest) = a
        .store
        .append(
            &AccountId::service(),
            WS,
            TABLE,
            vec![log_batch(t0(), 50, "k")],
        )
        .await
        .unwrap();
    let loc = manifest.location(&entry);
    let rel = format!("service/objects/{}", loc.object_path());
    let to = b.storage().join(&rel);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(a.storage().join(&rel), &to).unwrap();
    assert!(a.store.read_segment(&loc, None).await.is_ok());
    let err = b.store.read_segment(&loc, None).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Integrity { segment, .. } if *segment == loc.to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_the_table_named() {
    let h = Harness::new().await;
    let svc = AccountId::service();
    let err = h
        .store
        .write_segment(&svc, WS, TABLE, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidData { .. }) && err.to_string().contains(TABLE),
        "{err}"
    );

    let empty = log_batch(t0(), 0, "e");
    let err = h
        .store
        .write_segment(&svc, WS, TABLE, vec![empty])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no rows"), "{err}");

    let no_time = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "Message",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(arrow::array::StringArray::from(vec!["x"]))],
    )
    .unwrap();
    let err = h
        .store
        .write_segment(&svc, WS, TABLE, vec![no_time.clone()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TimeGenerated"), "{err}");

    let err = h
        .store
        .write_segment(&svc, WS, TABLE, vec![log_batch(t0(), 3, "a"), no_time])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("different schemas"), "{err}");

    for (ws, table) in [("../x", TABLE), (WS, "bad/table")] {
        let err = h
            .store
            .write_segment(&svc, ws, table, vec![log_batch(t0(), 3, "a")])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{err}");
    }

    let missing =
        SegmentLocation::new(svc, WS, TABLE, logvault_store::SegmentId::generate()).unwrap();
    let err = h.store.read_segment(&missing, None).await.unwrap_err();
    assert!(matches!(err, StoreError::SegmentNotFound { .. }), "{err}");

    // An account that was never created.
    let err = h
        .store
        .write_segment(&cluster(), WS, TABLE, vec![log_batch(t0(), 3, "a")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AccountNotFound { .. }), "{err}");
}

#[tokio::test]
async fn creating_an_account_twice_is_refused() {
    let h = Harness::new().await;
    h.cluster_account(false).await;
    let err = h
        .store
        .create_account(&cluster(), &customer_binding(None), false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AccountExists { .. }), "{err}");
    // From a second process too.
    let other = h.reopen().await;
    let err = other
        .create_account(&cluster(), &customer_binding(None), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AccountExists { .. }), "{err}");
}

#[tokio::test]
async fn any_object_store_backend_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let file_url = format!("file://{}/by-url/", dir.path().display());
    for url in ["memory:///", file_url.as_str()] {
        let vault = Arc::new(FakeVault::default());
        vault.add_version(SERVICE_VAULT, SERVICE_KEY);
        let root = logvault_store::url_root(url, Vec::<(String, String)>::new()).unwrap();
        let clock = logvault_core::TestClock::new(t0());
        let store = logvault_store::Store::open(
            root,
            vault,
            service_binding(),
            logvault_store::StoreConfig::default(),
            Arc::new(clock),
        )
        .await
        .unwrap();
        let (entry, m) = store
            .append(
                &AccountId::service(),
                WS,
                TABLE,
                vec![log_batch(t0(), 20, "url")],
            )
            .await
            .unwrap();
        assert_eq!(
            store.read_segment(&m.location(&entry), None).await.unwrap()[0].num_rows(),
            20
        );
    }
    // The file URL's path became the root's prefix.
    assert!(dir.path().join("by-url/service/account.json").exists());
    for bad in ["not a url", "hdfs://cluster/logs", "gopher://x/"] {
        let err = logvault_store::url_root(bad, Vec::<(String, String)>::new()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err}");
    }
}

#[tokio::test]
async fn an_account_of_an_unknown_format_is_refused_clearly() {
    let h = Harness::new().await;
    h.cluster_account(false).await;
    let meta = h.storage().join("cluster-prod1/account.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        text.replace("\"formatVersion\": 1", "\"formatVersion\": 9"),
    )
    .unwrap();
    let fresh = h.reopen().await;
    let err = fresh.open_account(&cluster(), None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedFormat { version: 9, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cluster-prod1"), "{err}");
}

/// The writer's encodings (docs/format.md, "Segments"): the timestamp column deltas without a
/// dictionary; the strings and integers with one, under zstd, but for the columns of few
/// values (labels) and a float column, under LZ4, but a float of mostly distinct values in
/// plain pages, uncompressed; the values read back.
#[tokio::test]
async fn segment_columns_take_their_encodings_and_codecs() {
    use arrow::array::Float64Array;
    use parquet::basic::{Compression, Encoding};

    let h = Harness::new().await;
    let account = h.cluster_account(false).await;
    let logs = log_batch(t0(), 2_000, "enc");
    let latencies: Float64Array = (0..logs.num_rows())
        .map(|i| (i % 9 != 0).then(|| (i % 613) as f64 / 10.0))
        .collect();
    let durations: Float64Array = (0..logs.num_rows())
        .map(|i| (i % 7 != 0).then_some(i as f64 * 0.37))
        .collect();
    let mut fields = logs.schema().fields().to_vec();
    fields.push(Arc::new(Field::new("LatencyMs", DataType::Float64, true)));
    fields.push(Arc::new(Field::new("DurationMs", DataType::Float64, true)));
    let mut columns = logs.columns().to_vec();
    columns.push(Arc::new(latencies));
    columns.push(Arc::new(durations));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let (entry, manifest) = h
        .store
        .append(&account, WS, TABLE, vec![batch.clone()])
        .await
        .unwrap();
    let loc = manifest.location(&entry);
    let bytes = std::fs::read(h.segment_file(&loc)).unwrap();
    let meta = h.segment_metadata(&loc, &bytes, false).await;
    let group = meta.row_group(0);
    let column = |name: &str| {
        group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let time = column("TimeGenerated");
    assert!(
        time.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED),
        "{:?}",
        time.encodings().collect::<Vec<_>>()
    );
    assert_eq!(time.dictionary_page_offset(), None);
    // Many values (a message of each row): a dictionary under zstd.
    let message = column("Message");
    assert!(message.dictionary_page_offset().is_some());
    assert!(matches!(message.compression(), Compression::ZSTD(_)));
    // A float of 613 values, and labels of 7, 4 and 40 values in 2,000 rows: a dictionary
    // under LZ4.
    for name in ["LatencyMs", "Computer", "Severity", "EventId"] {
        assert!(column(name).dictionary_page_offset().is_some(), "{name}");
        assert_eq!(column(name).compression(), Compression::LZ4_RAW, "{name}");
    }
    // A float whose every value differs: plain pages, uncompressed.
    let durations = column("DurationMs");
    assert_eq!(durations.dictionary_page_offset(), None);
    assert!(
        durations.encodings().all(|e| e != Encoding::RLE_DICTIONARY),
        "{:?}",
        durations.encodings().collect::<Vec<_>>()
    );
    assert_eq!(durations.compression(), Compression::UNCOMPRESSED);
    let back = h.store.read_segment(&loc, None).await.unwrap();
    assert_eq!(concat(&back), batch);
}
