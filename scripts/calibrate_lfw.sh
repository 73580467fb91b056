#!/usr/bin/env bash
# Regenerate the shipped calibration table of dlib's ResNet descriptor
# (src/facetrace/data/calibration_dlib-resnet-v1.json) from every cross-identity pair of
# the lfw-dev faces (about 4.6 million impostor pairs), with the default pipeline
# (variant "default": the engine's HOG detection, CNN fallback, 150 px chip, padding 0.25,
# flip averaging).
# About 5 minutes on one core (detection dominates); descriptors are cached in $CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-/work/shared/data/lfw-dev/images}
CACHE=${CACHE:-/tmp/ft-eval}
nice -n 10 .venv/bin/facetrace --home "${TMPDIR:-/tmp}/ft-calibrate-home" eval calibrate \
    --images "$IMAGES" --variant default --cache "$CACHE" --dataset lfw-dev \
    --out src/facetrace/data/calibration_dlib-resnet-v1.json
