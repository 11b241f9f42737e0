"""OpenTelemetry's Python SDK logging through a LoggingHandler to `logvault serve` with the
OTLP/HTTP exporter: protobuf (opentelemetry-exporter-otlp-proto-http) or JSON
(opentelemetry-exporter-otlp-json-http, in its own venv), as LV_OTLP_ENCODING says. The test
that runs this checks every record and its attributes with a query.

Environment: LV_URL, LV_CERT, LV_TOKEN, LV_WORKSPACE, LV_TABLE, LV_OTLP_ENCODING (proto|json),
LV_COUNT.
"""

import logging
import os

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

env = os.environ
if env["LV_OTLP_ENCODING"] == "json":
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

exporter = OTLPLogExporter(
    endpoint=env["LV_URL"] + "/v1/logs",
    certificate_file=env["LV_CERT"],
    headers={
        "authorization": "Bearer " + env["LV_TOKEN"],
        "x-logvault-workspace": env["LV_WORKSPACE"],
        "x-logvault-table": env["LV_TABLE"],
    },
)
# force_flush says only that the processor finished, not that the server took the records:
# count what each export returned, and fail unless every one succeeded.
results = []
_export = exporter.export


def export(batch):
    result = _export(batch)
    results.append(result)
    return result


exporter.export = export
provider = LoggerProvider(
    resource=Resource.create({"service.name": "checkout", "deployment.environment": "ci"})
)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=64))
handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
log = logging.getLogger("shop.orders")
log.setLevel(logging.INFO)
log.addHandler(handler)

for i in range(int(env["LV_COUNT"])):
    level = logging.WARNING if i % 3 == 0 else logging.INFO
    log.log(level, "order %d placed", i, extra={"order_id": i, "region": ["eu", "us"][i % 2]})

if not provider.force_flush(30_000):
    raise SystemExit("the exporter did not flush within 30 s")
provider.shutdown()
failed = [r for r in results if r != LogRecordExportResult.SUCCESS]
if not results or failed:
    raise SystemExit(f"{len(failed)} of {len(results)} exports failed: {failed}")
print("OTEL OK")
