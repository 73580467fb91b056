#!/usr/bin/env bash
# Ingest on a Ray cluster, end to end on one machine (every service on 127.0.0.1):
#   - a throwaway PostgreSQL (metadata, scripts/pg_server.py) and Milvus (vectors,
#     scripts/milvus_server.py);
#   - a Ray head (no CPUs of its own: it schedules) and two Ray worker nodes, each its
#     own raylet started with this virtual environment's `ray start` (on real machines:
#     `pip install "facetrace[ray]"` on each node, then the same `ray start` lines);
#   - `facetrace ingest --cluster ray://...` of the LFW dev photos, analysed on the
#     worker nodes and committed by this process;
#   - `facetrace search` of a photo that was not ingested, whose JSON result is printed.
# Everything is stopped and deleted on exit, also after an error or Ctrl-C.
#
# Usage: scripts/cluster_demo.sh [N]   N: ingest only the first N photos (default: all)
#        scripts/cluster_demo.sh --bench [N]   instead: `facetrace bench ingest --cluster`
#          on the same cluster (1 and 2 worker nodes, and the embedded pipeline with as
#          many CPUs, on the same photos); prints its JSON. No PostgreSQL or Milvus.
# Env: FACETRACE_DEMO_IMAGES (default ../shared/data/lfw-dev/images),
#      RAY_WORKER_CPUS (CPUs of each worker node, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=0
if [ "${1:-}" = "--bench" ]; then BENCH=1; shift; fi
LIMIT="${1:-0}"
IMAGES="${FACETRACE_DEMO_IMAGES:-../shared/data/lfw-dev/images}"
WORKER_CPUS="${RAY_WORKER_CPUS:-1}"
PY=.venv/bin/python
RAY=.venv/bin/ray
FACETRACE=(.venv/bin/python -m facetrace.cli.main)
export RAY_USAGE_STATS_ENABLED=0

[ -d "$IMAGES" ] || { echo "no photos at $IMAGES (set FACETRACE_DEMO_IMAGES)" >&2; exit 2; }
"$PY" -c "import ray" 2>/dev/null || { echo 'needs Ray: pip install -e ".[ray]"' >&2; exit 2; }
if [ "$BENCH" = 0 ] && "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', 2380)) != 0)"; then
    echo "a Milvus standalone already runs on this machine (its etcd port 2380 is taken)" >&2
    exit 2
fi

WORK="$(mktemp -d /tmp/ftdemo-XXXXXX)"
RAY_GROUPS=()
cleanup() {
    set +e
    echo "== stopping"
    for group in "${RAY_GROUPS[@]}"; do kill -TERM -- "-$group" 2>/dev/null; done
    sleep 3
    for group in "${RAY_GROUPS[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
    [ -f "$WORK/milvus.json" ] && "$PY" scripts/milvus_server.py --state "$WORK/milvus.json" stop
    [ -f "$WORK/pg.json" ] && "$PY" scripts/pg_server.py --state "$WORK/pg.json" stop
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

# A Ray node in a process group of its own (its pid), so that stopping it stops its
# raylet and workers and nothing else: `ray stop` would stop every Ray on the machine.
ray_node() {
    setsid "$RAY" start --node-ip-address=127.0.0.1 --disable-usage-stats \
        --object-store-memory=200000000 "$@" >"$WORK/ray-$((${#RAY_GROUPS[@]})).log" 2>&1 &
    local pid=$!
    RAY_GROUPS+=("$pid")
    wait "$pid" || { cat "$WORK/ray-$((${#RAY_GROUPS[@]} - 1)).log" >&2; exit 1; }
}

if [ "$BENCH" = 0 ]; then
    echo "== PostgreSQL and Milvus"
    PG_URL="$("$PY" scripts/pg_server.py --state "$WORK/pg.json" start)"
    MILVUS_URI="$("$PY" scripts/milvus_server.py --state "$WORK/milvus.json" start)"
fi

echo "== Ray: a head and two worker nodes on 127.0.0.1"
GCS_PORT="$(free_port)"
CLIENT_PORT="$(free_port)"
ray_node --head --port="$GCS_PORT" --ray-client-server-port="$CLIENT_PORT" \
    --dashboard-port="$(free_port)" --include-dashboard=false --num-cpus=0 \
    --temp-dir="$WORK/ray"
for _ in 1 2; do  # one after the other: nodes on one machine pick their socket names in turn
    ray_node --address="127.0.0.1:$GCS_PORT" --num-cpus="$WORKER_CPUS" \
        --dashboard-agent-listen-port="$(free_port)"
done
"$RAY" status --address="127.0.0.1:$GCS_PORT" | sed -n '/^Node status/,/^Pending/p'

if [ "$BENCH" = 1 ]; then
    echo "== bench ingest on 1 and 2 worker nodes, and embedded, on the same photos"
    LIMIT_ARGS=()
    [ "$LIMIT" -gt 0 ] && LIMIT_ARGS=(--limit "$LIMIT")
    FACETRACE_HOME="$WORK/home" "${FACETRACE[@]}" bench ingest "$IMAGES" \
        --cluster "ray://127.0.0.1:$CLIENT_PORT" --nodes 1,2 "${LIMIT_ARGS[@]}" --json
    exit 0
fi

export FACETRACE_HOME="$WORK/home"
export FACETRACE_DATABASE_URL="$PG_URL"
export FACETRACE_INDEX_BACKEND=milvus
export FACETRACE_MILVUS_URI="$MILVUS_URI"
unset FACETRACE_API_KEY

# The probe: the last photo of the first person with several; it is not ingested.
"$PY" - "$IMAGES" "$LIMIT" "$WORK" <<'EOF'
import sys
from pathlib import Path

images, limit, work = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
people = [sorted(p.glob("*.jpg")) for p in sorted(images.iterdir()) if p.is_dir()]
probe = next(photos[-1] for photos in people if len(photos) > 1)
photos = [p for photos in people for p in photos if p != probe]
photos = photos[:limit] if limit > 0 else photos
(work / "probe").write_text(str(probe.resolve()))
(work / "photos").write_text("\n".join(str(p.resolve()) for p in photos))
EOF
mapfile -t PHOTOS <"$WORK/photos"
PROBE="$(cat "$WORK/probe")"

"${FACETRACE[@]}" sources add lfw --basis "demo: Labeled Faces in the Wild, research use"
echo "== ingest ${#PHOTOS[@]} photos on the cluster (ray://127.0.0.1:$CLIENT_PORT)"
START="$(date +%s.%N)"
"${FACETRACE[@]}" ingest "${PHOTOS[@]}" --source lfw --cluster "ray://127.0.0.1:$CLIENT_PORT" \
    --json >"$WORK/summary.json"
END="$(date +%s.%N)"
"$PY" - "$WORK/summary.json" "$START" "$END" <<'EOF'
import json
import sys

summary = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(
    f"photos seen {summary['photos_seen']}, added {summary['photos_added']}, "
    f"faces {summary['faces_added']}, errors {len(summary['errors'])}; "
    f"{wall:.1f} s wall, {summary['photos_seen'] / wall:.2f} photos/s"
)
EOF

echo "== search $PROBE (not ingested)"
"${FACETRACE[@]}" search "$PROBE" --case DEMO-1 --reason "cluster demo" --top-k 3 --json
