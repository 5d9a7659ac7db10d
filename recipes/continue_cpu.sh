#!/usr/bin/env bash
# Reference model (a), second stage: continue training a finished run of recipes/bundled_cpu.sh on the same data
# and held-out splits for MINUTES more (a warm restart: short warm-up to a third of the first stage's peak LR,
# then linear decay to 0 over the budget). 90 + 30 minutes keeps the whole model within two hours of CPU time.
# --split-seed must stay the first stage's seed: it draws the held-out splits (--seed alone would too).
# Usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]   (run from the repository root)
# EXTRA_DATA=SPEC adds one more training source (e.g. "/work/cache/synth/v2-20k/train:name=synth_big,role=train");
# EXTRA_FLAGS adds fine-tuning flags (e.g. "--speed-perturb 0.5").
set -euo pipefail
FIRST=${1:?usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]}
RUN_DIR=${2:?usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]}
MINUTES=${3:-30}
DATA=${DATA:-../shared/data}
SYNTH=${SYNTH:-/work/cache/synth/v1}
PY=${PY:-python}
source "$(dirname "$0")/small_fb_common.sh"
mkdir -p "$RUN_DIR"
"$PY" -m w2v2_onnx_finetune "${SMALL_FB_DATA[@]}" "${SMALL_FB_TRAINING[@]}" \
    --output-dir "$RUN_DIR" --start "$FIRST/checkpoint" --seed 0 --split-seed 0 \
    --learning-rate 5e-4 --warmup 200 --max-wall-minutes "$MINUTES" ${EXTRA_DATA:+--data "$EXTRA_DATA"} \
    ${EXTRA_FLAGS:-}
"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN_DIR/checkpoint" --seed 0 --threads 2 \
    "${SMALL_FB_HELD_OUT[@]}" --json "$RUN_DIR/eval.json"
