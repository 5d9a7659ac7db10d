#!/usr/bin/env bash
# The seed's experiment with our own model: fine-tune a trained checkpoint on the cathy train split only and
# compare greedy WER on the cathy test split (held-out prompt ids) before and after.
# Usage: recipes/seed_experiment.sh START_CHECKPOINT RUN_DIR [MINUTES]   (run from the repository root)
set -euo pipefail
START=${1:?usage: recipes/seed_experiment.sh START_CHECKPOINT RUN_DIR [MINUTES]}
RUN_DIR=${2:?usage: recipes/seed_experiment.sh START_CHECKPOINT RUN_DIR [MINUTES]}
MINUTES=${3:-15}
DATA=${DATA:-../shared/data}
PY=${PY:-python}
CATHY="$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1"
mkdir -p "$RUN_DIR"

"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$START" --seed 0 --threads 2 --data "$CATHY" \
    --json "$RUN_DIR/before.json"
# Continued fine-tuning (our own checkpoint: the feature encoder stays trainable), cathy only.
"$PY" -m w2v2_onnx_finetune --data "$CATHY" --output-dir "$RUN_DIR" --start "$START" --seed 0 \
    --batch-size 8 --eval-batch-size 16 --learning-rate 3e-4 --warmup 100 \
    --scheduler time-linear --max-wall-minutes "$MINUTES" --epochs 100 --eval-steps 500 --logging-steps 50 \
    --save-total-limit 1 --best-metric none --max-seconds 10 --trim-silence --mask-time-prob 0.04 \
    --threads 2 --precision bf16
"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN_DIR/checkpoint" --seed 0 --threads 2 --data "$CATHY" \
    --json "$RUN_DIR/after.json"
