//! logvault's extension codecs for Ballista: what a query node sends the scheduler (logical)
//! and what the scheduler sends executors (physical).
//!
//! Logical: a workspace table ([`SegmentTable`] on the query node, [`DistributedTable`] after
//! a round trip) travels as its [`TableSpec`] (segment list, no key); functions as
//! [`crate::functions`] says. Everything else goes to Ballista's own codec.
//!
//! Physical: a [`LogvaultScanExec`] travels as the inner scan in DataFusion's protobuf plus the
//! Parquet encryption settings DataFusion's protobuf drops (`TableParquetOptions::crypto`: the
//! factory id and its options). Decoding rebuilds the scan with those settings and the
//! encryption factory the executor's runtime has under that id: the executor's own, which
//! resolves data keys through its keyring and the vault. Ballista's nodes (shuffle readers and
//! writers) go to Ballista's codec. Each encoding starts with a tag byte saying whose it is.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::config::ParquetEncryptionOptions;
use datafusion::common::{Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::PhysicalPlanNode;
use logvault_query::provider::SegmentTable;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::DistributedError;
use crate::functions;
use crate::scan::{LogvaultScanExec, parquet_source};
use crate::spec::TableSpec;
use crate::table::DistributedTable;

/// The tag of an encoding that is Ballista's.
const TAG_BALLISTA: u8 = 0;
/// The tag of a [`LogvaultScanExec`].
const TAG_SCAN: u8 = 1;

/// The logical codec: logvault's tables and functions, then Ballista's.
#[derive(Debug, Default)]
pub struct LogvaultLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogvaultLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match TableSpec::decode(buf).map_err(DistributedError::into_df)? {
            Some(spec) => Ok(Arc::new(DistributedTable::new(spec, schema))),
            None => self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let spec = if let Some(table) = node.downcast_ref::<SegmentTable>() {
            TableSpec::from_manifest(table.manifest())
        } else if let Some(table) = node.downcast_ref::<DistributedTable>() {
            table.spec().clone()
        } else {
            return self
                .ballista
                .try_encode_table_provider(table_ref, node, buf);
        };
        spec.encode(buf).map_err(DistributedError::into_df)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        functions::decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, _buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        functions::decode_udaf(name)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, _buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udaf(node)
    }

    fn try_decode_udwf(&self, name: &str, _buf: &[u8]) -> Result<Arc<WindowUDF>> {
        functions::decode_udwf(name)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, _buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udwf(node)
    }
}

/// What travels beside a scan's protobuf: the encryption settings DataFusion's protobuf drops.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanCrypto {
    /// The encryption factory's id (`logvault`).
    factory_id: String,
    /// The factory's options (logvault's factory has none; kept whole for any other).
    factory_options: std::collections::HashMap<String, String>,
}

/// The physical codec: logvault's scans and functions, then Ballista's.
#[derive(Debug, Default)]
pub struct LogvaultPhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

fn codec_error(what: &str, reason: impl std::fmt::Display) -> datafusion::error::DataFusionError {
    DistributedError::Codec {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
    .into_df()
}

impl LogvaultPhysicalCodec {
    fn encode_scan(
        &self,
        scan: &LogvaultScanExec,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let source = scan
            .parquet_source()
            .ok_or_else(|| codec_error("a logvault scan", "it does not wrap a Parquet scan"))?;
        let crypto = &source.table_parquet_options().crypto;
        let factory_id = crypto
            .factory_id
            .clone()
            .ok_or_else(|| codec_error("a logvault scan", "it names no encryption factory"))?;
        let side = ScanCrypto {
            factory_id,
            factory_options: crypto.factory_options.options.clone(),
        };
        let node = converter.execution_plan_to_proto(scan.inner(), self)?;
        let side = serde_json::to_vec(&side).map_err(|e| codec_error("a logvault scan", e))?;
        buf.push(TAG_SCAN);
        buf.extend_from_slice(&(side.len() as u64).to_le_bytes());
        buf.extend_from_slice(&side);
        node.encode(buf)
            .map_err(|e| codec_error("a logvault scan", e))?;
        Ok(())
    }

    fn decode_scan(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let what = "a logvault scan";
        let (len, rest) = buf
            .split_first_chunk::<8>()
            .ok_or_else(|| codec_error(what, "truncated"))?;
        let len = usize::try_from(u64::from_le_bytes(*len))
            .map_err(|_| codec_error(what, "bad length"))?;
        if rest.len() < len {
            return Err(codec_error(what, "truncated"));
        }
        let (side, node) = rest.split_at(len);
        let side: ScanCrypto = serde_json::from_slice(side).map_err(|e| codec_error(what, e))?;
        let node = PhysicalPlanNode::decode(node).map_err(|e| codec_error(what, e))?;
        let plan =
            converter.proto_to_execution_plan(&node, &PhysicalPlanDecodeContext::new(ctx, self))?;
        let factory = ctx
            .runtime_env()
            .parquet_encryption_factory(&side.factory_id)?;
        let exec = plan
            .downcast_ref::<DataSourceExec>()
            .ok_or_else(|| codec_error(what, "the inner plan is not a data source"))?;
        let config = exec
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .ok_or_else(|| codec_error(what, "the inner plan is not a file scan"))?;
        let source = parquet_source(&plan)
            .ok_or_else(|| codec_error(what, "the inner plan is not a Parquet scan"))?;
        let mut options = source.table_parquet_options().clone();
        options.crypto = ParquetEncryptionOptions::default();
        options.crypto.factory_id = Some(side.factory_id);
        options.crypto.factory_options.options = side.factory_options;
        let source = source
            .clone()
            .with_table_parquet_options(options)
            .with_encryption_factory(factory);
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        Ok(Arc::new(LogvaultScanExec::new(
            DataSourceExec::from_data_source(config),
        )))
    }
}

impl PhysicalExtensionCodec for LogvaultPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&TAG_SCAN, rest)) => self.decode_scan(rest, ctx, converter),
            Some((&TAG_BALLISTA, rest)) => self.ballista.try_decode(rest, inputs, ctx, converter),
            _ => Err(codec_error("a plan node", "unknown encoding")),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<LogvaultScanExec>() {
            return self.encode_scan(scan, buf, converter);
        }
        buf.push(TAG_BALLISTA);
        self.ballista.try_encode(node, buf, converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        functions::decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, _buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        functions::decode_udaf(name)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, _buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udaf(node)
    }

    fn try_decode_udwf(&self, name: &str, _buf: &[u8]) -> Result<Arc<WindowUDF>> {
        functions::decode_udwf(name)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, _buf: &mut Vec<u8>) -> Result<()> {
        functions::encode_udwf(node)
    }
}
