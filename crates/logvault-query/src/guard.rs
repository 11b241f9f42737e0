//! A query's stream, guarded: a panic while it is polled becomes the stream's last item, an
//! error, instead of unwinding through the caller.
//!
//! Why: parquet-rs 59 panics on some damaged encrypted files (a module length prefix flipped to
//! a value under 16 makes `RingGcmBlockDecryptor::decrypt` subtract past zero; found by the
//! tamper sweep of issue 25, see `docs/reliability.md`). DataFusion runs the scan in spawned
//! tasks and resumes their panics in whoever polls the result. A damaged segment must give a
//! clear error naming what to do, never a crashed process; no row of the damaged file is
//! returned either way, since the panic happens before its page decrypts.

use std::panic::AssertUnwindSafe;

use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

/// Wraps `stream` so that a panic while polling it ends it with an execution error.
pub(crate) fn guard(
    stream: SendableRecordBatchStream,
    workspace: &str,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let workspace = workspace.to_owned();
    let mut failed = false;
    let guarded = AssertUnwindSafe(stream)
        .catch_unwind()
        .map(move |item| match item {
            Ok(batch) => batch,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "no message".to_owned());
                tracing::error!(workspace = %workspace, panic = %what, "a query's reader panicked");
                Err(DataFusionError::Execution(format!(
                    "a segment of workspace {workspace} could not be read (the Parquet reader \
                     failed: {what}); it may be damaged: run `logvault table verify --workspace \
                     {workspace}`"
                )))
            }
        })
        .take_while(move |item| {
            let go = !failed;
            failed |= item.is_err();
            futures::future::ready(go)
        });
    Box::pin(RecordBatchStreamAdapter::new(schema, guarded))
}
