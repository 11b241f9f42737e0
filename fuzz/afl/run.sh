#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with AFL++ through cargo-afl (docs/reliability.md,
# "Fuzzing": how the tools were installed, the runs made).
#
#   fuzz/afl/run.sh TARGET SECONDS
#
# TARGET: jsonl, json, csv, text (the ingest parsers), wal (replay of a log damaged by a mutation
# script), vault, identities (the vault's documents, body under a correct header), control
# (control/state.json), timings (config.json's timings); and the parsers of the crates that link
# DataFusion: kql (lexer, parser, planner), otlp-json, otlp-proto, bulk (the server's OTLP and
# Elasticsearch _bulk decoders). SECONDS: how long AFL++ fuzzes (-V).
#
# Builds the drivers with `cargo afl build --release` into $CARGO_TARGET_DIR (default
# ~/.cache/lv-afl-build: instrumented builds need their own); the last four with the `dataflow`
# feature into $CARGO_TARGET_DIR/dataflow, apart, so that the other drivers never compile
# DataFusion. Seeds the run from the committed corpus (crates/logvault-fuzz/corpus/TARGET; kql
# also from the 64 Log Analytics queries of crates/logvault-kql/tests/data/la_queries/) and the
# seeds the driver makes (--seeds), gives AFL++ the dictionaries of the input's tokens
# (fuzz/afl/dict/), runs one AFL++ instance under `nice -n 19`, and prints the figures of its
# fuzzer_stats. The output directory (queue, crashes, hangs) is kept under $LOGVAULT_AFL_OUT
# (default <build directory>/afl-runs/TARGET/<time>); it is never committed.
#
# Environment: AFL_TIMEOUT_MS (per input; default 2000 for the parsers and timings, 5000 for the
# targets that write fixture files and for kql), AFL_OPT_LEVEL (cargo-afl's opt-level: default 3,
# and 0 for the four DataFusion targets, whose build at 1 or more takes too long on 2 cores:
# docs/reliability.md, "AFL++ through cargo-afl").
# Exit status 1 when the run saved a crash or a hang.
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '5,11p' "$0" >&2
    exit 2
fi
target=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The committed seeds, the dictionaries of tokens (dict/), the timeout of one input, and whether
# the driver needs the `dataflow` feature.
dataflow=""
case "$target" in
    jsonl | json | timings) corpus=$target dict=json timeout=${AFL_TIMEOUT_MS:-2000} ;;
    csv | text) corpus=$target dict=$target timeout=${AFL_TIMEOUT_MS:-2000} ;;
    wal) corpus=wal dict="" timeout=${AFL_TIMEOUT_MS:-5000} ;;
    vault | identities | control) corpus="" dict=json timeout=${AFL_TIMEOUT_MS:-5000} ;;
    kql) corpus=kql dict=kql timeout=${AFL_TIMEOUT_MS:-5000} dataflow=1 ;;
    otlp-json) corpus=$target dict="json otlp" timeout=${AFL_TIMEOUT_MS:-2000} dataflow=1 ;;
    otlp-proto) corpus=$target dict="" timeout=${AFL_TIMEOUT_MS:-2000} dataflow=1 ;;
    bulk) corpus=bulk dict="json bulk" timeout=${AFL_TIMEOUT_MS:-2000} dataflow=1 ;;
    *)
        echo "unknown target $target (jsonl json csv text wal vault identities control timings" \
            "kql otlp-json otlp-proto bulk)" >&2
        exit 2
        ;;
esac

if ! cargo afl --version >/dev/null 2>&1; then
    echo "cargo-afl is missing: cargo install cargo-afl --locked (docs/reliability.md)" >&2
    exit 2
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/lv-afl-build}
export CARGO_INCREMENTAL=0
if [ -n "$dataflow" ]; then
    export CARGO_TARGET_DIR=$CARGO_TARGET_DIR/dataflow AFL_OPT_LEVEL=${AFL_OPT_LEVEL:-0}
    (cd "$here" && nice -n 19 cargo afl build --release --features dataflow --bins)
else
    (cd "$here" && nice -n 19 cargo afl build --release --bins)
fi
bin=$CARGO_TARGET_DIR/release/$target

run=${LOGVAULT_AFL_OUT:-$CARGO_TARGET_DIR/afl-runs/$target/$(date -u +%Y%m%dT%H%M%SZ)}
seeds=$run/seeds
mkdir -p "$seeds"
if [ -n "$corpus" ]; then
    cp "$root/crates/logvault-fuzz/corpus/$corpus"/* "$seeds/"
fi
if [ "$target" = kql ]; then
    cp "$root/crates/logvault-kql/tests/data/la_queries"/*.kql "$seeds/"
fi
"$bin" --seeds "$seeds"

# The targets write their fixtures under TMPDIR for every input: memory, not disk.
scratch=$(mktemp -d /dev/shm/lv-afl-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# No TTY here: AFL_NO_UI. Containers: no CPU binding (others share the cores), no frequency
# governor, core dumps are not piped (AFL++ checks). The fixtures are built before the fork
# server starts (deferred), which may take a while on a loaded machine.
dict_args=()
for d in $dict; do
    dict_args+=(-x "$here/dict/$d.dict")
done
status=0
TMPDIR=$scratch AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_FORKSRV_INIT_TMOUT=60000 \
    nice -n 19 cargo afl fuzz -V "$secs" -t "$timeout" -i "$seeds" -o "$run/out" "${dict_args[@]}" -- "$bin" \
    >"$run/afl.log" 2>&1 || status=$?
stats=$run/out/default/fuzzer_stats
if [ ! -f "$stats" ]; then
    echo "afl-fuzz exited with $status and wrote no statistics; its log:" >&2
    tail -n 40 "$run/afl.log" >&2
    exit 2
fi

field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
echo "run: $run"
for k in afl_version run_time execs_done execs_per_sec corpus_count corpus_found saved_crashes \
    saved_hangs stability bitmap_cvg edges_found total_edges; do
    printf '  %-14s %s\n' "$k" "$(field "$k")"
done
# The row of docs/reliability.md's table of runs.
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$target" "$(field run_time)" \
    "$(field execs_done)" "$(field execs_per_sec)" "$(field corpus_count)" \
    "$(field saved_crashes)" "$(field saved_hangs)" "$(field stability)" "$(field bitmap_cvg)"
found=0
for d in crashes hangs; do
    for f in "$run/out/default/$d"/id:*; do
        [ -e "$f" ] || continue
        echo "$d: $f"
        found=1
    done
done
if [ "$found" -ne 0 ]; then
    echo "replay one: $bin < FILE"
    exit 1
fi
