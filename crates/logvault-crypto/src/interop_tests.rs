//! Interoperability of the segment format (issue 25): a file written with
//! [`crate::parquet_keys::segment_encryption_properties`] and the segment writer's settings (zstd, page
//! statistics, column and offset indexes, dictionary pages, several row groups and pages) is
//! read by an independent implementation of Parquet Modular Encryption, pyarrow (Arrow C++),
//! given the data key and the AAD prefix, with the same rows; without the AAD prefix, or with
//! another one, pyarrow refuses it.
//!
//! The test is here, not in the store, because only this crate may hold key bytes: it hands
//! pyarrow a data key it derived itself. pyarrow comes from a virtual environment under
//! `~/.cache/logvault-interop/venv` (created with `pip install pyarrow` when missing, as the
//! benchmark does for DuckDB), or `LOGVAULT_PYARROW_PYTHON`. When it cannot be had, the test
//! fails saying why, unless `LOGVAULT_SKIP_INTEROP=1`, with which it prints SKIPPED.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::Aek;
use crate::parquet_keys::segment_encryption_properties;

/// A Python with pyarrow, or why there is none.
fn pyarrow_python() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("LOGVAULT_PYARROW_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set")?;
    let venv = cache.join("logvault-interop").join("venv");
    let python = venv.join("bin").join("python");
    let has_pyarrow = |python: &PathBuf| {
        Command::new(python)
            .args([
                "-c",
                "import pyarrow.parquet.encryption as e; e.create_decryption_properties",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has_pyarrow(&python) {
        return Ok(python);
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pyarrow>=23",
        ]),
        "pip install pyarrow (is the package index reachable?)",
    )?;
    if has_pyarrow(&python) {
        Ok(python)
    } else {
        Err("pyarrow installed, but it has no pyarrow.parquet.encryption.create_decryption_properties".into())
    }
}

/// Rows like a segment's: a time column, a low-cardinality string (dictionary pages), a
/// high-cardinality one, numbers and nulls.
fn rows(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("Level", DataType::Utf8, true),
        Field::new("Message", DataType::Utf8, true),
        Field::new("N", DataType::Int64, true),
    ]));
    let start = 1_772_323_200_000_000_000i64; // 2026-03-01T00:00:00Z
    let levels = ["info", "warning", "error"];
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampNanosecondArray::from(
                    (0..n)
                        .map(|i| start + i * 1_000_000_000)
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| (i % 7 != 0).then(|| levels[(i % 3) as usize]))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| Some(format!("event number {i}")))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                (0..n)
                    .map(|i| (i % 5 != 0).then_some(i * 3))
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

const READ: &str = r#"
import sys, json
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
path, key_hex, aad = sys.argv[1], sys.argv[2], sys.argv[3]
props = pe.create_decryption_properties(bytes.fromhex(key_hex), aad_prefix=aad.encode() if aad else None)
try:
    f = pq.ParquetFile(path, decryption_properties=props)
    t = f.read()
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
    sys.exit(0)
md = f.metadata
rows = [[c.isoformat() if hasattr(c, "isoformat") else c for c in r.values()] for r in t.to_pylist()]
print(json.dumps({"rows": rows, "row_groups": md.num_row_groups,
                  "columns": t.column_names, "pyarrow": __import__("pyarrow").__version__}))
"#;

#[test]
#[allow(clippy::print_stderr)] // a skip, and the version that read the file
fn pyarrow_reads_a_segment_given_its_data_key_and_aad_prefix() {
    let python = match pyarrow_python() {
        Ok(p) => p,
        Err(why) if std::env::var("LOGVAULT_SKIP_INTEROP").as_deref() == Ok("1") => {
            eprintln!("SKIPPED pyarrow interoperability: {why}");
            return;
        }
        Err(why) => {
            panic!("pyarrow interoperability needs pyarrow: {why} (LOGVAULT_SKIP_INTEROP=1 skips)")
        }
    };
    let aek = Aek::generate().unwrap();
    let id = "0f8e2a3c-5b7d-4e1f-9a6b-2c4d6e8f0a1b";
    let dek = aek.derive_dek(id).unwrap();
    let aad = format!("logvault/segment/v1/service/ws-interop/AppLogs/{id}");
    let key_metadata = br#"{"v":1,"account":"service","epoch":1}"#.to_vec();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(400))
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .with_file_encryption_properties(
            segment_encryption_properties(&dek, aad.as_bytes(), key_metadata).unwrap(),
        )
        .build();
    let batch = rows(1000);
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    let bytes = writer.into_inner().unwrap();
    assert!(!dek.0.occurs_in(&bytes), "the data key is in the file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{id}.parquet"));
    std::fs::write(&path, &bytes).unwrap();
    let key_hex = hex::encode(dek.0.expose());
    let read = |aad: &str| -> serde_json::Value {
        let out = Command::new(&python)
            .args(["-c", READ])
            .arg(&path)
            .arg(&key_hex)
            .arg(aad)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    let got = read(&aad);
    assert!(
        got.get("error").is_none(),
        "pyarrow refused the segment: {got}"
    );
    assert_eq!(got["row_groups"], 3, "{got}");
    assert_eq!(
        got["columns"],
        serde_json::json!(["TimeGenerated", "Level", "Message", "N"])
    );
    let got_rows = got["rows"].as_array().unwrap();
    assert_eq!(got_rows.len(), 1000);
    let levels = ["info", "warning", "error"];
    for (i, row) in got_rows.iter().enumerate() {
        let i = i as i64;
        let level = if i % 7 != 0 {
            serde_json::json!(levels[(i % 3) as usize])
        } else {
            serde_json::Value::Null
        };
        let n = if i % 5 != 0 {
            serde_json::json!(i * 3)
        } else {
            serde_json::Value::Null
        };
        let time = chrono_like(i);
        assert_eq!(
            row,
            &serde_json::json!([time, level, format!("event number {i}"), n]),
            "row {i}"
        );
    }
    eprintln!("pyarrow {} read the segment's 1000 rows", got["pyarrow"]);

    // The AAD prefix binds the file to its place: without it, or with another, no rows.
    for wrong in ["", "logvault/segment/v1/service/ws-other/AppLogs/x"] {
        let got = read(wrong);
        assert!(
            got.get("error").is_some(),
            "pyarrow read the segment with AAD prefix {wrong:?}: {got}"
        );
    }
}

/// The ISO form pyarrow gives the `i`th row's time (seconds after 2026-03-01, UTC).
fn chrono_like(i: i64) -> String {
    let (h, m, s) = (i / 3600, (i / 60) % 60, i % 60);
    format!("2026-03-01T{h:02}:{m:02}:{s:02}+00:00")
}
