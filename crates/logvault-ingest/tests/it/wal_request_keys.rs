//! The request keys a group of the log carries: given back by the next open, from records after
//! the checkpoint and from checkpointed ones still on disk; a log without them is unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use logvault_crypto::Aek;
use logvault_ingest::{
    IngestError, Recovery, Wal, WalKey, WalKeyError, WalKeyRef, WalKeyScheme, WalOptions, WalRecord,
};

const WS: &str = "ws-request-keys";

struct Ring(HashMap<WalKeyRef, Arc<WalKey>>);

impl logvault_ingest::WalKeyring for Ring {
    fn key(&self, key_ref: &WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError> {
        self.0
            .get(key_ref)
            .cloned()
            .map(Some)
            .ok_or_else(|| WalKeyError::Unavailable(format!("no key {key_ref}")))
    }
}

fn key() -> Arc<WalKey> {
    let aek = Aek::generate().unwrap();
    let key_ref = WalKeyRef {
        scheme: WalKeyScheme::Service,
        account: "acct".to_owned(),
    };
    Arc::new(WalKey::new(key_ref, aek.derive_purpose_key("wal").unwrap()).unwrap())
}

fn batch(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("N", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
}

fn open(dir: &std::path::Path, ring: &Ring) -> Result<(Wal, Recovery), IngestError> {
    Wal::open(dir, WS, WalOptions::default(), ring)
}

#[tokio::test]
async fn request_keys_come_back_from_records_after_and_at_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let ring = Ring([(k.key_ref().clone(), Arc::clone(&k))].into());
    let (one, two) = (batch(3), batch(2));
    {
        let (wal, rec) = open(dir.path(), &ring).unwrap();
        assert!(rec.request_keys.is_empty());
        // A group of two records with two requests' keys, a group without keys, and a later
        // keyed group.
        let group = [
            WalRecord {
                table: "A",
                batch: &one,
            },
            WalRecord {
                table: "B",
                batch: &two,
            },
        ];
        let keys = vec!["req-1:aa".to_owned(), "req-2:bb".to_owned()];
        let first = wal.append_keyed(&k, &group, &keys).await.unwrap();
        assert_eq!((first.first, first.last), (1, 2));
        wal.append(&k, &group[..1]).await.unwrap();
        wal.append_keyed(&k, &group[1..], &["req-3:cc".to_owned()])
            .await
            .unwrap();
        // Records 1 to 3 are stored (checkpointed); 4 is not.
        wal.checkpoint(3).await.unwrap();
        wal.close();
    }
    let (wal, rec) = open(dir.path(), &ring).unwrap();
    assert_eq!(rec.checkpoint, 3);
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![4]
    );
    // The keys of the checkpointed group and of the one to replay, oldest first; the records
    // themselves are given back as before (both rows of the keyed record).
    assert_eq!(rec.request_keys, vec!["req-1:aa", "req-2:bb", "req-3:cc"]);
    assert_eq!(rec.records[0].batch, two);
    assert_eq!(rec.records[0].table, "B");
    wal.close();
}

#[tokio::test]
async fn a_key_too_long_for_a_record_is_refused_and_nothing_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let ring = Ring([(k.key_ref().clone(), Arc::clone(&k))].into());
    let one = batch(1);
    let (wal, _) = open(dir.path(), &ring).unwrap();
    let long = "x".repeat(logvault_ingest::wal::MAX_REQUEST_KEY_LEN + 1);
    let err = wal
        .append_keyed(
            &k,
            &[WalRecord {
                table: "A",
                batch: &one,
            }],
            &[long],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("request key"), "{err}");
    wal.close();
    let (_, rec) = open(dir.path(), &ring).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(rec.next_seq, 1);
}
