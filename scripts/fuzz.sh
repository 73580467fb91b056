#!/usr/bin/env bash
# Coverage-guided fuzzing of facetrace's parsers with atheris (tests/fuzz/targets.py).
#
#   bash scripts/fuzz.sh [RUNS] [TARGET ...]     # default: 1000000 runs of every target
#
# Each target starts from a copy of its seeds (tests/fuzz/corpus/TARGET); a finding is
# written to $OUT/TARGET-crash-* (OUT defaults to a new temporary folder). Fix it, then
# copy the input to tests/fuzz/regressions/TARGET/ so the test suite replays it.
# Prints one line per target: executions, seconds, corpus size and findings.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1000000}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(image warc url robots html lists); fi
OUT="${OUT:-$(mktemp -d -t facetrace-fuzz-XXXXXX)}"
PY="${PYTHON:-.venv/bin/python}"
status=0
for t in "${TARGETS[@]}"; do
    work="$OUT/corpus-$t"
    mkdir -p "$work"
    cp tests/fuzz/corpus/"$t"/* "$work"/
    log="$OUT/$t.log"
    "$PY" -m tests.fuzz.run "$t" -runs="$RUNS" -artifact_prefix="$OUT/$t-" \
        -max_len=65536 -rss_limit_mb=4096 "$work" >"$log" 2>&1
    rc=$?
    done_line=$(grep -a -E '^Done [0-9]+ runs' "$log" | tail -1)
    crashes=$(find "$OUT" -maxdepth 1 -name "$t-crash-*" -o -maxdepth 1 -name "$t-timeout-*" \
        -o -maxdepth 1 -name "$t-oom-*" | wc -l)
    corpus=$(find "$work" -type f | wc -l)
    echo "$t: ${done_line:-stopped (exit $rc)}; corpus $corpus inputs; findings $crashes"
    if [ "$crashes" -gt 0 ] || [ $rc -ne 0 ]; then status=1; fi
done
echo "outputs in $OUT"
exit $status
