#!/usr/bin/env bash
# Reference model (a), second stage: continue training a finished run of recipes/bundled_cpu.sh on the same data
# and held-out splits for MINUTES more (a warm restart: short warm-up to a third of the first stage's peak LR,
# then linear decay to 0 over the budget). 90 + 30 minutes keeps the whole model within two hours of CPU time.
# --split-seed must stay the first stage's seed: it draws the held-out splits (--seed alone would too).
# Usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]   (run from the repository root)
set -euo pipefail
FIRST=${1:?usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]}
RUN_DIR=${2:?usage: recipes/continue_cpu.sh FIRST_RUN_DIR RUN_DIR [MINUTES]}
MINUTES=${3:-30}
DATA=${DATA:-../shared/data}
SYNTH=${SYNTH:-/work/cache/synth/v1}
PY=${PY:-python}
mkdir -p "$RUN_DIR"
"$PY" -m w2v2_onnx_finetune \
    --data "$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1,repeat=2" \
    --data "$DATA/fsdd:group=speaker,hold_out=theo" \
    --data "$DATA/keywords:role=train,limit=500" \
    --data "$SYNTH/train:name=synth,role=train" \
    --data "$SYNTH/eval:name=synth_eval,role=eval" \
    --output-dir "$RUN_DIR" --start "$FIRST/checkpoint" --seed 0 --split-seed 0 \
    --batch-size 8 --eval-batch-size 16 --learning-rate 5e-4 --warmup 200 \
    --scheduler time-linear --max-wall-minutes "$MINUTES" --epochs 200 \
    --eval-steps 1500 --logging-steps 50 --save-total-limit 2 --best-metric none \
    --max-seconds 10 --trim-silence --mask-time-prob 0.04 --threads 2 --precision bf16
"$PY" -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN_DIR/checkpoint" --seed 0 --threads 2 \
    --data "$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1" \
    --data "$DATA/fsdd:group=speaker,hold_out=theo" \
    --data "$SYNTH/eval:name=synth_eval,role=eval" \
    --json "$RUN_DIR/eval.json"
