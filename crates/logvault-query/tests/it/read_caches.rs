//! The keyring's read caches as queries see them: a warm query decrypts no footer (and, under
//! double encryption, no outer chunk) again; revocation empties them and the next query fails
//! at the gate; a compacted table is read from its new segment, never from stale metadata.

use std::sync::atomic::Ordering;

use logvault_store::{AccountId, CompactionOptions, ReadCaches};

use crate::common::*;

fn footer_decrypts(c: &ReadCaches) -> u64 {
    c.stats().footer_decrypts.load(Ordering::SeqCst)
}

fn outer_decrypts(c: &ReadCaches) -> u64 {
    c.stats().outer_decrypts.load(Ordering::SeqCst)
}

async fn three_segments(h: &Harness, double: bool) -> AccountId {
    let cluster = h.cluster_account_with(double).await;
    for day in 0..3 {
        h.append(&cluster, WS_A, day, 1000, "footer").await;
    }
    cluster
}

#[tokio::test]
async fn a_second_query_decrypts_no_footer_again() {
    let h = Harness::new().await;
    let cluster = three_segments(&h, false).await;
    let caches = h.store.keyring().read_caches().clone();
    let session = h.session(WS_A, None).await;
    let first: Vec<String> = futures::future::join_all(QUERIES.iter().map(|q| run(&session, q)))
        .await
        .into_iter()
        .collect();
    let cold = footer_decrypts(&caches);
    assert!(cold >= 3, "{cold}");
    assert_eq!(caches.held_entries(&cluster).0, 3);
    // The same queries again, in this session and in a new one: same answers, no decryption.
    let hits = caches.stats().footer_hits.load(Ordering::SeqCst);
    for s in [&session, &h.session(WS_A, None).await] {
        for (q, expected) in QUERIES.iter().zip(&first) {
            assert_eq!(&run(s, q).await, expected, "{q}");
        }
    }
    assert_eq!(footer_decrypts(&caches), cold);
    assert!(caches.stats().footer_hits.load(Ordering::SeqCst) >= hits + 3 * 2);
}

#[tokio::test]
async fn revocation_empties_the_read_caches_and_the_next_query_fails_at_the_gate() {
    for double in [false, true] {
        let h = Harness::new().await;
        let cluster = three_segments(&h, double).await;
        let caches = h.store.keyring().read_caches().clone();
        let session = h.session(WS_A, None).await;
        let expected = run(&session, QUERIES[2]).await;
        let (footers, outer) = caches.held_entries(&cluster);
        assert_eq!(footers, 3);
        assert_eq!(outer > 0, double, "{outer}");
        let outer_cold = outer_decrypts(&caches);
        assert_eq!(run(&session, QUERIES[2]).await, expected);
        assert_eq!(outer_decrypts(&caches), outer_cold, "double: {double}");

        // Revoked: the key is disabled in the vault and the keyring evicts it.
        h.vault
            .set_key_enabled("contoso", "cmk", None, false)
            .unwrap();
        h.store.keyring().evict(&cluster);
        assert_eq!(caches.held_entries(&cluster), (0, 0));
        // The open session's next query fails at the file gate (no cached key), before any
        // footer is served; a new session fails at the key gate.
        let err = run_err(&session, QUERIES[2]).await;
        assert!(err.contains("cluster-prod1"), "{err}");
        let gate = logvault_query::KeyringGate::new(std::sync::Arc::clone(&h.store));
        let options = logvault_query::SessionOptions::at(t0());
        let err = logvault_query::WorkspaceSession::open_with_cache(
            std::sync::Arc::clone(&h.store),
            WS_A,
            &options,
            &gate,
            None,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("cluster-prod1"), "{err}");
        assert_eq!(caches.held_entries(&cluster), (0, 0));

        // Restored: the footers are decrypted again under the key unwrapped anew.
        h.vault
            .set_key_enabled("contoso", "cmk", None, true)
            .unwrap();
        let before = footer_decrypts(&caches);
        assert_eq!(
            run(&h.session(WS_A, None).await, QUERIES[2]).await,
            expected
        );
        assert!(footer_decrypts(&caches) >= before + 3);
    }
}

#[tokio::test]
async fn a_compacted_table_is_read_from_its_new_segment() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    for _ in 0..3 {
        h.append(&cluster, WS_A, 0, 1000, "compact").await;
    }
    let caches = h.store.keyring().read_caches().clone();
    let expected: Vec<String> = {
        let s = h.session(WS_A, None).await;
        let mut out = Vec::new();
        for q in QUERIES {
            out.push(run(&s, q).await);
        }
        out
    };
    assert_eq!(caches.held_entries(&cluster).0, 3);
    let report = h
        .store
        .compact_table(WS_A, TABLE, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (report.segments_before, report.segments_after),
        (3, 1),
        "{report:?}"
    );
    let before = footer_decrypts(&caches);
    let s = h.session(WS_A, None).await;
    for (q, e) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&s, q).await, e, "{q}");
    }
    // The merged segment's footer was decrypted (once); the old ones were not used.
    assert_eq!(footer_decrypts(&caches), before + 1);
    assert_eq!(caches.held_entries(&cluster).0, 4);
}
