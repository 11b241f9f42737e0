//! The server's metrics, in Prometheus' text format (`GET /metrics`).
//!
//! Counters and histograms are kept here as requests happen; gauges that the engine knows
//! (key state per cluster, hot cache use, rows waiting in writers) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Label names and values, in order.
type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Families {
    counters: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

/// What the process's memory allocator says of its memory, read when `/metrics` is scraped
/// (the binary that owns the allocator gives [`ServeConfig::allocator_stats`]). Beside the
/// resident set the OS reports, it tells a leak (`allocated` grows) from freed memory the
/// allocator has not yet returned to the OS (`resident` grows, `allocated` does not).
///
/// [`ServeConfig::allocator_stats`]: crate::ServeConfig::allocator_stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes the program holds (allocated and not yet freed).
    pub allocated: u64,
    /// Bytes of the pages those allocations occupy.
    pub active: u64,
    /// Bytes of physically resident pages the allocator maps (its own metadata included).
    pub resident: u64,
    /// Bytes of virtual memory kept mapped but returned to the OS (not resident).
    pub retained: u64,
}

/// Reads the allocator's figures, `None` when it cannot.
pub type AllocatorStatsFn = fn() -> Option<AllocatorStats>;

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

/// Help texts of the families, by name.
fn help(name: &str) -> &'static str {
    match name {
        "logvault_rows_ingested_total" => "Rows acknowledged (durable in the write-ahead log).",
        "logvault_bytes_ingested_total" => "Request body bytes (as decoded) of acknowledged rows.",
        "logvault_rows_dropped_total" => "Rows dropped because the workspace's key is revoked.",
        "logvault_rows_rejected_total" => "Malformed records refused.",
        "logvault_http_requests_total" => "HTTP requests answered, by route and status.",
        "logvault_http_request_seconds" => "HTTP request latency, by route.",
        "logvault_queries_total" => "Queries run, by workspace, language and outcome.",
        "logvault_query_seconds" => "Query latency, by workspace.",
        "logvault_backpressure_total" => "Requests refused with 429/503 because writers were full.",
        "logvault_syslog_messages_total" => "Syslog messages received.",
        "logvault_alert_evaluations_total" => "Log alert rules evaluated by the scheduler.",
        "logvault_alerts_fired_total" => "Log alerts fired (or evaluations failed), by outcome.",
        "logvault_segments_compacted_total" => {
            "Small segments merged away by the background compaction, by workspace."
        }
        _ => "",
    }
}

impl Metrics {
    /// Adds `by` to counter `name` with `labels`.
    pub(crate) fn add(&self, name: &'static str, labels: Labels, by: f64) {
        let mut f = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *f.counters
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default() += by;
    }

    /// Records `elapsed` in histogram `name` with `labels`.
    pub(crate) fn observe(&self, name: &'static str, labels: Labels, elapsed: Duration) {
        let mut f = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.histograms
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Rows acknowledged for `workspace` through `protocol`, with the bytes they came in.
    pub(crate) fn ingested(&self, workspace: &str, protocol: &'static str, rows: u64, bytes: u64) {
        let labels = || {
            vec![
                ("workspace", workspace.to_owned()),
                ("protocol", protocol.to_owned()),
            ]
        };
        self.add("logvault_rows_ingested_total", labels(), rows as f64);
        self.add("logvault_bytes_ingested_total", labels(), bytes as f64);
    }

    /// Rows dropped for `workspace` through `protocol`.
    pub(crate) fn dropped(&self, workspace: &str, protocol: &'static str, rows: u64) {
        self.add(
            "logvault_rows_dropped_total",
            vec![
                ("workspace", workspace.to_owned()),
                ("protocol", protocol.to_owned()),
            ],
            rows as f64,
        );
    }

    /// The value of counter `name` summed over the series whose labels include `filter`.
    pub fn counter(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        let f = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.counters.get(name).map_or(0.0, |series| {
            series
                .iter()
                .filter(|(labels, _)| {
                    filter
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, v)| v)
                .sum()
        })
    }

    /// The text format of every family, followed by `gauges` (name, help, series).
    pub(crate) fn render(&self, gauges: &[Gauge]) -> String {
        let f = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        for (name, series) in &f.counters {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
            for (labels, v) in series {
                let _ = writeln!(out, "{name}{} {v}", label_text(labels, None));
            }
        }
        for (name, series) in &f.histograms {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
            for (labels, h) in series {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let le = bound.to_string();
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        label_text(labels, Some(&le)),
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    label_text(labels, Some("+Inf")),
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), h.sum);
                let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), h.count);
            }
        }
        for g in gauges {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", g.name, g.help, g.name);
            for (labels, v) in &g.series {
                let _ = writeln!(out, "{}{} {v}", g.name, label_text(labels, None));
            }
        }
        out
    }
}

/// A gauge read at scrape time.
#[derive(Debug)]
pub(crate) struct Gauge {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) series: Vec<(Labels, f64)>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render_in_the_text_format() {
        let m = Metrics::default();
        m.ingested("ws\"1", "otlp", 10, 100);
        m.ingested("ws\"1", "otlp", 5, 50);
        m.observe(
            "logvault_query_seconds",
            vec![("workspace", "w".into())],
            Duration::from_millis(30),
        );
        let text = m.render(&[Gauge {
            name: "logvault_key_state",
            help: "1 active",
            series: vec![(vec![("cluster", "c1".into())], 1.0)],
        }]);
        assert!(
            text.contains(
                "logvault_rows_ingested_total{workspace=\"ws\\\"1\",protocol=\"otlp\"} 15"
            )
        );
        assert!(text.contains("logvault_query_seconds_bucket{workspace=\"w\",le=\"0.025\"} 0"));
        assert!(text.contains("logvault_query_seconds_bucket{workspace=\"w\",le=\"0.05\"} 1"));
        assert!(text.contains("logvault_query_seconds_count{workspace=\"w\"} 1"));
        assert!(
            text.contains("# TYPE logvault_key_state gauge\nlogvault_key_state{cluster=\"c1\"} 1")
        );
        assert_eq!(
            m.counter("logvault_rows_ingested_total", &[("protocol", "otlp")]),
            15.0
        );
        assert_eq!(
            m.counter("logvault_rows_ingested_total", &[("protocol", "x")]),
            0.0
        );
    }
}
