//! A data collection rule's `transformKql`, run by the KQL engine on each batch: the batch is
//! the table `source`, and the query's result is what is stored.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use chrono::{DateTime, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use logvault::ingest::{DYNAMIC_KIND, KIND_METADATA_KEY};
use logvault::kql_lang::{KustoType, PlanOptions};

/// The name of the input table in a transformation.
pub(crate) const SOURCE: &str = "source";

/// Checks that `kql` parses and reads `source`.
pub(crate) fn validate(kql: &str) -> Result<(), String> {
    logvault::kql_lang::parse(kql).map_err(|e| e.to_string())?;
    let reads_source = kql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == SOURCE);
    if !reads_source {
        return Err(format!(
            "a transformation reads the table '{SOURCE}' (source | ...)"
        ));
    }
    Ok(())
}

/// Runs `kql` over `batch` as the table `source`; the result's batches, with dynamic columns
/// marked as a table keeps them.
pub(crate) async fn apply(
    kql: &str,
    batch: RecordBatch,
    now: DateTime<Utc>,
) -> Result<Vec<RecordBatch>, String> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let schema = batch.schema();
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| e.to_string())?;
    ctx.register_table(SOURCE, Arc::new(table))
        .map_err(|e| e.to_string())?;
    let (kusto, stream) = logvault::kql_lang::execute(&ctx, kql, &PlanOptions::at(now))
        .await
        .map_err(|e| e.to_string())?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| e.to_string())?;
    // Dynamic columns are JSON text: mark them as a table's dynamic columns are marked.
    let dynamic: Vec<bool> = kusto.iter().map(|c| c.ty == KustoType::Dynamic).collect();
    batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let fields: Vec<Field> = b
                .schema()
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let mut f = f.as_ref().clone();
                    if dynamic.get(i).copied().unwrap_or(false) {
                        f = f.with_metadata(HashMap::from([(
                            KIND_METADATA_KEY.to_owned(),
                            DYNAMIC_KIND.to_owned(),
                        )]));
                    }
                    f
                })
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), b.columns().to_vec())
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, TimeUnit};

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(
                "TimeGenerated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("Level", DataType::Utf8, true),
            Field::new("Latency", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_700_000_000_000_000; 3])
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec!["info", "debug", "error"])),
                Arc::new(Int64Array::from(vec![10, 20, 30])),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_transformation_filters_and_extends_each_batch() {
        let now = "2026-03-01T00:00:00Z".parse().unwrap();
        let out = apply(
            "source | where Level != 'debug' | extend Slow = Latency > 15, Tags = pack('l', Level)",
            batch(),
            now,
        )
        .await
        .unwrap();
        let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 2);
        let schema = out[0].schema();
        let tags = schema.field_with_name("Tags").unwrap();
        assert_eq!(
            tags.metadata().get(KIND_METADATA_KEY).map(String::as_str),
            Some(DYNAMIC_KIND)
        );
        assert!(schema.field_with_name("Slow").is_ok());
    }

    #[tokio::test]
    async fn errors_name_what_is_wrong() {
        let now = "2026-03-01T00:00:00Z".parse().unwrap();
        let err = apply("source | where Nope > 1", batch(), now)
            .await
            .unwrap_err();
        assert!(err.contains("Nope"), "{err}");
        assert!(validate("source | take 1").is_ok());
        assert!(validate("Other | take 1").unwrap_err().contains("source"));
        assert!(validate("source | | ").is_err());
    }
}
