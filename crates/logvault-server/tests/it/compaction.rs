//! Background compaction: the small segments a server makes (every query first stores what
//! the writer holds) are merged without anyone running `logvault table compact`.

use std::time::Duration;

use logvault_server::Role;

use crate::common::{Options, WS, eventually, records, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_segments_queries_make_are_merged_in_the_background_keeping_every_row() {
    let mut s = serve(Options {
        compact_interval: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    let rule = s.rule("rule-small", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    // Each upload is stored as a segment of its own by the query after it.
    let uploads = 8;
    for i in 0..uploads {
        let r = s
            .upload(
                &rule,
                "Custom-AppEvents",
                &publisher,
                &records(5, &format!("u{i}")),
            )
            .await;
        assert_eq!(r.status(), 204);
        assert_eq!(s.count(WS, "AppEvents").await, 5 * (i + 1));
    }
    let engine = s.engine.clone();
    eventually("the table's segments merged into one", || {
        let engine = engine.clone();
        async move { engine.tables(WS).await.unwrap()[0].segments == 1 }
    })
    .await;
    assert_eq!(s.count(WS, "AppEvents").await, 5 * uploads);
    // Passes may have merged the segments as they came (a merged one merged again later), so
    // at least every upload's segment was merged away once. A pass counts its merges once all
    // of its tables are done, after the catalog shows them: the count may come a moment later.
    let mut merged = 0.0;
    for _ in 0..100 {
        merged = s.metric("logvault_segments_compacted_total", &[("workspace", WS)]);
        if merged >= uploads as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(merged >= uploads as f64, "{merged} segments merged");
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("# TYPE logvault_segments_compacted_total counter"),
        "{metrics}"
    );
    s.shutdown().await;
}
