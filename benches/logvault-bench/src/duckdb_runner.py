"""Runs the logvault benchmark's query suite on DuckDB; driven by logvault-bench.

Reads a JSON spec on stdin:
  {"sources": {"duckdb": {"logs": path, "inventory": path},
               "duckdb-encrypted": {"logs": path, "inventory": path, "key": string,
                                    "encryptFrom": plaintext logs}},
   "queries": [{"name": ..., "sql": ...}], "cold": n, "warm": n, "threads": n}
and prints one JSON object:
  {"version": ..., "systems": {name: {"runs": [{"query", "coldMs", "warmMs", "answer"}
                                              | {"query", "error"}]}
                                     | {"error": message}}}

Or, with {"convert": {"input": path, "format": "ndjson" | "csv", "output": path, "threads": n}},
converts the file to zstd Parquet and prints {"rows", "wallSecs", "cpuSecs", "peakRssBytes",
"peakReset", "outputBytes"}: wall and CPU time (all threads) of the COPY statement, and this
process's peak resident memory during it (VmHWM, reset after Python and DuckDB are loaded).

A cold run opens a new in-memory connection, defines the tables as views over the Parquet
files and runs the query once; warm runs repeat the query on that connection. Before the first
timed run the process opens one connection and runs `SELECT 1`, so what a process pays once
(loading DuckDB's library, its thread pool) is not in the first cold run: the harness starts a
runner for each query, and logvault's and DataFusion's runs are in a process that is warm too.

For an encrypted source, DuckDB first writes the encrypted copy itself from the plaintext logs
(zstd, 131072-row groups as the baseline, footer key): writing needs the httpfs extension
(OpenSSL), loaded from the duckdb-extension-httpfs wheel; reading uses it too.
"""

import datetime
import decimal
import json
import os
import sys
import time

import duckdb


def cell(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def quote(text):
    return text.replace("'", "''")


def load_httpfs(con):
    import duckdb_extension_httpfs

    base = list(duckdb_extension_httpfs.__path__)[0]
    ext = os.path.join(base, "extensions", f"v{duckdb.__version__}", "httpfs.duckdb_extension")
    con.execute(f"LOAD '{quote(ext)}'")


def connect(source, threads):
    con = duckdb.connect(":memory:", config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    options = ""
    if source.get("key"):
        load_httpfs(con)
        con.execute(f"PRAGMA add_parquet_key('bench', '{quote(source['key'])}')")
        options = ", encryption_config = {footer_key: 'bench'}"
    for table, path in (("AppLogs", source["logs"]), ("HostInventory", source["inventory"])):
        quoted = quote(path)
        extra = options if table == "AppLogs" else ""
        con.execute(f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{quoted}'{extra})")
    return con


def answer(con, sql):
    cur = con.execute(sql)
    rows = cur.fetchall()
    columns = [d[0] for d in cur.description]
    return {"columns": columns, "rows": [[cell(v) for v in row] for row in rows]}


def encrypt(source, threads):
    con = connect({"logs": source["encryptFrom"], "inventory": source["inventory"]}, threads)
    load_httpfs(con)
    con.execute(f"PRAGMA add_parquet_key('bench', '{quote(source['key'])}')")
    con.execute(
        f"COPY (SELECT * FROM \"AppLogs\") TO '{quote(source['logs'])}' (FORMAT parquet, "
        "COMPRESSION zstd, ROW_GROUP_SIZE 131072, ENCRYPTION_CONFIG {footer_key: 'bench'})"
    )
    con.close()


def run_source(source, queries, cold, warm, threads):
    if source.get("encryptFrom"):
        encrypt(source, threads)
    runs = []
    for query in queries:
        try:
            runs.append(run_query(source, query, cold, warm, threads))
        except duckdb.Error as e:  # this query fails on this source; the others may not
            runs.append({"query": query["name"], "error": f"{type(e).__name__}: {e}"})
    return runs


def run_query(source, query, cold, warm, threads):
    cold_ms, warm_ms, result, con = [], [], None, None
    for _ in range(max(cold, 1)):
        if con is not None:
            con.close()
        started = time.perf_counter()
        con = connect(source, threads)
        result = answer(con, query["sql"])
        cold_ms.append((time.perf_counter() - started) * 1000.0)
    for _ in range(warm):
        started = time.perf_counter()
        result = answer(con, query["sql"])
        warm_ms.append((time.perf_counter() - started) * 1000.0)
    con.close()
    return {"query": query["name"], "coldMs": cold_ms, "warmMs": warm_ms, "answer": result}


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def convert(spec):
    reader = {"ndjson": "read_json", "csv": "read_csv"}[spec["format"]]
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(spec['threads'])}")
    peak_reset = reset_peak()
    cpu_before = time.process_time()
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM {reader}('{quote(spec['input'])}')) TO '{quote(spec['output'])}' "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak = peak_rss_bytes()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{quote(spec['output'])}')").fetchone()[0]
    con.close()
    return {
        "rows": rows,
        "wallSecs": wall,
        "cpuSecs": cpu,
        "peakRssBytes": peak,
        "peakReset": peak_reset,
        "outputBytes": os.path.getsize(spec["output"]),
    }


def main():
    spec = json.load(sys.stdin)
    if "convert" in spec:
        json.dump(convert(spec["convert"]), sys.stdout)
        return
    warm_up = duckdb.connect(":memory:", config={"threads": spec["threads"]})
    warm_up.execute("SELECT 1").fetchall()
    warm_up.close()
    systems = {}
    for name, source in spec["sources"].items():
        try:
            systems[name] = {
                "runs": run_source(source, spec["queries"], spec["cold"], spec["warm"], spec["threads"])
            }
        except Exception as e:  # reported per system; the harness says why it was skipped
            systems[name] = {"error": f"{type(e).__name__}: {e}"}
    json.dump({"version": duckdb.__version__, "systems": systems}, sys.stdout)


if __name__ == "__main__":
    main()
