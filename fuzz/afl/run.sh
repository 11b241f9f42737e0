#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with AFL++ through cargo-afl (docs/reliability.md,
# "Fuzzing": how the tools were installed, the runs made).
#
#   fuzz/afl/run.sh TARGET SECONDS
#
# TARGET: jsonl, json, csv, text (the ingest parsers), wal (replay of a log damaged by a mutation
# script), vault, identities (the vault's documents, body under a correct header), control
# (control/state.json), timings (config.json's timings). SECONDS: how long AFL++ fuzzes (-V).
#
# Builds every driver with `cargo afl build --release` into $CARGO_TARGET_DIR (default
# ~/.cache/lv-afl-build: instrumented builds need their own), seeds the run from the committed
# corpus (crates/logvault-fuzz/corpus/TARGET) and the seeds the driver makes (--seeds), gives
# AFL++ the dictionary of the input's tokens (fuzz/afl/dict/), runs one AFL++ instance under
# `nice -n 19`, and prints the figures of its fuzzer_stats. The output directory (queue,
# crashes, hangs) is kept under $LOGVAULT_AFL_OUT (default
# $CARGO_TARGET_DIR/afl-runs/TARGET/<time>); it is never committed.
#
# Environment: AFL_TIMEOUT_MS (per input; default 2000 for the parsers and timings, 5000 for the
# targets that write fixture files), AFL_OPT_LEVEL (cargo-afl's opt-level, default 3).
# Exit status 1 when the run saved a crash or a hang.
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '5,9p' "$0" >&2
    exit 2
fi
target=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The committed seeds, the dictionary of tokens (dict/), the timeout of one input.
case "$target" in
    jsonl | json | timings) corpus=$target dict=json timeout=${AFL_TIMEOUT_MS:-2000} ;;
    csv | text) corpus=$target dict=$target timeout=${AFL_TIMEOUT_MS:-2000} ;;
    wal) corpus=wal dict="" timeout=${AFL_TIMEOUT_MS:-5000} ;;
    vault | identities | control) corpus="" dict=json timeout=${AFL_TIMEOUT_MS:-5000} ;;
    *)
        echo "unknown target $target (jsonl json csv text wal vault identities control timings)" >&2
        exit 2
        ;;
esac

if ! cargo afl --version >/dev/null 2>&1; then
    echo "cargo-afl is missing: cargo install cargo-afl --locked (docs/reliability.md)" >&2
    exit 2
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/lv-afl-build}
export CARGO_INCREMENTAL=0
(cd "$here" && nice -n 19 cargo afl build --release --bins)
bin=$CARGO_TARGET_DIR/release/$target

run=${LOGVAULT_AFL_OUT:-$CARGO_TARGET_DIR/afl-runs/$target/$(date -u +%Y%m%dT%H%M%SZ)}
seeds=$run/seeds
mkdir -p "$seeds"
if [ -n "$corpus" ]; then
    cp "$root/crates/logvault-fuzz/corpus/$corpus"/* "$seeds/"
fi
"$bin" --seeds "$seeds"

# The targets write their fixtures under TMPDIR for every input: memory, not disk.
scratch=$(mktemp -d /dev/shm/lv-afl-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# No TTY here: AFL_NO_UI. Containers: no CPU binding (others share the cores), no frequency
# governor, core dumps are not piped (AFL++ checks). The fixtures are built before the fork
# server starts (deferred), which may take a while on a loaded machine.
dict_args=()
if [ -n "$dict" ]; then
    dict_args=(-x "$here/dict/$dict.dict")
fi
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
