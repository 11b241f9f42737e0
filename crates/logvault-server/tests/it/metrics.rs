//! `/metrics` gauges that come from outside the engine: the allocator's figures.

use logvault_server::AllocatorStats;

use crate::common::{Options, serve};

fn fixed_stats() -> Option<AllocatorStats> {
    Some(AllocatorStats {
        allocated: 11 << 20,
        active: 12 << 20,
        resident: 13 << 20,
        retained: 14 << 20,
    })
}

fn no_stats() -> Option<AllocatorStats> {
    None
}

/// The `logvault_allocator_bytes` series of a scrape, by kind.
fn allocator_series(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("logvault_allocator_bytes{kind=\""))
        .map(|rest| {
            let (kind, value) = rest.split_once("\"} ").unwrap();
            (kind.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn the_allocator_s_figures_are_a_gauge_when_the_binary_gives_them() {
    let s = serve(Options {
        allocator_stats: Some(fixed_stats),
        ..Options::default()
    })
    .await;
    let text = s.metrics_text().await;
    assert!(
        text.contains("# TYPE logvault_allocator_bytes gauge"),
        "{text}"
    );
    let mib = f64::from(1 << 20);
    assert_eq!(
        allocator_series(&text),
        vec![
            ("allocated".to_owned(), 11.0 * mib),
            ("active".to_owned(), 12.0 * mib),
            ("resident".to_owned(), 13.0 * mib),
            ("retained".to_owned(), 14.0 * mib),
        ]
    );
}

#[tokio::test]
async fn no_allocator_gauge_without_figures() {
    for stats in [None, Some(no_stats as logvault_server::AllocatorStatsFn)] {
        let s = serve(Options {
            allocator_stats: stats,
            ..Options::default()
        })
        .await;
        let text = s.metrics_text().await;
        assert!(text.contains("logvault_hot_cache_bytes"), "{text}");
        assert!(!text.contains("logvault_allocator_bytes"), "{text}");
    }
}
