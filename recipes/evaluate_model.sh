#!/usr/bin/env bash
# After training: export a run's checkpoint (fp32 + int8, and the MatMul-only int8 for comparison), build
# the n-gram LM from sentences.txt plus the training transcripts only, and measure WER/CER on the held-out
# splits with greedy, beam and beam+LM decoding (alpha/beta tuned on the cathy dev part, never the test part).
# Usage: recipes/evaluate_model.sh RUN_DIR   (run from the repository root; writes RUN_DIR/eval/)
set -euo pipefail
RUN_DIR=${1:?usage: recipes/evaluate_model.sh RUN_DIR}
DATA=${DATA:-../shared/data}
SYNTH=${SYNTH:-/work/cache/synth/v1}
PY=${PY:-python}
PYCTC=${PYCTC:-}   # optional: python of a numpy<2 venv with pyctcdecode + kenlm, to compare decoders
OUT="$RUN_DIR/eval"
mkdir -p "$OUT"
CATHY="$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1"
FSDD="$DATA/fsdd:group=speaker,hold_out=theo"

# 1. Export. Calibration audio only feeds the int8/fp16-vs-fp32 checks (dynamic int8 needs none).
"$PY" -m w2v2_onnx.cli export "$RUN_DIR/checkpoint" "$OUT/model" --precision fp32,int8 \
    --calibration "$DATA/cathy/manifest.tsv"
"$PY" -m w2v2_onnx.cli export "$RUN_DIR/checkpoint" "$OUT/model-matmul-int8" --precision int8 \
    --int8-method dynamic --calibration "$DATA/cathy/manifest.tsv"

# 2. LM text (KenLM's lmplz/build_binary are used when on PATH, see docs/decoding.md): sentences.txt + the training
#    part's transcripts, less every held-out sentence: the cathy test prompts and the TTS eval sentences (which
#    were drawn from sentences.txt). FSDD's held-out "sentences" are the ten digit words, which the training
#    part has too: they stay.
"$PY" -m w2v2_onnx_finetune.transcripts --seed 0 -o "$OUT/train_transcripts.txt" --data "$CATHY" --data "$FSDD"
"$PY" -m w2v2_onnx_finetune.transcripts --seed 0 --part held-out -o "$OUT/held_out_sentences.txt" --data "$CATHY" \
    --data "$SYNTH/eval:name=synth_eval,role=eval"
"$PY" -m w2v2_onnx.cli build-lm "$DATA/text/sentences.txt" "$OUT/train_transcripts.txt" -o "$OUT/lm4" --order 4 \
    --exclude "$OUT/held_out_sentences.txt"

LM="$OUT/lm4.arpa"; [ -f "$OUT/lm4.bin" ] && LM="$OUT/lm4.bin"  # KenLM binary when build_binary is on PATH

# 3. WER/CER by precision and decoder on held-out cathy prompts, FSDD speaker theo and TTS sentences.
for model in model model-matmul-int8; do
  precisions="int8 fp32"; [ "$model" = model ] || precisions="int8"
  "$PY" benchmarks/accuracy.py --model-dir "$OUT/$model" --precisions $precisions --seed 0 --threads 2 \
      --test "$CATHY" --test "$FSDD" --test "$SYNTH/eval:name=synth_eval,role=eval" \
      --dev "$CATHY,part=dev" --lm "$LM" ${PYCTC:+--pyctc-python "$PYCTC"} --alphas 0 0.25 0.5 0.75 1 1.5 --betas 0 0.5 1 2 3 --out "$OUT/accuracy_$model.json"
done
