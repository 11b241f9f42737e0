//! The needle index as queries see it (`logvault_store::needles`): a lookup of given values of
//! an identifier column reads only the segments and row groups that may hold them, and answers
//! exactly as a full scan does; a segment without an index is read whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::Duration;
use logvault_query::provider::ScanStats;

use logvault_store::needles::{BlockRef, KEY_PREFIX};
use logvault_store::{AccountId, SegmentOptions, StoreConfig};

use crate::common::*;

const REQUESTS: &str = "Requests";
const ROWS: usize = 5000;
const GROUP_ROWS: usize = 1000;

/// `n` rows of segment `seg`: `RequestId` `req-<seg>-<i>` (unique), `Host` (7 values).
fn requests(seg: usize, n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("RequestId", DataType::Utf8, false),
        Field::new("Host", DataType::Utf8, false),
        Field::new("Bytes", DataType::Int64, false),
    ]));
    let start = t0() - Duration::days(seg as i64);
    let times: Vec<i64> = (0..n)
        .map(|i| {
            (start + Duration::seconds(i as i64))
                .timestamp_nanos_opt()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("req-{seg}-{i:05}")).collect();
    let hosts: Vec<String> = (0..n).map(|i| format!("host-{}", i % 7)).collect();
    let bytes: Vec<i64> = (0..n).map(|i| i as i64).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(hosts)),
            Arc::new(Int64Array::from(bytes)),
        ],
    )
    .unwrap()
}

/// Three segments of 5,000 rows in row groups of 1,000, under a customer key.
async fn three_segments() -> (Harness, AccountId) {
    three_segments_with(false).await
}

/// [`three_segments`], with or without double encryption.
async fn three_segments_with(double: bool) -> (Harness, AccountId) {
    three_segments_in(StoreConfig::default(), double).await
}

/// [`three_segments`] in a store configured as `base` (its segment options replaced).
async fn three_segments_in(base: StoreConfig, double: bool) -> (Harness, AccountId) {
    let config = StoreConfig {
        segments: SegmentOptions {
            max_row_group_rows: GROUP_ROWS,
            data_page_rows: 250,
            needle_index: true,
            ..SegmentOptions::default()
        },
        ..base
    };
    let h = Harness::with_config(config).await;
    let cluster = h.cluster_account_with(double).await;
    for seg in 0..3 {
        h.store
            .append(&cluster, WS_A, REQUESTS, vec![requests(seg, ROWS)])
            .await
            .unwrap();
    }
    (h, cluster)
}

fn load(stats: &ScanStats) -> [usize; 3] {
    [
        stats.segments_scanned.load(Ordering::SeqCst),
        stats.segments_pruned_by_needles.load(Ordering::SeqCst),
        stats.row_groups_pruned_by_needles.load(Ordering::SeqCst),
    ]
}

/// Row groups a query read (of segments of 5 groups) and segments it skipped, from the counters
/// before and after it.
fn read_and_skipped(before: [usize; 3], after: [usize; 3]) -> (usize, usize) {
    let segments = after[0] - before[0];
    let groups_skipped = after[2] - before[2];
    (
        segments * (ROWS / GROUP_ROWS) - groups_skipped,
        after[1] - before[1],
    )
}

#[tokio::test]
async fn a_lookup_reads_only_the_row_groups_that_may_hold_its_values() {
    let (h, _) = three_segments().await;
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    // Lookups of one id, either way round, with another conjunct, of two ids (an IN list, an
    // OR), of an id no segment holds: each answers as the same filter hidden in an expression
    // the index does not read (a full scan), and reads the row groups holding its ids plus
    // the filters' false positives (3% a row group and value) of the 15.
    let mut lookups = Vec::new();
    for i in 0..12 {
        let (a, b) = (
            format!("req-{}-0{}", i % 3, 1000 + i * 331),
            format!("req-{}-00{}", (i + 1) % 3, 100 + i * 29),
        );
        lookups.push((format!("RequestId = '{a}'"), 1));
        lookups.push((format!("'{b}' = RequestId AND Host <> 'none'"), 1));
        lookups.push((format!("RequestId IN ('{a}', '{b}')"), 2));
        lookups.push((format!("RequestId = '{a}' OR RequestId = '{b}'"), 2));
    }
    lookups.push(("RequestId = 'req-9-00000'".to_owned(), 0));
    let (mut read, mut holding, mut segments_skipped) = (0, 0, 0);
    for (filter, rows) in &lookups {
        let sql = format!(
            "SELECT RequestId, Host, Bytes FROM {REQUESTS} WHERE {filter} ORDER BY RequestId"
        );
        let before = load(&stats);
        let got = run(&session, &sql).await;
        let (r, s) = read_and_skipped(before, load(&stats));
        let hidden = filter.replace("RequestId", "concat(RequestId, '')");
        let full = run(
            &session,
            &format!(
                "SELECT RequestId, Host, Bytes FROM {REQUESTS} WHERE {hidden} ORDER BY RequestId"
            ),
        )
        .await;
        assert_eq!(got, full, "{filter}");
        // A table of rows has 4 border and header lines; an empty one renders as 2.
        let lines = if *rows == 0 { 2 } else { 4 + rows };
        assert_eq!(got.lines().count(), lines, "{filter}: {got}");
        assert!(r >= *rows, "{filter}: {r} row groups read");
        (read, holding, segments_skipped) = (read + r, holding + rows, segments_skipped + s);
    }
    // 49 lookups of 15 row groups: without the index 735 reads; with it the 72 groups holding
    // the ids and about 3% of the others for each value looked for (at most one more each).
    let values = 12 * 6;
    assert!(
        read <= holding + values,
        "{read} row groups read for {holding} holding the ids"
    );
    assert!(
        segments_skipped >= lookups.len(),
        "{segments_skipped} segments skipped"
    );
    // Filters that are not lookups of given values skip nothing.
    let before = load(&stats);
    run(
        &session,
        &format!("SELECT count(*) FROM {REQUESTS} WHERE RequestId > 'req-1' AND Host <> 'x'"),
    )
    .await;
    assert_eq!(read_and_skipped(before, load(&stats)), (15, 0));
}

#[tokio::test]
async fn lookups_read_the_index_through_double_encryption() {
    // The block is a byte range of the stored object: under double encryption it is read
    // through the infrastructure layer's chunks like a footer.
    let (h, _) = three_segments_with(true).await;
    let (_, absent) = present_then_absent(&h, ("req-2-04321", 4321), "req-7-00000").await;
    let (read, skipped) = read_and_skipped([0; 3], absent);
    assert!(
        skipped >= 2,
        "{skipped} segments skipped, {read} row groups read"
    );
}

#[tokio::test]
async fn lookups_use_the_index_with_the_footer_cache_off() {
    // Nothing is kept: each lookup reads and opens the blocks again, and skips the same.
    let mut base = StoreConfig::default();
    base.keyring.read_caches.footer_bytes = 0;
    let (h, _) = three_segments_in(base, false).await;
    for (read, skipped) in lookup_twice(&h, "req-1-01234", 1234).await {
        assert!(
            skipped >= 1,
            "{skipped} segments skipped, {read} row groups read"
        );
        assert!(read <= 3, "{read} row groups read");
    }
    let (plain, _) = h.store.keyring().read_caches().held_bytes();
    assert_eq!(plain, 0, "the footer cache is off");
}

#[tokio::test]
async fn a_segment_without_an_index_is_read_whole() {
    let (h, cluster) = three_segments().await;
    // Ten rows: too few to choose indexed columns from, so this segment has no index.
    h.store
        .append(&cluster, WS_A, REQUESTS, vec![requests(5, 10)])
        .await
        .unwrap();
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    for id in ["req-5-00007", "req-5-00000", "req-5-00009"] {
        let got = run(
            &session,
            &format!("SELECT RequestId FROM {REQUESTS} WHERE RequestId = '{id}'"),
        )
        .await;
        assert!(got.contains(id), "{got}");
    }
    // Of the 12 segment reads the three lookups could make, the indexed segments hold none
    // of the ids: most are skipped, the small one never.
    let [scanned, skipped, _] = load(&stats);
    assert_eq!(scanned + skipped, 12);
    assert!((3..=6).contains(&scanned), "{scanned} segments read");
}

#[tokio::test]
async fn the_decoded_index_is_kept_with_its_footer_in_the_footer_cache() {
    let (h, cluster) = three_segments().await;
    let caches = h.store.keyring().read_caches().clone();
    let session = h.session(WS_A, None).await;
    let count = format!("SELECT count(*) FROM {REQUESTS}");
    run(&session, &count).await;
    let (plain, _) = caches.held_bytes();
    assert_eq!(caches.held_entries(&cluster).0, 3);
    // A lookup by a column no segment indexes (`Host`: 7 values) decodes nothing.
    let by_host = format!("SELECT count(*) FROM {REQUESTS} WHERE Host = 'host-1'");
    run(&session, &by_host).await;
    assert_eq!(caches.held_bytes().0, plain);
    // A lookup decodes each segment's index once, into its cached footer (weighed with it).
    let lookup = format!("SELECT Bytes FROM {REQUESTS} WHERE RequestId = 'req-0-00042'");
    assert!(run(&session, &lookup).await.contains("| 42 "));
    let (with_index, _) = caches.held_bytes();
    // Five filters of at least 32 bytes in each of three footers.
    assert!(with_index >= plain + 3 * 5 * 32, "{plain} -> {with_index}");
    // Again, and other queries: the same entries, weighed the same.
    run(&session, &lookup).await;
    run(&session, &count).await;
    assert_eq!(caches.held_bytes().0, with_index);
    assert_eq!(caches.held_entries(&cluster).0, 3);
}

/// One segment of 5,000 rows in one row group, written with the index or without, and the
/// scan counters of a lookup of an id it holds and of one it does not hold.
async fn one_segment(needle_index: Option<bool>) -> (Harness, [usize; 3], [usize; 3]) {
    let mut config = StoreConfig::default();
    if let Some(on) = needle_index {
        config.segments.needle_index = on;
    }
    let h = Harness::with_config(config).await;
    let cluster = h.cluster_account().await;
    h.store
        .append(&cluster, WS_A, REQUESTS, vec![requests(0, ROWS)])
        .await
        .unwrap();
    let (present, absent) = present_then_absent(&h, ("req-0-00042", 42), "req-7-00042").await;
    (h, present, absent)
}

/// In a new session, a lookup of `id` (whose `Bytes` is `bytes`) run twice: the row groups read
/// and the segments skipped by each run.
async fn lookup_twice(h: &Harness, id: &str, bytes: usize) -> [(usize, usize); 2] {
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    let mut out = [(0, 0); 2];
    for run_of in &mut out {
        let before = load(&stats);
        let got = run(
            &session,
            &format!("SELECT Bytes FROM {REQUESTS} WHERE RequestId = '{id}'"),
        )
        .await;
        assert!(got.contains(&format!("| {bytes} ")), "{got}");
        *run_of = read_and_skipped(before, load(&stats));
    }
    out
}

/// In a new session: a lookup of an id that holds `Bytes` = the given value, then of an id no
/// segment holds; the scan counters of each (as [`load`] gives them).
async fn present_then_absent(
    h: &Harness,
    (id, bytes): (&str, usize),
    absent: &str,
) -> ([usize; 3], [usize; 3]) {
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    let lookup = |id: &str| format!("SELECT Bytes FROM {REQUESTS} WHERE RequestId = '{id}'");
    let got = run(&session, &lookup(id)).await;
    assert!(got.contains(&format!("| {bytes} ")), "{got}");
    let present = load(&stats);
    let got = run(&session, &lookup(absent)).await;
    assert_eq!(got.lines().count(), 2, "{got}");
    let after = load(&stats);
    (present, [0, 1, 2].map(|i| after[i] - present[i]))
}

#[tokio::test]
async fn segments_carry_an_index_unless_the_store_is_told_not_to() {
    // The default: the segment holding the id is read, the lookup of an absent id skips it.
    let (_, present, absent) = one_segment(None).await;
    assert_eq!(present, [1, 0, 0]);
    assert_eq!(
        absent,
        [0, 1, 0],
        "the absent id's lookup skips the segment"
    );
    // Told not to: both lookups read the segment whole.
    let (_, present, absent) = one_segment(Some(false)).await;
    assert_eq!(present, [1, 0, 0]);
    assert_eq!(absent, [1, 0, 0], "without an index the segment is read");
}

#[tokio::test]
async fn the_index_is_sealed_after_the_row_groups_and_the_footer_only_names_it() {
    let (h, cluster) = three_segments().await;
    let manifest = h.store.catalog().manifest(WS_A, REQUESTS).await.unwrap();
    let loc = manifest.location(&manifest.segments[0]);
    let (path, meta) = segment_file(&h, &loc).await;
    let file = std::fs::read(&path).unwrap();
    let block = BlockRef::of(&meta).unwrap().unwrap();
    assert_eq!(block.columns, ["RequestId"]);
    // After the last row group's last column chunk, before the footer; the footer holds no
    // filter (version 1's entries are gone) and is small.
    let last_chunk_end = meta
        .row_groups()
        .iter()
        .flat_map(|g| g.columns())
        .map(|c| c.byte_range().0 + c.byte_range().1)
        .max()
        .unwrap();
    assert!(
        block.offset >= last_chunk_end,
        "{block:?} before {last_chunk_end}"
    );
    assert!(block.offset + block.length < file.len() as u64);
    let entries = meta.file_metadata().key_value_metadata().unwrap();
    assert!(
        entries.iter().all(|kv| !kv.key.starts_with(KEY_PREFIX)),
        "{entries:?}"
    );
    let footer_len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    assert!(
        u64::from(footer_len) < block.length,
        "footer {footer_len} bytes, index {} bytes",
        block.length
    );
    // Sealed: no id of the segment is there in clear.
    let range = block.offset as usize..(block.offset + block.length) as usize;
    assert!(!file[range.clone()].windows(5).any(|w| w == b"req-0"));

    // A flipped bit in the block: lookups answer as before, reading every row group of that
    // segment (its index is not used, and not kept); the other segments still skip.
    let mut bad = file.clone();
    bad[range.start + range.len() / 2] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    for (read, skipped) in lookup_twice(&h, "req-1-00042", 42).await {
        assert!(read >= ROWS / GROUP_ROWS, "{read} row groups read");
        assert!(skipped <= 1, "{skipped} segments skipped");
    }
    // The scrub names it.
    let report = h
        .store
        .verify_workspace(WS_A, Some(REQUESTS), &Default::default(), &mut |_| {})
        .await
        .unwrap();
    let damaged = report.damaged_segments();
    assert_eq!(damaged.len(), 1, "{report:?}");
    assert_eq!(damaged[0].segment, loc.to_string());
    let reason = format!("{:?}", damaged[0].status);
    assert!(reason.contains("needle index"), "{reason}");
    let _ = cluster;
}
