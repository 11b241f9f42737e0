//! Tamper sweeps (issue 25): one bit flipped at byte after byte of every kind of module the
//! store reads, and what each read makes of it.
//!
//! - The scrub (`Store::verify_workspace`) must report the segment damaged for a flip at
//!   *every* byte of a segment: leading magic, dictionary pages, data pages and their headers,
//!   column and offset indexes, footer, footer length, trailing magic; with double encryption,
//!   every byte of the stored object (infrastructure header, chunks, tags).
//! - A query (DataFusion through the encryption factory) must never return other rows: it fails,
//!   or it returns exactly the rows of the intact segment, and the latter only for bytes a full
//!   scan never decodes (the leading magic and the page indexes, which only a filtered query with
//!   page-index pruning reads; the scrub covers them).
//! - Every byte of a catalog manifest: the manifest does not open, and the scrub says which
//!   version.
//!
//! `LOGVAULT_SWEEP_STRIDE=1` sweeps every byte (the figures in `docs/reliability.md`); CI sweeps
//! every few bytes and every module at least once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use chrono::Duration;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use logvault_store::needles::BlockRef;
use logvault_store::{
    AccountId, Manifest, SegmentCompression, SegmentLocation, SegmentOptions, SegmentStatus, Store,
    StoreConfig, table_parquet_options,
};

use crate::common::*;

fn stride() -> usize {
    std::env::var("LOGVAULT_SWEEP_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &usize| *s > 0)
        .unwrap_or(7)
}

/// Small segments with several row groups, pages and dictionary pages.
fn small_segments() -> StoreConfig {
    StoreConfig {
        segments: SegmentOptions {
            max_row_group_rows: 120,
            data_page_rows: 40,
            compression: SegmentCompression::Zstd(1),
            ..SegmentOptions::default()
        },
        ..StoreConfig::default()
    }
}

struct Fixture {
    h: Harness,
    loc: SegmentLocation,
    path: PathBuf,
    good: Vec<u8>,
}

async fn fixture(double: bool) -> Fixture {
    let h = Harness::with_config(small_segments()).await;
    let account = if double {
        h.cluster_account(true).await
    } else {
        AccountId::service()
    };
    let (entry, manifest) = h
        .store
        .append(
            &account,
            WS,
            TABLE,
            vec![with_request_ids(
                &log_batch(t0(), 240, "tamper"),
                (0..240).map(|i| format!("req-{i:05}")).collect(),
            )],
        )
        .await
        .unwrap();
    let loc = manifest.location(&entry);
    let path = h.segment_file(&loc);
    let good = std::fs::read(&path).unwrap();
    Fixture { h, loc, path, good }
}

/// The module kind of each byte of a (single-layer) segment, from its decrypted metadata.
async fn module_map(f: &Fixture) -> Vec<&'static str> {
    let meta = f.h.segment_metadata(&f.loc, &f.good, true).await;
    let n = f.good.len();
    let mut map = vec!["unclassified"; n];
    let mut mark = |from: u64, len: u64, kind: &'static str| {
        for b in &mut map[from as usize..(from + len) as usize] {
            *b = kind;
        }
    };
    mark(0, 4, "leading magic");
    let footer_len = u32::from_le_bytes(f.good[n - 8..n - 4].try_into().unwrap()) as u64;
    mark(n as u64 - 8 - footer_len, footer_len, "footer");
    mark(n as u64 - 8, 4, "footer length");
    mark(n as u64 - 4, 4, "trailing magic");
    let len_at = |at: u64| {
        u32::from_le_bytes(f.good[at as usize..at as usize + 4].try_into().unwrap()) as u64
    };
    // The encrypted footer module: the last thing in the footer.
    let footer_end = n as u64 - 8;
    let footer_module = (footer_end - footer_len..footer_end - 4)
        .find(|p| len_at(*p) >= 28 && p + 4 + len_at(*p) == footer_end)
        .unwrap();
    // Before it, the plaintext crypto metadata (Parquet's `FileCryptoMetaData`: the algorithm,
    // the file's AAD suffix, the key metadata).
    mark(
        footer_end - footer_len,
        footer_module - (footer_end - footer_len),
        "crypto metadata",
    );
    let mut prefixes = vec![(footer_module, "footer module length prefix")];
    if let Some(block) = BlockRef::of(&meta) {
        let block = block.unwrap();
        mark(block.offset, block.length, "needle index");
    }
    let offsets = meta.offset_index().unwrap();
    for (r, rg) in meta.row_groups().iter().enumerate() {
        for (i, c) in rg.columns().iter().enumerate() {
            let data = c.data_page_offset() as u64;
            let (start, len) = c.byte_range();
            if let Some(dict) = c.dictionary_page_offset() {
                mark(dict as u64, data - dict as u64, "dictionary page");
                prefixes.push((
                    dict as u64 + 4 + len_at(dict as u64),
                    "page body length prefix",
                ));
            }
            mark(data, start + len - data, "data page");
            for page in offsets[r][i].page_locations() {
                let at = page.offset as u64;
                prefixes.push((at + 4 + len_at(at), "page body length prefix"));
            }
            if let (Some(o), Some(l)) = (c.column_index_offset(), c.column_index_length()) {
                mark(o as u64, l as u64, "column index");
            }
            if let (Some(o), Some(l)) = (c.offset_index_offset(), c.offset_index_length()) {
                mark(o as u64, l as u64, "offset index");
            }
        }
    }
    for (at, kind) in prefixes {
        mark(at, 4, kind);
    }
    map
}

/// Positions to flip: every `stride`-th byte, plus the first and last byte of every module.
fn positions(map: &[&'static str]) -> Vec<usize> {
    let s = stride();
    let mut out: Vec<usize> = (0..map.len()).step_by(s).collect();
    for i in 0..map.len() {
        if i == 0 || i + 1 == map.len() || map[i - 1] != map[i] || map[i + 1] != map[i] {
            out.push(i);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

async fn scrub_status(f: &Fixture) -> SegmentStatus {
    let report =
        f.h.store
            .verify_workspace(WS, Some(TABLE), &BTreeMap::new(), &mut |_| {})
            .await
            .unwrap();
    let seg = &report.tables[0].segments[0];
    assert_eq!(seg.segment, f.loc.to_string());
    seg.status.clone()
}

#[tokio::test]
async fn the_scrub_catches_a_flipped_bit_at_every_byte_of_a_segment() {
    let f = fixture(false).await;
    assert_eq!(scrub_status(&f).await, SegmentStatus::Ok);
    let map = module_map(&f).await;
    assert!(
        !map.contains(&"unclassified"),
        "bytes outside every module: {:?}",
        map.iter()
            .enumerate()
            .filter(|(_, k)| **k == "unclassified")
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    );
    let mut caught: BTreeMap<&str, usize> = BTreeMap::new();
    for at in positions(&map) {
        let mut bad = f.good.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&f.path, &bad).unwrap();
        match scrub_status(&f).await {
            SegmentStatus::Damaged { reason } => {
                assert!(!reason.is_empty());
                *caught.entry(map[at]).or_default() += 1;
            }
            other => panic!(
                "a flip at byte {at} ({}) was not caught: {other:?}",
                map[at]
            ),
        }
    }
    std::fs::write(&f.path, &f.good).unwrap();
    eprintln!(
        "scrub sweep of a {}-byte segment: caught per module {caught:?}",
        f.good.len()
    );
    for kind in [
        "leading magic",
        "dictionary page",
        "data page",
        "page body length prefix",
        "column index",
        "offset index",
        "crypto metadata",
        "footer",
        "footer module length prefix",
        "footer length",
        "trailing magic",
        "needle index",
    ] {
        assert!(
            caught.get(kind).copied().unwrap_or(0) > 0,
            "no flip in {kind} was tried"
        );
    }
}

#[tokio::test]
async fn the_scrub_catches_a_flipped_bit_at_every_byte_of_a_double_encrypted_segment() {
    let f = fixture(true).await;
    assert_eq!(scrub_status(&f).await, SegmentStatus::Ok);
    let n = f.good.len();
    let mut tried = 0;
    for at in (0..n)
        .step_by(stride())
        .chain([40, 41, n - 17, n - 16, n - 1])
    {
        let mut bad = f.good.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&f.path, &bad).unwrap();
        let status = scrub_status(&f).await;
        assert!(
            matches!(status, SegmentStatus::Damaged { .. }),
            "a flip at byte {at} of the stored object was not caught: {status:?}"
        );
        tried += 1;
    }
    eprintln!("scrub sweep of a {n}-byte double-encrypted object: {tried} flips, all caught");
}

fn listing(manifest: &Manifest) -> ListingTable {
    let urls = manifest
        .segments
        .iter()
        .map(|e| ListingTableUrl::parse(Store::segment_url(&manifest.location(e))).unwrap())
        .collect();
    let format = ParquetFormat::default().with_options(table_parquet_options());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(manifest.segments[0].schema.clone());
    ListingTable::try_new(config).unwrap()
}

/// Runs `sql`; a panic inside the query (parquet-rs on some damaged module lengths) is caught
/// and returned as `Err("panic: ...")`.
async fn query(store: &Store, manifest: &Manifest, sql: &str) -> Result<String, String> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(query_inner(store, manifest, sql))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        )),
    }
}

async fn query_inner(store: &Store, manifest: &Manifest, sql: &str) -> Result<String, String> {
    let ctx = SessionContext::new();
    store.register(&ctx).map_err(|e| e.to_string())?;
    ctx.register_table("logs", Arc::new(listing(manifest)))
        .map_err(|e| e.to_string())?;
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(pretty_format_batches(&batches)
        .map_err(|e| e.to_string())?
        .to_string())
}

#[tokio::test]
async fn queries_over_a_tampered_segment_fail_or_give_the_same_rows_never_others() {
    let f = fixture(false).await;
    let map = module_map(&f).await;
    let manifest = f.h.store.catalog().manifest(WS, TABLE).await.unwrap();
    let scan = "SELECT * FROM logs ORDER BY \"TimeGenerated\"";
    // The last rows only: row groups pruned by statistics, pages by the page index.
    let filtered = format!(
        "SELECT \"Message\" FROM logs WHERE \"TimeGenerated\" >= TIMESTAMP '{}' ORDER BY \"Message\"",
        (t0() + Duration::seconds(230)).to_rfc3339()
    );
    let want_scan = query(&f.h.store, &manifest, scan).await.unwrap();
    let want_filtered = query(&f.h.store, &manifest, &filtered).await.unwrap();
    // Which module kinds a flip may leave unnoticed by a query: what it leaves undecoded (a
    // flip there changes nothing), and the crypto metadata.
    let never_decoded_by_scan = [
        "leading magic",
        "column index",
        "offset index",
        "page body length prefix",
        "footer module length prefix",
        // Not authenticated by Parquet's design: parquet-rs reads its fields by id, so a flip
        // of a field header's type bits (the struct of the algorithm read as an integer) reads
        // the same. The AAD suffix in it goes into every module's AAD, and the scrub checks
        // these bytes are exactly what logvault writes (the test above).
        "crypto metadata",
        // Read only by a lookup through logvault's query provider (which then leaves it
        // unused and reads every row group); the scrub covers it.
        "needle index",
    ];
    let mut outcomes: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    // Every module at least once, a sample inside (queries are slower than the scrub).
    let mut at_list = positions(&map);
    at_list.retain(|i| i % 3 == 0 || (*i > 0 && map[i - 1] != map[*i]));
    for at in at_list {
        let mut bad = f.good.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&f.path, &bad).unwrap();
        for (name, sql, want) in [
            ("scan", scan, &want_scan),
            ("filtered", filtered.as_str(), &want_filtered),
        ] {
            let outcome = match query(&f.h.store, &manifest, sql).await {
                Err(e) if e.starts_with("panic") => "panic",
                Err(_) => "error",
                Ok(got) if &got == want => "same rows",
                Ok(got) => panic!(
                    "a flip at byte {at} ({}) gave other rows to the {name} query:\n{got}",
                    map[at]
                ),
            };
            if name == "scan" && outcome == "same rows" {
                assert!(
                    never_decoded_by_scan.contains(&map[at]),
                    "a flip at byte {at} ({}) went unnoticed by a full scan",
                    map[at]
                );
            }
            *outcomes.entry((name, map[at], outcome)).or_default() += 1;
        }
    }
    std::fs::write(&f.path, &f.good).unwrap();
    eprintln!("query sweep: {outcomes:?}");
}

#[tokio::test]
async fn a_flipped_bit_anywhere_in_a_catalog_manifest_is_caught_and_named() {
    let h = Harness::with_config(small_segments()).await;
    for i in 0..2 {
        h.store
            .append(
                &AccountId::service(),
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::days(i), 50, "m")],
            )
            .await
            .unwrap();
    }
    let dir = h
        .storage()
        .join("service/objects/catalog")
        .join(WS)
        .join(TABLE);
    let path = dir.join("00000000000000000002.manifest");
    let good = std::fs::read(&path).unwrap();
    let mut tried = 0;
    for at in (0..good.len())
        .step_by(stride())
        .chain([0, 11, 12, good.len() - 16, good.len() - 1])
    {
        let mut bad = good.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&path, &bad).unwrap();
        let err = h.store.catalog().manifest(WS, TABLE).await.unwrap_err();
        assert!(err.is_integrity(), "flip at {at}: {err}");
        let report = h
            .store
            .verify_workspace(WS, None, &BTreeMap::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.tables[0].damaged_manifests.len(), 1, "flip at {at}");
        assert_eq!(report.tables[0].damaged_manifests[0].version, 2);
        assert!(!report.is_clean());
        tried += 1;
    }
    std::fs::write(&path, &good).unwrap();
    let report = h
        .store
        .verify_workspace(WS, None, &BTreeMap::new(), &mut |_| {})
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        (report.segments_ok, report.tables[0].manifest_versions),
        (2, 2)
    );
    eprintln!(
        "manifest sweep: {tried} flips of a {}-byte manifest, all caught",
        good.len()
    );
}

#[tokio::test]
async fn the_scrub_names_missing_and_orphan_segments_and_skips_refused_keys() {
    let h = Harness::with_config(small_segments()).await;
    let cluster = h.cluster_account(false).await;
    let mut locs = Vec::new();
    for (i, account) in [AccountId::service(), AccountId::service(), cluster.clone()]
        .iter()
        .enumerate()
    {
        let (entry, manifest) = h
            .store
            .append(
                account,
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::hours(i as i64), 30, "o")],
            )
            .await
            .unwrap();
        locs.push(manifest.location(&entry));
    }
    // A segment written but never recorded (a crash between the two): an orphan.
    let orphan = h
        .store
        .write_segment(
            &AccountId::service(),
            WS,
            TABLE,
            vec![log_batch(t0(), 5, "x")],
        )
        .await
        .unwrap();
    let file = |loc: &SegmentLocation| {
        h.storage()
            .join(loc.account.as_str())
            .join("objects")
            .join(loc.object_path().as_ref())
    };
    std::fs::remove_file(file(&locs[1])).unwrap();
    let refused = BTreeMap::from([(
        cluster.clone(),
        "the key of cluster prod1 is revoked".to_owned(),
    )]);
    let mut seen = Vec::new();
    let report = h
        .store
        .verify_workspace(WS, None, &refused, &mut |p| seen.push(p))
        .await
        .unwrap();
    let t = &report.tables[0];
    let status = |loc: &SegmentLocation| {
        t.segments
            .iter()
            .find(|s| s.segment == loc.to_string())
            .map(|s| s.status.clone())
            .unwrap()
    };
    assert_eq!(status(&locs[0]), SegmentStatus::Ok);
    assert_eq!(status(&locs[1]), SegmentStatus::Missing);
    assert!(
        matches!(status(&locs[2]), SegmentStatus::Skipped { reason } if reason.contains("revoked"))
    );
    assert_eq!(
        t.orphans,
        vec![format!("service/{WS}/{TABLE}/{}", orphan.id)]
    );
    assert_eq!(
        (
            report.segments_ok,
            report.damaged,
            report.skipped,
            report.orphans
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.damaged_segments()[0].segment, locs[1].to_string());
    assert_eq!(
        seen.last().map(|p| (p.segments_done, p.segments_total)),
        Some((3, 3))
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["tables"][0]["segments"][1]["status"], "missing");
}
