//! Every real sample file ingests through the engine with the row count of its manifest, and
//! nothing of it is readable on disk.

use std::path::PathBuf;

use logvault::IngestOptions;
use logvault::ingest::Format;

use crate::common::{WS, home};

/// The repository's `data/` directory (the real exports are in `data/azure_la`, with their
/// manifest and licences).
fn repo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn manifest(data: &std::path::Path) -> Vec<(String, String, u64)> {
    let text = std::fs::read_to_string(data.join("azure_la/MANIFEST.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, format, rows) = (col("file"), col("format"), col("rows"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[file].to_owned(),
                f[format].to_owned(),
                f[rows].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_sample_file_ingests_with_its_manifest_row_count() {
    let h = home().await;
    h.workspace(WS);
    let data = repo_data();
    let files = manifest(&data);
    assert!(files.len() >= 30, "{} files", files.len());
    for (i, (file, format, rows)) in files.iter().enumerate() {
        let format = match format.as_str() {
            "csv" => Format::Csv,
            "jsonl" => Format::JsonLines,
            _ => Format::Text,
        };
        let table = format!("T{i:02}");
        let input = std::io::BufReader::new(std::fs::File::open(data.join(file)).unwrap());
        let report = h
            .engine
            .ingest(WS, &table, input, &IngestOptions::new(format), None)
            .await
            .unwrap();
        assert_eq!((report.accepted, report.rejected), (*rows, 0), "{file}");
        assert_eq!(
            h.count(&h.engine, WS, &table).await.unwrap(),
            *rows,
            "{file}"
        );
    }
    // A known value of the Syslog sample is nowhere on disk in the clear.
    let needle = b"pam_unix(sudo:session): session opened for user root";
    let mut stack = vec![h.dir.path().to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "plaintext in {}",
                    p.display()
                );
            }
        }
    }
}
