#!/usr/bin/env bash
# Reference model (a): the small CPU model bundled as the runtime's default.
# Trains from scratch on 2 CPU threads for a fixed wall-time budget; see docs/finetune.md for results.
# Usage: recipes/bundled_cpu.sh [RUN_DIR] [MINUTES]   (run from the repository root)
# EXTRA_FLAGS adds fine-tuning flags (e.g. "--speed-perturb 0.5 --pad-silence 0.5").
set -euo pipefail
RUN_DIR=${1:-/work/runs/bundled}
MINUTES=${2:-90}
DATA=${DATA:-../shared/data}
SYNTH=${SYNTH:-/work/cache/synth/v1}
PY=${PY:-python}

# 1. Synthetic TTS speech (cached: a rerun with the same seed reuses the files).
"$PY" -m w2v2_onnx_finetune.synth --out "$SYNTH" --train 3000 --eval 100 --seed 0 --jobs 2 \
    --max-words 12 --digit-fraction 0.15 --sentences "$DATA/text/sentences.txt"

# 2. Train from scratch (data, splits and settings: recipes/small_fb_common.sh).
source "$(dirname "$0")/small_fb_common.sh"
mkdir -p "$RUN_DIR"
"$PY" -m w2v2_onnx_finetune "${SMALL_FB_DATA[@]}" "${SMALL_FB_TRAINING[@]}" \
    --output-dir "$RUN_DIR" --start scratch:small-fb --seed 0 \
    --learning-rate 1.5e-3 --warmup 500 --max-wall-minutes "$MINUTES" ${EXTRA_FLAGS:-}

# 3. Score the final checkpoint on the held-out data only (same specs, same seed).
"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN_DIR/checkpoint" --seed 0 --threads 2 \
    "${SMALL_FB_HELD_OUT[@]}" --json "$RUN_DIR/eval.json"

# 4. The README demo sample (our own flite TTS; its sentence is in no training data) and its transcript.
"$PY" recipes/make_sample.py "$RUN_DIR"
"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN_DIR/checkpoint" --threads 2 \
    --data "$RUN_DIR/sample.tsv:name=sample,role=eval" --json "$RUN_DIR/sample_eval.json"
