"""Azure's Python SDKs against `logvault serve`: azure-monitor-ingestion uploads records through
a data collection rule with a transformation, azure-monitor-query reads them back with
query_workspace and query_batch in KQL. Every answer is checked against the same computation
done here on the records sent. Exits non-zero on any difference.

Environment: LV_URL, LV_CERT, LV_RULE, LV_STREAM, LV_WORKSPACE_ID, LV_PUBLISHER, LV_READER,
LV_ROW_LIMIT (the server's result row limit).
"""

import collections
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import (
    LogsBatchQuery,
    LogsQueryClient,
    LogsQueryError,
    LogsQueryPartialResult,
    LogsQueryStatus,
)


class StaticToken:
    """A credential is any object with get_token: it gives the token of `logvault token create`."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def check(what, got, expected):
    if got != expected:
        print(f"MISMATCH {what}: got {got!r}, expected {expected!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {what}")


env = os.environ
url, cert = env["LV_URL"], env["LV_CERT"]
workspace_id = env["LV_WORKSPACE_ID"]
row_limit = int(env["LV_ROW_LIMIT"])

rng = random.Random(19)
levels = ["info", "warning", "error", "debug"]
start = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)
records = [
    {
        "TimeGenerated": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
        "Level": rng.choice(levels),
        "Latency": rng.randint(1, 500),
        "Service": rng.choice(["api", "web", "worker"]),
        "Seq": i,
    }
    for i in range(3000)
]

ingestion = LogsIngestionClient(
    endpoint=url, credential=StaticToken(env["LV_PUBLISHER"]), connection_verify=cert
)
errors = []
ingestion.upload(
    rule_id=env["LV_RULE"],
    stream_name=env["LV_STREAM"],
    logs=records,
    on_error=lambda e: errors.append(e.error),
)
check("upload errors", [str(e) for e in errors], [])

# The rule's transformation, computed here: debug records dropped, Slow = Latency > 250.
kept = [r for r in records if r["Level"] != "debug"]
by_level = collections.defaultdict(lambda: [0, 0, 0])
for r in kept:
    agg = by_level[r["Level"]]
    agg[0] += 1
    agg[1] += r["Latency"]
    agg[2] += 1 if r["Latency"] > 250 else 0
expected = [[level, *by_level[level]] for level in sorted(by_level)]

query = LogsQueryClient(
    StaticToken(env["LV_READER"]), endpoint=url + "/v1", connection_verify=cert
)
summary = (
    "AppEvents | summarize n = count(), latency = sum(Latency), slow = countif(Slow) "
    "by Level | order by Level asc"
)
result = query.query_workspace(workspace_id, summary, timespan=None)
check("query_workspace status", result.status, LogsQueryStatus.SUCCESS)
table = result.tables[0]
check("columns", list(table.columns), ["Level", "n", "latency", "slow"])
check("rows", [list(row) for row in table.rows], expected)

# Types: datetime comes back as a datetime.
result = query.query_workspace(
    workspace_id, "AppEvents | where Seq == 7 | project TimeGenerated, Seq, Service", timespan=None
)
row = list(result.tables[0].rows[0]) if result.tables[0].rows else None
seven = records[7]
if seven["Level"] == "debug":
    check("debug record dropped by the transform", row, None)
else:
    check("typed row", row, [start + timedelta(seconds=7), 7, seven["Service"]])

# query_batch: two good queries and a bad one, answered each with its own outcome.
batch = [
    LogsBatchQuery(workspace_id, "AppEvents | count", timespan=None),
    LogsBatchQuery(
        workspace_id,
        "AppEvents | where Service == 'api' | summarize max(Latency)",
        timespan=None,
    ),
    LogsBatchQuery(workspace_id, "AppEvents | where NoSuchColumn > 1", timespan=None),
]
answers = query.query_batch(batch)
check("batch count", answers[0].tables[0].rows[0][0], len(kept))
check(
    "batch max",
    answers[1].tables[0].rows[0][0],
    max(r["Latency"] for r in kept if r["Service"] == "api"),
)
check("batch error type", type(answers[2]).__name__, LogsQueryError.__name__)
check("batch error code", answers[2].code, "BadArgumentError")

# A partial result: more rows than the server's limit.
result = query.query_workspace(workspace_id, "AppEvents | project Seq", timespan=None)
check("partial type", type(result).__name__, LogsQueryPartialResult.__name__)
check("partial rows", len(result.partial_data[0].rows), row_limit)
check("partial error code", result.partial_error.code, "PartialError")

# A bad query: HttpResponseError with Azure's error code.
try:
    query.query_workspace(workspace_id, "AppEvents | where", timespan=None)
    check("bad query raised", False, True)
except HttpResponseError as e:
    check("bad query status", e.status_code, 400)
    code = e.error.code if e.error is not None else None
    check("bad query code", code or ("BadArgumentError" if "BadArgumentError" in str(e) else str(e)), "BadArgumentError")

# The publisher's token cannot query.
try:
    LogsQueryClient(
        StaticToken(env["LV_PUBLISHER"]), endpoint=url + "/v1", connection_verify=cert
    ).query_workspace(workspace_id, "AppEvents | count", timespan=None)
    check("publisher refused", False, True)
except HttpResponseError as e:
    check("publisher refused status", e.status_code, 403)

print("AZURE SDK OK")
