#!/usr/bin/env bash
# Print docs/accuracy.md's variants table: `facetrace eval pairs` on lfw-dev's pairs for each variant.
# Descriptors come from the cache filled by scripts/describe_images.py (or are computed).
#   scripts/accuracy_table.sh baseline noflip default nofallback pad0.2 pad0.3 cut300 jitter10
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-/work/shared/data/lfw-dev/images}
PAIRS=${PAIRS:-/work/shared/data/lfw-dev/pairs-dev.txt}
CACHE=${CACHE:-/tmp/ft-eval}
ROW='
import json, sys
r = json.load(sys.stdin)["results"][0]
fb = r["faces_by"]
t = r["tar_at_far"]
acc = "%.2f%% ± %.2f" % (100 * r["accuracy"], 100 * r["accuracy_std"])
print("| %s | %s | %.4f | %.2f%% | %.2f%% | %d / %d | %.0f |" % (
    r["variant"], acc, r["roc_auc"], 100 * t["0.01"], 100 * t["0.001"],
    fb["cnn"] + fb["centre"], fb["failed"], r["ms_per_image"]))
'
echo "| variant | accuracy ± sd (10-fold) | ROC AUC | TAR@FAR=1e-2 | TAR@FAR=1e-3 | no face: fallback / failed | ms/image |"
echo "|---|---|---|---|---|---|---|"
for v in "$@"; do
  nice -n 10 .venv/bin/facetrace eval pairs --pairs "$PAIRS" --images "$IMAGES" \
      --variant "$v" --cache "$CACHE" --json | .venv/bin/python -c "$ROW"
done
