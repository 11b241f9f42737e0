"""Runs the logvault benchmark's query suite on DuckDB; driven by logvault-bench.

Reads a JSON spec on stdin:
  {"sources": {"duckdb": {"logs": path, "inventory": path},
               "duckdb-encrypted": {"logs": path, "inventory": path, "key": base64}},
   "queries": [{"name": ..., "sql": ...}], "cold": n, "warm": n, "threads": n}
and prints one JSON object:
  {"version": ..., "systems": {name: {"runs": [{"query", "coldMs", "warmMs", "answer"}]}
                                     | {"error": message}}}

A cold run opens a new in-memory connection, defines the tables as views over the Parquet
files and runs the query once; warm runs repeat the query on that connection.
"""

import datetime
import decimal
import json
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


def connect(source, threads):
    con = duckdb.connect(":memory:", config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    options = ""
    if source.get("key"):
        con.execute("PRAGMA add_parquet_key('bench', ?)", [source["key"]])
        options = ", encryption_config = {footer_key: 'bench'}"
    for table, path in (("AppLogs", source["logs"]), ("HostInventory", source["inventory"])):
        quoted = path.replace("'", "''")
        extra = options if table == "AppLogs" else ""
        con.execute(f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{quoted}'{extra})")
    return con


def answer(con, sql):
    cur = con.execute(sql)
    rows = cur.fetchall()
    columns = [d[0] for d in cur.description]
    return {"columns": columns, "rows": [[cell(v) for v in row] for row in rows]}


def run_source(source, queries, cold, warm, threads):
    runs = []
    for query in queries:
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
        runs.append({"query": query["name"], "coldMs": cold_ms, "warmMs": warm_ms, "answer": result})
    return runs


def main():
    spec = json.load(sys.stdin)
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
