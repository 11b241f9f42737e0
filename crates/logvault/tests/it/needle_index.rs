//! The home's `needleIndex` setting: segments written with it (the default) carry a needle
//! index, so a lookup of an id no segment holds reads none; with `false` every segment is read.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use logvault::ingest::Format;
use logvault::{Engine, HomeConfig, IngestOptions};

use crate::common::WS;

const TABLE: &str = "Requests";

/// A home with `needleIndex` set as given, 5,000 rows with unique request ids ingested, and the
/// segments a lookup of an absent id skipped and read.
async fn lookup(needle_index: Option<bool>) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = HomeConfig {
        version: 1,
        needle_index,
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let engine = Engine::open(dir.path()).await.unwrap();
    engine
        .control()
        .create_workspace(logvault::control::WorkspaceSpec::new(WS))
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let lines: Vec<String> = (0..5000)
        .map(|i| {
            let t = t0 + chrono::Duration::seconds(i);
            format!(
                r#"{{"TimeGenerated":"{}","RequestId":"req-{i:06}"}}"#,
                t.to_rfc3339()
            )
        })
        .collect();
    let report = engine
        .ingest(
            WS,
            TABLE,
            std::io::Cursor::new(lines.join("\n")),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.accepted, 5000);
    let session = engine.query_session(WS).await.unwrap();
    let stats = Arc::clone(session.stats());
    for (id, rows) in [("req-004321", 1), ("req-999999", 0)] {
        let sql = format!("SELECT RequestId FROM {TABLE} WHERE RequestId = '{id}'");
        let batches: Vec<_> = session
            .execute(&sql)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(n, rows, "{id}");
    }
    (
        stats.segments_pruned_by_needles.load(Ordering::SeqCst),
        stats.segments_scanned.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn needle_index_in_the_home_s_config_makes_lookups_skip_segments() {
    // With it (set, or unset: the default), the absent id's lookup skips the segment (the
    // present one reads it).
    for setting in [Some(true), None] {
        let (skipped, read) = lookup(setting).await;
        assert!(skipped >= 1, "{setting:?}: {skipped} skipped, {read} read");
    }
    // Turned off, both lookups read every segment.
    let (skipped, read) = lookup(Some(false)).await;
    assert_eq!(skipped, 0, "{read} read");
    assert!(read >= 2);
}
