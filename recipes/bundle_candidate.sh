#!/usr/bin/env bash
# Held-out figures of a candidate for the bundled model, measured as the bundled model's are, and the model
# directory that would be bundled: the candidate's int8 export plus the bundled language model at weights tuned
# on the cathy dev part (never a test part), with the bundled directory's own settings (trim_silence, windows).
# Usage (repository root): recipes/bundle_candidate.sh MODEL_DIR NAME OUT_DIR
#   MODEL_DIR  an exported model directory holding model.int8.onnx (w2v2-onnx export ... --precision int8 --windows 10,1)
#   NAME       names the result files: benchmarks/results/{accuracy,match,phrase_rejection}_NAME*.json
#   OUT_DIR    receives the candidate directory ready to copy over w2v2_onnx/models/default (README aside)
# Needs DATA (default ../shared/data), SYNTH (default /work/cache/synth/v1) and the keyword recordings training
# never drew (KW, default /tmp/kw; made by python recipes/keywords_unused.py /tmp/kw).
set -euo pipefail
MODEL=${1:?usage: recipes/bundle_candidate.sh MODEL_DIR NAME OUT_DIR}
NAME=${2:?usage: recipes/bundle_candidate.sh MODEL_DIR NAME OUT_DIR}
OUT=${3:?usage: recipes/bundle_candidate.sh MODEL_DIR NAME OUT_DIR}
DATA=${DATA:-../shared/data}
SYNTH=${SYNTH:-/work/cache/synth/v1}
KW=${KW:-/tmp/kw}
PY=${PY:-python}
R=benchmarks/results
BUNDLED=w2v2_onnx/models/default
LM=$BUNDLED/lm.arpa.gz
CATHY="$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1"
FSDD="$DATA/fsdd:group=speaker,hold_out=theo"
KEYWORDS="$KW:name=keywords_unused,role=eval"
[ -f "$MODEL/model.int8.onnx" ] || { echo "$MODEL: no model.int8.onnx" >&2; exit 2; }
[ -f "$KW/manifest.tsv" ] || "$PY" recipes/keywords_unused.py "$KW"

# 1. Cathy test, FSDD theo, TTS eval: greedy and beam + LM, the LM weights tuned on the cathy dev part.
"$PY" benchmarks/accuracy.py --model-dir "$MODEL" --precisions int8 --seed 0 --threads 2 \
    --test "$CATHY" --test "$FSDD" --test "$SYNTH/eval:name=synth_eval,role=eval" --dev "$CATHY,part=dev" \
    --lm "$LM" --alphas 0 0.25 0.5 0.75 1 1.5 --betas 0 0.5 1 2 3 --out "$R/accuracy_$NAME.json"
read -r ALPHA BETA < <("$PY" -c "import json,sys; t=json.load(open(sys.argv[1]))['tuning']; print(t['alpha'], t['beta'])" "$R/accuracy_$NAME.json")
echo "LM weights tuned on cathy dev: alpha $ALPHA, beta $BETA"

# 2. The keyword recordings of many speakers that training never drew, at those weights.
"$PY" benchmarks/accuracy.py --model-dir "$MODEL" --precisions int8 --seed 0 --threads 2 --test "$KEYWORDS" \
    --lm "$LM" --alphas "$ALPHA" --betas "$BETA" --out "$R/accuracy_${NAME}_keywords_unused.json"
# ... and with each recording's leading and trailing silence cut first, as the bundled directory's
# trim_silence setting makes transcribe() do (the cathy recordings are trimmed already).
"$PY" benchmarks/accuracy.py --model-dir "$MODEL" --precisions int8 --seed 0 --threads 2 --test "$KEYWORDS" \
    --lm "$LM" --alphas "$ALPHA" --betas "$BETA" --trim-silence --out "$R/accuracy_${NAME}_keywords_unused_trimmed.json"

# 3. Closed-set matching (match_phrases) and rejecting inputs that say none of the phrases.
"$PY" benchmarks/accuracy.py --model-dir "$MODEL" --precisions int8 --seed 0 --threads 2 --match-max 200 \
    --test "$FSDD" --test "$KEYWORDS" --test "$CATHY" --out "$R/match_$NAME.json"
"$PY" benchmarks/phrase_rejection.py --model-dir "$MODEL" --in-set "$KEYWORDS" --out-dev "$CATHY,part=dev" \
    --out-test "$CATHY" --out-test "$FSDD" --out "$R/phrase_rejection_$NAME.json"

# 4. The directory to bundle: the candidate, the bundled LM at the tuned weights, the bundled settings.
rm -rf "$OUT" && mkdir -p "$OUT"
cp "$MODEL/model.int8.onnx" "$MODEL/vocab.json" "$MODEL/export_report.json" "$MODEL/w2v2_onnx.json" "$OUT/"
"$PY" -m w2v2_onnx add-lm "$OUT" "$LM" --alpha "$ALPHA" --beta "$BETA"
"$PY" - "$OUT/w2v2_onnx.json" "$BUNDLED/w2v2_onnx.json" <<'PYEOF'
import json, sys
path, bundled_path = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["trim_silence"] = json.load(open(bundled_path)).get("trim_silence", False)
open(path, "w").write(json.dumps(config, indent=2) + "\n")
PYEOF
"$PY" -m w2v2_onnx transcribe w2v2_onnx/assets/sample.wav --model "$OUT"
"$PY" -m w2v2_onnx transcribe w2v2_onnx/assets/sample.wav --model "$OUT" --decoder greedy
echo "candidate directory: $OUT"
