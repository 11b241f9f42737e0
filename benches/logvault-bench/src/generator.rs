//! A synthetic log generator with a realistic shape.
//!
//! - Time: arrivals with exponential gaps whose rate switches between quiet, normal and burst
//!   periods (a small Markov chain), starting at a fixed instant.
//! - Levels: INFO 80%, DEBUG 10%, WARN 7%, ERROR 2.5%, CRITICAL 0.5%.
//! - Hosts: Zipf-skewed over `hosts` names (a few hosts produce most logs); services likewise.
//! - Messages: templates with parameters (user ids, paths, durations, error codes).
//! - RequestId: high cardinality (unique per row); LatencyMs: log-normal-like, heavier on errors.
//! - Sparse fields: UserId on ~10% of rows, TraceId on ~5%.
//!
//! The same seed and options always give the same rows. Batches are produced one at a time, so
//! 10^8 rows stream in the memory of one batch.
//!
//! ```
//! use logvault_bench::generator::{GenOptions, LogGenerator};
//! let rows: usize = LogGenerator::new(GenOptions { rows: 1000, batch_rows: 256, ..GenOptions::default() })
//!     .map(|b| b.num_rows())
//!     .sum();
//! assert_eq!(rows, 1000);
//! ```

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Level names and their weights in per-mille.
pub const LEVELS: [(&str, u32); 5] = [
    ("INFO", 800),
    ("DEBUG", 100),
    ("WARN", 70),
    ("ERROR", 25),
    ("CRITICAL", 5),
];

const SERVICES: [&str; 8] = [
    "api-gateway",
    "auth",
    "billing",
    "search",
    "checkout",
    "inventory",
    "notifications",
    "reports",
];

const TEMPLATES: [&str; 10] = [
    "GET /api/v1/orders/{n} completed in {ms} ms",
    "POST /api/v1/checkout user={user} items={n}",
    "user {user} signed in from 10.{a}.{b}.{c}",
    "cache miss for key product:{n}",
    "retrying call to {svc} (attempt {k} of 5)",
    "connection to db-{k} timed out after {ms} ms",
    "payment declined for order {n}: code E{code}",
    "queue depth {n} exceeds threshold on {svc}",
    "disk usage at {k}0% on /var/lib/{svc}",
    "scheduled job {svc}-cleanup finished, {n} rows removed",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Total rows.
    pub rows: u64,
    /// Rows per batch.
    pub batch_rows: usize,
    /// The seed; the same seed gives the same rows.
    pub seed: u64,
    /// Number of distinct hosts.
    pub hosts: usize,
    /// Start of the timeline, microseconds since the epoch (UTC).
    pub start_micros: i64,
    /// Mean rows per second in normal periods.
    pub rate_per_sec: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            rows: 100_000,
            batch_rows: 8192,
            seed: 42,
            hosts: 200,
            // 2026-01-01T00:00:00Z
            start_micros: 1_767_225_600_000_000,
            rate_per_sec: 50.0,
        }
    }
}

/// The schema of generated logs (table `AppLogs`).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("Level", DataType::Utf8, false),
        Field::new("Host", DataType::Utf8, false),
        Field::new("Service", DataType::Utf8, false),
        Field::new("Message", DataType::Utf8, false),
        Field::new("RequestId", DataType::Utf8, false),
        Field::new("LatencyMs", DataType::Float64, false),
        Field::new("StatusCode", DataType::Int32, false),
        Field::new("UserId", DataType::Utf8, true),
        Field::new("TraceId", DataType::Utf8, true),
    ]))
}

/// Host name number `i`.
pub fn host_name(i: usize) -> String {
    format!("host-{i:04}")
}

/// A Zipf-like sampler over `n` items (exponent ~1.1), by inverse CDF.
#[derive(Debug, Clone)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let weights: Vec<f64> = (1..=n.max(1)).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Self { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        self.cdf
            .partition_point(|c| *c < u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

/// An iterator of generated batches.
#[derive(Debug)]
pub struct LogGenerator {
    options: GenOptions,
    rng: ChaCha8Rng,
    hosts: Zipf,
    services: Zipf,
    produced: u64,
    now_micros: f64,
    phase: Phase,
    schema: SchemaRef,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Quiet,
    Normal,
    Burst,
}

impl Phase {
    fn rate_factor(self) -> f64 {
        match self {
            Self::Quiet => 0.1,
            Self::Normal => 1.0,
            Self::Burst => 8.0,
        }
    }
}

impl LogGenerator {
    /// A generator for `options`.
    pub fn new(options: GenOptions) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            hosts: Zipf::new(options.hosts),
            services: Zipf::new(SERVICES.len()),
            produced: 0,
            now_micros: options.start_micros as f64,
            phase: Phase::Normal,
            schema: schema(),
            options,
        }
    }

    fn level(&mut self) -> &'static str {
        let mut r = self.rng.random_range(0..1000u32);
        for (name, weight) in LEVELS {
            if r < weight {
                return name;
            }
            r -= weight;
        }
        "INFO"
    }

    fn message(&mut self, service: &str, user: &str) -> String {
        let template = TEMPLATES[self.rng.random_range(0..TEMPLATES.len())];
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let value = match &rest[open + 1..open + close] {
                "n" => self.rng.random_range(1..100_000u32).to_string(),
                "ms" => self.rng.random_range(1..5000u32).to_string(),
                "user" => user.to_owned(),
                "svc" => service.to_owned(),
                "k" => self.rng.random_range(1..10u32).to_string(),
                "code" => self.rng.random_range(100..999u32).to_string(),
                _ => self.rng.random_range(0..256u32).to_string(),
            };
            out.push_str(&value);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn advance_time(&mut self) {
        // Switch phase now and then: bursts are short, quiet periods long.
        let switch: f64 = self.rng.random();
        self.phase = match (self.phase, switch) {
            (Phase::Normal, s) if s < 0.0005 => Phase::Burst,
            (Phase::Normal, s) if s < 0.0010 => Phase::Quiet,
            (Phase::Burst, s) if s < 0.01 => Phase::Normal,
            (Phase::Quiet, s) if s < 0.002 => Phase::Normal,
            (p, _) => p,
        };
        let rate = self.options.rate_per_sec * self.phase.rate_factor();
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        self.now_micros += -u.ln() / rate * 1e6;
    }
}

impl Iterator for LogGenerator {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let remaining = self.options.rows.saturating_sub(self.produced);
        if remaining == 0 {
            return None;
        }
        let n = remaining.min(self.options.batch_rows.max(1) as u64) as usize;
        let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut level = StringBuilder::with_capacity(n, n * 5);
        let mut host = StringBuilder::with_capacity(n, n * 9);
        let mut service = StringBuilder::with_capacity(n, n * 10);
        let mut message = StringBuilder::with_capacity(n, n * 48);
        let mut request = StringBuilder::with_capacity(n, n * 32);
        let mut latency = Float64Builder::with_capacity(n);
        let mut status = Int32Builder::with_capacity(n);
        let mut user_col = StringBuilder::with_capacity(n, n);
        let mut trace = StringBuilder::with_capacity(n, n);
        for _ in 0..n {
            self.advance_time();
            time.append_value(self.now_micros as i64);
            let lvl = self.level();
            level.append_value(lvl);
            let h = self.hosts.sample(self.rng.random());
            host.append_value(host_name(h));
            let svc = SERVICES[self.services.sample(self.rng.random())];
            service.append_value(svc);
            let user = format!("u{:06}", self.rng.random_range(0..50_000u32));
            message.append_value(self.message(svc, &user));
            let rid: u128 = self.rng.random();
            request.append_value(format!("{rid:032x}"));
            let base: f64 = self.rng.random_range(0.0f64..1.0).powi(3) * 800.0 + 2.0;
            let slow = if matches!(lvl, "ERROR" | "CRITICAL") {
                4.0
            } else {
                1.0
            };
            latency.append_value((base * slow * 100.0).round() / 100.0);
            status.append_value(match lvl {
                "ERROR" => 500,
                "CRITICAL" => 503,
                "WARN" => 429,
                _ => 200,
            });
            if self.rng.random_range(0..100u32) < 10 {
                user_col.append_value(&user);
            } else {
                user_col.append_null();
            }
            if self.rng.random_range(0..100u32) < 5 {
                let t: u64 = self.rng.random();
                trace.append_value(format!("{t:016x}"));
            } else {
                trace.append_null();
            }
        }
        self.produced += n as u64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(time.finish()),
            Arc::new(level.finish()),
            Arc::new(host.finish()),
            Arc::new(service.finish()),
            Arc::new(message.finish()),
            Arc::new(request.finish()),
            Arc::new(latency.finish()),
            Arc::new(status.finish()),
            Arc::new(user_col.finish()),
            Arc::new(trace.finish()),
        ];
        RecordBatch::try_new(Arc::clone(&self.schema), columns).ok()
    }
}

/// The host inventory (table `HostInventory`), for the join query: one row per host.
pub fn host_inventory(hosts: usize) -> RecordBatch {
    let mut host = StringBuilder::new();
    let mut datacenter = StringBuilder::new();
    let mut team = StringBuilder::new();
    for i in 0..hosts {
        host.append_value(host_name(i));
        datacenter.append_value(["dc-east", "dc-west", "dc-north"][i % 3]);
        team.append_value(["platform", "payments", "search", "growth", "data"][i % 5]);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("Host", DataType::Utf8, false),
        Field::new("Datacenter", DataType::Utf8, false),
        Field::new("Team", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(host.finish()),
        Arc::new(datacenter.finish()),
        Arc::new(team.finish()),
    ];
    // The columns match the schema by construction.
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|_| RecordBatch::new_empty(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType;
    use std::collections::HashMap;

    fn gen_all(options: GenOptions) -> Vec<RecordBatch> {
        LogGenerator::new(options).collect()
    }

    #[test]
    fn deterministic_by_seed() {
        let opts = GenOptions {
            rows: 3000,
            batch_rows: 1000,
            ..GenOptions::default()
        };
        assert_eq!(gen_all(opts.clone()), gen_all(opts.clone()));
        assert_ne!(
            gen_all(opts.clone()),
            gen_all(GenOptions { seed: 7, ..opts })
        );
    }

    #[test]
    fn shape_is_realistic() {
        let batches = gen_all(GenOptions {
            rows: 200_000,
            ..GenOptions::default()
        });
        let mut levels: HashMap<String, usize> = HashMap::new();
        let mut hosts: HashMap<String, usize> = HashMap::new();
        let mut last = i64::MIN;
        let mut users = 0;
        let mut request_ids = std::collections::HashSet::new();
        for b in &batches {
            let lv = b.column(1).as_string::<i32>();
            let hs = b.column(2).as_string::<i32>();
            let ts = b.column(0).as_primitive::<TimestampMicrosecondType>();
            let rq = b.column(5).as_string::<i32>();
            users += b.column(8).len() - b.column(8).null_count();
            for i in 0..b.num_rows() {
                *levels.entry(lv.value(i).into()).or_default() += 1;
                *hosts.entry(hs.value(i).into()).or_default() += 1;
                assert!(ts.value(i) >= last, "time goes forward");
                last = ts.value(i);
                request_ids.insert(rq.value(i).to_owned());
            }
        }
        let share = |l: &str| levels.get(l).copied().unwrap_or(0) as f64 / 200_000.0;
        assert!((share("INFO") - 0.80).abs() < 0.01, "{levels:?}");
        assert!((share("ERROR") - 0.025).abs() < 0.003, "{levels:?}");
        assert!((share("CRITICAL") - 0.005).abs() < 0.002, "{levels:?}");
        // skew: the busiest host has far more rows than the median one
        let mut counts: Vec<usize> = hosts.values().copied().collect();
        counts.sort_unstable();
        assert!(
            counts[counts.len() - 1] > 10 * counts[counts.len() / 2],
            "{counts:?}"
        );
        assert_eq!(request_ids.len(), 200_000, "request ids are unique");
        assert!((15_000..25_000).contains(&users), "sparse UserId: {users}");
    }

    #[test]
    fn inventory_covers_every_host() {
        let inv = host_inventory(200);
        assert_eq!(inv.num_rows(), 200);
        assert_eq!(inv.column(0).as_string::<i32>().value(199), host_name(199));
    }
}
