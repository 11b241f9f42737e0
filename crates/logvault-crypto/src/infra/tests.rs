//! Round trips, ranges and tampering of the infrastructure layer.

use super::*;
use proptest::prelude::*;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn whole_object_round_trip_and_location_binding() {
    let key = InfraKey::generate().unwrap();
    let pt = data(10_000);
    let obj = key.encrypt_object("a/b.parquet", &pt, 1024).unwrap();
    assert_eq!(
        obj.len() as u64,
        InfraHeader::parse(&obj, "x").unwrap().object_len()
    );
    assert_eq!(key.decrypt_object("a/b.parquet", &obj).unwrap(), pt);
    assert!(key.decrypt_object("a/c.parquet", &obj).is_err());
    assert!(
        InfraKey::generate()
            .unwrap()
            .decrypt_object("a/b.parquet", &obj)
            .is_err()
    );
    // truncation by a whole chunk is caught (length and last flag)
    let short = &obj[..obj.len() - (1024 + CHUNK_TAG_LEN)];
    assert!(key.decrypt_object("a/b.parquet", short).is_err());
    let mut flipped = obj.clone();
    flipped[HEADER_LEN + 5] ^= 0x40;
    let err = key
        .decrypt_object("a/b.parquet", &flipped)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a/b.parquet") && err.contains("chunk 0"),
        "{err}"
    );
}

#[test]
fn empty_object_round_trips() {
    let key = InfraKey::generate().unwrap();
    let obj = key.encrypt_object("e", &[], 64).unwrap();
    assert_eq!(obj.len(), HEADER_LEN);
    assert!(key.decrypt_object("e", &obj).unwrap().is_empty());
}

/// `pt` streamed through a sealer in the pieces `cuts` makes.
fn streamed(key: &InfraKey, loc: &str, pt: &[u8], cuts: &[usize], chunk: u32) -> Vec<u8> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(pt.len())).collect();
    cuts.push(0);
    cuts.push(pt.len());
    cuts.sort_unstable();
    let mut sealer = key.sealer(loc, chunk).unwrap();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let before = out.len();
        sealer.push(&pt[w[0]..w[1]], &mut out).unwrap();
        // What a push gives out is whole chunks (and the header once).
        let stride = chunk as usize + CHUNK_TAG_LEN;
        let header = if before == 0 && !out.is_empty() {
            HEADER_LEN
        } else {
            0
        };
        assert_eq!((out.len() - before - header) % stride, 0);
    }
    sealer.finish(&mut out).unwrap();
    out
}

#[test]
fn a_streamed_object_needs_its_size_and_catches_truncation_and_appending() {
    let key = InfraKey::generate().unwrap();
    let pt = data(4096 * 3);
    // Exactly three chunks: the third is the last, held back until the end.
    let obj = streamed(&key, "s/t", &pt, &[100, 5000], 4096);
    assert_eq!(obj.len(), HEADER_LEN + 3 * (4096 + CHUNK_TAG_LEN));
    assert!(
        InfraHeader::parse(&obj, "s/t").is_err(),
        "version 2 has no length"
    );
    let header = InfraHeader::parse_sized(&obj, obj.len() as u64, "s/t").unwrap();
    assert_eq!(header.plaintext_len, pt.len() as u64);
    assert_eq!(header.chunk_count(), 3);
    assert_eq!(key.decrypt_object("s/t", &obj).unwrap(), pt);
    assert!(key.decrypt_object("s/u", &obj).is_err());
    // Dropping the last chunk, or appending one sealed as the last elsewhere, fails.
    let short = &obj[..obj.len() - (4096 + CHUNK_TAG_LEN)];
    let err = key.decrypt_object("s/t", short).unwrap_err().to_string();
    assert!(err.contains("s/t") && err.contains("chunk 1"), "{err}");
    let mut long = obj.clone();
    long.extend_from_slice(&obj[HEADER_LEN + 2 * (4096 + CHUNK_TAG_LEN)..]);
    assert!(key.decrypt_object("s/t", &long).is_err());
    // A size no streamed object has: the header alone (an object has at least its last
    // chunk), or a last chunk shorter than a tag.
    assert!(key.decrypt_object("s/t", &obj[..HEADER_LEN]).is_err());
    assert!(
        key.decrypt_object("s/t", &obj[..HEADER_LEN + 4096 + CHUNK_TAG_LEN + 5])
            .is_err()
    );
    // An empty object is one empty chunk.
    let empty = streamed(&key, "e", &[], &[], 64);
    assert_eq!(empty.len(), HEADER_LEN + CHUNK_TAG_LEN);
    assert!(key.decrypt_object("e", &empty).unwrap().is_empty());
    // Whole objects (version 1) still parse both ways.
    let whole = key.encrypt_object("w", &pt, 4096).unwrap();
    assert_eq!(
        InfraHeader::parse(&whole, "w").unwrap().plaintext_len,
        pt.len() as u64
    );
    assert!(InfraHeader::parse_sized(&whole, whole.len() as u64 + 1, "w").is_err());
}

/// The plaintext range `range` of `obj` (whose plaintext is `pt`), decrypted from the
/// chunks that cover it only, is that part of `pt` (nothing for an empty range).
fn check_range(
    key: &InfraKey,
    header: &InfraHeader,
    obj: &[u8],
    pt: &[u8],
    range: Range<u64>,
) -> Result<(), TestCaseError> {
    let (chunks, bytes) = header.chunks_for(&range);
    let got = key
        .decrypt_chunks(
            "loc",
            header,
            chunks.clone(),
            &obj[bytes.start as usize..bytes.end as usize],
        )
        .unwrap();
    let (lo, hi) = (range.start, range.end.min(pt.len() as u64));
    if lo < hi {
        let offset = (lo - chunks.start * u64::from(header.chunk_size)) as usize;
        prop_assert_eq!(
            &got[offset..offset + (hi - lo) as usize],
            &pt[lo as usize..hi as usize]
        );
    } else {
        prop_assert!(got.is_empty());
    }
    Ok(())
}

proptest! {
    #[test]
    fn an_object_in_pieces_encrypts_as_the_whole(
        len in 0usize..5000, chunk in 1u32..700, cuts in proptest::collection::vec(0usize..5000, 0..6)
    ) {
        let key = InfraKey::generate().unwrap();
        let pt = data(len);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
        cuts.push(0);
        cuts.push(len);
        cuts.sort_unstable();
        let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &pt[w[0]..w[1]]).collect();
        let obj = key.encrypt_object_pieces("loc", &pieces, chunk).unwrap();
        prop_assert_eq!(obj.len() as u64, InfraHeader::parse(&obj, "loc").unwrap().object_len());
        prop_assert_eq!(key.decrypt_object("loc", &obj).unwrap(), pt);
    }

    #[test]
    fn a_streamed_object_decrypts_whole_and_by_range(
        len in 0usize..5000, chunk in 1u32..700, cuts in proptest::collection::vec(0usize..5000, 0..6),
        a in 0u64..6000, b in 0u64..6000
    ) {
        let key = InfraKey::generate().unwrap();
        let pt = data(len);
        let obj = streamed(&key, "loc", &pt, &cuts, chunk);
        prop_assert_eq!(&key.decrypt_object("loc", &obj).unwrap(), &pt);
        let header = InfraHeader::parse_sized(&obj, obj.len() as u64, "loc").unwrap();
        prop_assert_eq!(header.plaintext_len, len as u64);
        check_range(&key, &header, &obj, &pt, a.min(b)..a.max(b))?;
    }

    #[test]
    fn any_range_decrypts_from_its_chunks_only(
        len in 0usize..5000, chunk in 1u32..700, a in 0u64..6000, b in 0u64..6000
    ) {
        let key = InfraKey::generate().unwrap();
        let pt = data(len);
        let obj = key.encrypt_object("loc", &pt, chunk).unwrap();
        let header = InfraHeader::parse(&obj, "loc").unwrap();
        check_range(&key, &header, &obj, &pt, a.min(b)..a.max(b))?;
    }
}
