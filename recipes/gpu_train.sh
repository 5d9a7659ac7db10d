#!/usr/bin/env bash
# Reference model (b): a larger model trained from scratch on one CUDA GPU, in one fixed-time run.
# Same sources, held-out splits and seed as reference model (a) (recipes/small_fb_common.sh), packed by
# recipes/gpu_pack.py into .gpudata/ (wheels of the missing packages + data.tar.gz). Trains a 12 x 384 pre-LN
# transformer behind small-fb's filterbank front-end widened to 384 channels (about 23 M parameters), bf16,
# batch 32, time-linear schedule over a wall budget, then scores the final checkpoint on the held-out sets with
# python -m w2v2_onnx_finetune.evaluate (greedy WER/CER/exact: cathy test part, FSDD theo, TTS eval).
#
# Usage, from the repository root:   OUT=/some/dir bash recipes/gpu_train.sh
# Writes to $OUT: train.log (everything printed); results.tar.gz holding commands.txt (the exact commands,
# versions, phase times), metrics.jsonl and data.json (written while training runs), training.json, eval.json,
# curves.png and summary.json; and checkpoint.tar.part-* (the final checkpoint with fp16 weights, step 7). The
# fp32 checkpoint stays in $GPU_TRAIN_WORK/run/checkpoint.
#
# Environment: PY (python3), GPU_TRAIN_LIMIT_S (575: the whole command ends before this many seconds),
# GPU_TRAIN_MINUTES (30: training budget, cut to what the limit leaves), GPU_TRAIN_WORK (/tmp/gpu-train),
# GPU_TRAIN_FINAL_RESERVE and GPU_TRAIN_POST_RESERVE (seconds kept after training, see the settings below),
# GPU_TRAIN_EVALUATE=0 (skip step 5, e.g. to score the returned checkpoint elsewhere),
# GPU_TRAIN_START (a checkpoint to continue instead of a new model), GPU_TRAIN_LR and GPU_TRAIN_WARMUP (override
# the peak learning rate and warm-up steps below), GPU_TRAIN_EXTRA (more flags for the finetune command, split on
# spaces, e.g. "--mask-time-prob 0.3 --layerdrop 0.05"),
# GPU_TRAIN_SYNTH=N (N more synthetic training utterances made on the GPU machine by flite, see step 2b; default
# 8000 when .gpudata holds flite's packages, else 0;
# GPU_TRAIN_SYNTH_LIMIT_S bounds that step, 150 s), GPU_TRAIN_SMOKE=1 (a tiny model, 1 minute, CPU-sized settings:
# the end-to-end test of this script).
set -euo pipefail
: "${OUT:?set OUT to the folder that receives the results}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd); export OUT
if [ -z "${_GPU_TRAIN_LOGGED:-}" ]; then  # run again with everything printed also going to $OUT/train.log
    export _GPU_TRAIN_LOGGED=1 _GPU_TRAIN_T0=$(date +%s)
    set +e
    bash "$0" "$@" 2>&1 | tee "$OUT/train.log"
    status=${PIPESTATUS[0]}
    echo "exit status $status after $(( $(date +%s) - _GPU_TRAIN_T0 )) s" | tee -a "$OUT/train.log"
    exit "$status"
fi

T0=$_GPU_TRAIN_T0
PY=${PY:-python3}
SMOKE=${GPU_TRAIN_SMOKE:-0}
LIMIT_S=${GPU_TRAIN_LIMIT_S:-575}
WANT_MINUTES=${GPU_TRAIN_MINUTES:-30}
WORK=${GPU_TRAIN_WORK:-/tmp/gpu-train}
REPO=$PWD
RUN=$WORK/run
CMDS=$OUT/commands.txt
elapsed() { echo $(( $(date +%s) - T0 )); }
note() { echo "[gpu_train $(elapsed)s] $*" | tee -a "$CMDS"; }
quoted() { printf '%q ' "$@"; }
# run_until_saved HARD_S FILE CMD...: run CMD under a hard timeout; once FILE exists (the finetune command writes
# checkpoint/training.json last), give the process GRACE_S (15) more seconds to exit, then stop it. Run 4 sat 44 s
# at exit after saving (its DataLoader workers; not reproduced since) and the hard timeout left its evaluation
# 12 s. Returns CMD's status, or 143 when it was stopped that way.
run_until_saved() {
    local hard=$1 file=$2 grace=${GRACE_S:-15} pid
    shift 2
    timeout --kill-after=5 "$hard" "$@" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ -f "$file" ] && [ $(( $(date +%s) - $(stat -c %Y "$file") )) -gt "$grace" ]; then
            note "still running ${grace}s after writing $(basename "$file"): stuck at exit, stopped"
            kill -TERM "$pid" 2>/dev/null
            sleep 3
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 1
    done
    wait "$pid"   # its status is the function's
}

# Where the training and evaluation settings differ between the real run and the CPU smoke test.
if [ "$SMOKE" = 1 ]; then
    LIMIT_S=${GPU_TRAIN_LIMIT_S:-1500}; WANT_MINUTES=${GPU_TRAIN_MINUTES:-1}
    MODEL='{"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
            "conv_dim": [64, 64], "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}'
    LOOP=(--batch-size 8 --eval-batch-size 16 --eval-steps 40 --logging-steps 10 --threads 2 --num-workers 2
          --learning-rate 1e-3 --warmup 20 --mask-time-prob 0.05)
    DEFAULT_SYNTH=0
    FINAL_RESERVE=${GPU_TRAIN_FINAL_RESERVE:-120}; POST_RESERVE=${GPU_TRAIN_POST_RESERVE:-150}
    EVAL_BATCH=16; EVAL_THREADS=2; NAME=smoke-tiny
    export EVAL_DEVICE=${EVAL_DEVICE:-cpu}   # exercises the device wrapper of step 5 on the CPU
else
    # "medium-fb-384": small-fb's two-layer front-end (400-tap filterbank conv, stride 160, then kernel 3 /
    # stride 2) widened to 384 channels, and a 12 x 384 pre-LN transformer (6 heads, FFN 1536), positional conv
    # 128 / 16: about 23 M parameters, so that its fp16 checkpoint (about 46 MB) comes back from the lent machine
    # (64 MiB of files at most). Batch 32: at this size a step costs about the same at 32 as at 64 utterances
    # (the GPU is far from busy), so 32 gives twice the updates per epoch.
    MODEL='{"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536,
            "conv_dim": [384, 384], "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16}'
    # Regularisation and loader of run 4 (model (b) since the fourteenth session; run 3, with SpecAugment time
    # masks at 0.05 alone and no more text, over-fitted after 3 minutes): SpecAugment time masks p 0.2 and
    # feature masks p 0.05 (length 16), speed perturbation p 0.5, 12 loader workers, and 8,000 more flite
    # sentences made on the machine (step 2b) when the pack carries flite (gpu_pack.py --tts).
    LOOP=(--batch-size 32 --eval-batch-size 64 --eval-steps 2000 --logging-steps 50 --threads 8 --num-workers 12
          --learning-rate 7e-4 --warmup 300   # at 1e-3 the first run went NaN at step ~2,000
          --mask-time-prob 0.2 --mask-feature-prob 0.05 --mask-feature-length 16 --speed-perturb 0.5)
    DEFAULT_SYNTH=0; [ -d "$PWD/.gpudata/debs" ] && DEFAULT_SYNTH=8000
    # seconds kept after training stops: the final evaluation and saving inside the finetune command (about 6 s
    # on the H200), then the evaluation module, plot, summary and checkpoint packing after it (about 30 s)
    FINAL_RESERVE=${GPU_TRAIN_FINAL_RESERVE:-25}; POST_RESERVE=${GPU_TRAIN_POST_RESERVE:-50}
    EVAL_BATCH=32; EVAL_THREADS=8; NAME=medium-fb-384
fi

: > "$CMDS"
note "start $(date -u +%Y-%m-%dT%H:%M:%SZ) host $(hostname) repo $REPO smoke=$SMOKE limit=${LIMIT_S}s"
{ git rev-parse HEAD 2>/dev/null && git status --short 2>/dev/null | head -20; } | sed 's/^/  git: /' >> "$CMDS" || true
{ command -v nvidia-smi >/dev/null && timeout 15 nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader; } 2>/dev/null | sed 's/^/  gpu: /' >> "$CMDS" || true
echo "  cpus: $(nproc)  python: $($PY -c 'import sys; print(sys.version.split()[0])')" >> "$CMDS"

# 1. Packages that the GPU machine lacks (soundfile, cffi, pycparser, soxr, jiwer, rapidfuzz), from the
#    carried wheels, and the repository's three packages on PYTHONPATH (the repo is not pip-installed there).
SITE=$WORK/site
SHIM=$WORK/shim
rm -rf "$WORK"; mkdir -p "$SITE" "$SHIM" "$RUN"
ln -s "$REPO/export" "$SHIM/w2v2_onnx_export"
ln -s "$REPO/finetune" "$SHIM/w2v2_onnx_finetune"
if $PY -c "import soundfile, soxr, jiwer" 2>/dev/null; then
    note "soundfile, soxr and jiwer import already: wheels not installed"
else
    cmd=($PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE"
         "$REPO"/.gpudata/whl/*.whl)
    note "$(quoted "${cmd[@]}")"
    "${cmd[@]}"
fi
export PYTHONPATH=$SITE:$SHIM:$REPO${PYTHONPATH:+:$PYTHONPATH}
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
$PY - <<'EOF' | tee -a "$CMDS"
import importlib, sys
for name in ("torch", "transformers", "accelerate", "numpy", "soundfile", "soxr", "jiwer", "rapidfuzz",
             "w2v2_onnx", "w2v2_onnx_finetune.cli"):
    module = importlib.import_module(name)
    print(f"  {name} {getattr(module, '__version__', '')} {getattr(module, '__file__', '')}")
import soundfile, torch
print(f"  libsndfile {soundfile.__libsndfile_version__}; cuda {torch.cuda.is_available()}"
      + (f" {torch.cuda.get_device_name(0)} bf16 {torch.cuda.is_bf16_supported()}" if torch.cuda.is_available() else ""))
EOF

# 2. The data (recipes/gpu_pack.py): the same layout as ../shared/data and the synthetic cache, so the recipe's
#    own source specs (recipes/small_fb_common.sh) give the same training rows and held-out splits.
tar -xf "$REPO/.gpudata/data.tar.gz" -C "$WORK"
DATA=$WORK/gpudata/data
SYNTH=$WORK/gpudata/synth/v1
source "$REPO/recipes/small_fb_common.sh"
note "data unpacked: $(du -sh "$WORK/gpudata" | cut -f1)"

# 2b. With GPU_TRAIN_SYNTH=N (and .gpudata packed with --tts): N more synthetic training utterances, spoken here by
#     flite from the carried Debian packages on all CPU cores, seeded and drawn like /work/cache/synth/v1 (recipes/bundled_cpu.sh; its 100 eval
#     sentences come first in the same shuffled pool, so the new training sentences never include them; checked).
#     Best effort: if synthesis fails or runs out of its time, training goes on with the carried data alone.
SYNTH_N=${GPU_TRAIN_SYNTH:-$DEFAULT_SYNTH}
if [ "$SYNTH_N" -gt 0 ]; then
    TTS=$WORK/tts
    mkdir -p "$TTS"
    for deb in "$REPO"/.gpudata/debs/*.deb; do dpkg -x "$deb" "$TTS"; done
    TTS_ENV=(env "PATH=$TTS/usr/bin:$PATH" "LD_LIBRARY_PATH=$TTS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    cmd=("${TTS_ENV[@]}" "$PY" -m w2v2_onnx_finetune.synth --out "$WORK/synth-big" --sentences "$DATA/text/sentences.txt"
         --train "$SYNTH_N" --eval 100 --seed 0 --max-words 12 --digit-fraction 0.15 --jobs "$(nproc)")
    limit=${GPU_TRAIN_SYNTH_LIMIT_S:-150}
    note "synthesise $SYNTH_N training utterances with $("${TTS_ENV[@]}" sh -c 'command -v flite'), at most ${limit}s"
    echo "  $(quoted "${cmd[@]}")" >> "$CMDS"
    set +e
    timeout --kill-after=5 "$limit" "${cmd[@]}" > "$WORK/synth.log" 2>&1
    synth_status=$?
    set -e
    tail -3 "$WORK/synth.log" | sed 's/^/  synth: /' | tee -a "$CMDS"
    if [ "$synth_status" = 0 ] && cmp -s <(cut -f2 "$WORK/synth-big/eval/manifest.tsv") <(cut -f2 "$SYNTH/eval/manifest.tsv")
    then
        SMALL_FB_DATA+=(--data "$WORK/synth-big/train:name=synth_big,role=train")
        note "synthesised: $(( $(wc -l < "$WORK/synth-big/train/manifest.tsv") - 1 )) rows, $(du -sh "$WORK/synth-big/train" | cut -f1)"
    else
        note "synthesis skipped (exit $synth_status, or its eval sentences differ from the carried eval set)"
    fi
fi

# 3. The initial model: scratch_config("small-fb") with the sizes above, seeded, first conv initialised as the
#    mel-spaced Gabor filterbank (as --start scratch:* does), saved as a checkpoint for --start (the CLI has no
#    size flags). It is not one of our checkpoints, so --freeze-feature-encoder no keeps the front-end trainable.
#    With GPU_TRAIN_START=DIR the run continues that checkpoint instead (e.g. the previous call's
#    /tmp/gpu-train/run/checkpoint on a machine still warm, with GPU_TRAIN_WORK set to another folder).
START=${GPU_TRAIN_START:-}
if [ -n "$START" ]; then
    note "continue from $START"
    $PY - "$START" "$WORK/init" <<'EOF' | tee -a "$CMDS"
import json, sys
from pathlib import Path
from safetensors.torch import load_file
from transformers import AutoConfig
start, out = sys.argv[1], Path(sys.argv[2])
params = sum(tensor.numel() for tensor in load_file(f"{start}/model.safetensors").values())
out.mkdir(parents=True, exist_ok=True)
json.dump({"parameters": params, "continued_from": start, "config": AutoConfig.from_pretrained(start).to_dict()},
          open(out / "model_facts.json", "w"), indent=1)
print(f"  parameters {params} ({params / 1e6:.2f} M), continued from {start}")
EOF
else
START=$WORK/init
note "init model: $MODEL"
$PY - "$WORK/init" "$MODEL" <<'EOF' | tee -a "$CMDS"
import json, sys
import torch
from transformers import AutoModelForCTC, Wav2Vec2ForCTC
from w2v2_onnx_finetune.model import init_filterbank, scratch_config
out, sizes = sys.argv[1], json.loads(sys.argv[2])
sizes = {k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()}
torch.manual_seed(0)
config = scratch_config("small-fb", **sizes)
model = Wav2Vec2ForCTC(config)
init_filterbank(model.wav2vec2.feature_extractor.conv_layers[0].conv, sample_rate=16000)
model.save_pretrained(out)
again = AutoModelForCTC.from_pretrained(out)
mine, theirs = model.state_dict(), again.state_dict()
assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), "reload differs"
params = sum(p.numel() for p in model.parameters())
print(f"  parameters {params} ({params / 1e6:.2f} M); front-end "
      f"{sum(p.numel() for p in model.wav2vec2.feature_extractor.parameters()) / 1e6:.2f} M; reload identical")
json.dump({"parameters": params, "config": config.to_dict()}, open(f"{out}/model_facts.json", "w"), indent=1)
EOF
fi

# 4. Train for WANT_MINUTES, or until --train-until: LIMIT_S less FINAL_RESERVE + POST_RESERVE seconds from the
#    start. The deadline is measured after the data is loaded (loading took 15-40 s on the lent machines), so
#    the schedule decays over the time really left. A hard timeout stops the command in time to keep the logs
#    whatever happens (a command killed there saves nothing: the second H200 run, whose fixed budget did not
#    count its loading).
MINUTES=$WANT_MINUTES
UNTIL=$(( T0 + LIMIT_S - FINAL_RESERVE - POST_RESERVE ))
ln -s "$OUT/metrics.jsonl" "$RUN/metrics.jsonl"   # written straight into $OUT as training goes
ln -s "$OUT/data.json" "$RUN/data.json"
cmd=($PY -m w2v2_onnx_finetune "${SMALL_FB_DATA[@]}" --output-dir "$RUN" --start "$START"
     --freeze-feature-encoder no --seed 0 --split-seed 0 --scheduler time-linear --max-wall-minutes "$MINUTES"
     --train-until "$UNTIL"
     --epochs 1000 --precision bf16 --max-seconds 10 --trim-silence
     --save-total-limit 1 --best-metric none "${LOOP[@]}"
     ${GPU_TRAIN_LR:+--learning-rate "$GPU_TRAIN_LR"} ${GPU_TRAIN_WARMUP:+--warmup "$GPU_TRAIN_WARMUP"})
read -ra extra <<< "${GPU_TRAIN_EXTRA:-}"
cmd+=("${extra[@]}")
hard=$(( LIMIT_S - $(elapsed) - 20 ))
note "train: at most $MINUTES min, until $(date -u -d "@$UNTIL" +%H:%M:%S) UTC ($(( UNTIL - $(date +%s) ))s from now), hard timeout ${hard}s"
echo "  $(quoted "${cmd[@]}")" >> "$CMDS"
train_started=$(elapsed)
set +e
run_until_saved "$hard" "$RUN/checkpoint/training.json" "${cmd[@]}"
train_status=$?
set -e
note "train: exit $train_status after $(( $(elapsed) - train_started ))s"
[ -f "$RUN/checkpoint/training.json" ] && cp "$RUN/checkpoint/training.json" "$OUT/training.json"
[ -f "$RUN/checkpoint/config.json" ] && cp "$RUN/checkpoint/config.json" "$WORK/final_config.json"

# 5. Score the final checkpoint on the held-out sets with the evaluation module (same specs and seed as the
#    training run). On CUDA (or EVAL_DEVICE) the model is moved to the device by a wrapper around
#    AutoModelForCTC.from_pretrained and its inputs by a forward pre-hook; the module's code is unchanged.
eval_status=skipped
if [ -f "$RUN/checkpoint/model.safetensors" ] && [ "${GPU_TRAIN_EVALUATE:-1}" = 1 ]; then
    cmd=($PY -m w2v2_onnx_finetune.evaluate --checkpoint "$RUN/checkpoint" --seed 0 --batch-size "$EVAL_BATCH"
         --threads "$EVAL_THREADS" "${SMALL_FB_HELD_OUT[@]}" --json "$OUT/eval.json")
    hard=$(( LIMIT_S - $(elapsed) - 8 ))
    note "evaluate (on CUDA when there is one), hard timeout ${hard}s"
    echo "  $(quoted "${cmd[@]}")" >> "$CMDS"
    set +e
    timeout --kill-after=5 "$hard" "$PY" - "${cmd[@]:3}" <<'EOF' > "$WORK/eval_stdout.json"
import os, sys
import torch
from transformers import AutoModelForCTC
device = os.environ.get("EVAL_DEVICE") or ("cuda" if torch.cuda.is_available() else "")
if device:
    load = AutoModelForCTC.from_pretrained
    def to_device(value):
        return value.to(device) if torch.is_tensor(value) else value
    def on_device(*args, **kwargs):
        model = load(*args, **kwargs).to(device)
        model.register_forward_pre_hook(lambda module, a, k: (tuple(map(to_device, a)),
                                                              {n: to_device(v) for n, v in k.items()}),
                                        with_kwargs=True)
        print(f"evaluating on {next(model.parameters()).device}", file=sys.stderr)
        return model
    AutoModelForCTC.from_pretrained = on_device
from w2v2_onnx_finetune.evaluate import main
sys.argv[0] = "python -m w2v2_onnx_finetune.evaluate"
raise SystemExit(main(sys.argv[1:]))
EOF
    eval_status=$?
    set -e
    note "evaluate: exit $eval_status"
fi

# 6. Training curves, then one summary file.
if [ -s "$OUT/metrics.jsonl" ] && [ $(( LIMIT_S - $(elapsed) )) -gt 12 ]; then
    cmd=($PY -m w2v2_onnx_finetune.plot "$OUT/metrics.jsonl" -o "$OUT/curves.png"
         --title "reference model (b): $NAME from scratch, one GPU, ${MINUTES} min")
    echo "  $(quoted "${cmd[@]}")" >> "$CMDS"
    timeout 20 "${cmd[@]}" || note "plot failed"
fi
note "end: train exit $train_status, evaluate exit $eval_status"
$PY - "$OUT" "$WORK" "$MINUTES" "$train_status" "$eval_status" "$T0" <<'EOF' || true
import json, sys, time
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
def load(path):
    try:
        return json.loads(Path(path).read_text())
    except Exception as exc:
        return {"missing": f"{path}: {exc}"}
training = load(out / "training.json")
evaluation = load(out / "eval.json")
summary = {
    "train_minutes_budget": float(sys.argv[3]), "train_exit": sys.argv[4], "evaluate_exit": sys.argv[5],
    "command_wall_s": round(time.time() - int(sys.argv[6])),
    "model": load(work / "init" / "model_facts.json"),
    "steps": training.get("global_step"), "train_runtime_s": training.get("train_runtime_s"),
    "train_examples": training.get("train_examples"), "train_audio_s": training.get("train_audio_s"),
    "final_eval_in_training": training.get("final_eval"),
    "evaluate": {name: {k: v for k, v in result.items() if k != "examples"} if isinstance(result, dict) else result
                 for name, result in evaluation.items()},
}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps({k: summary[k] for k in ("steps", "train_runtime_s", "evaluate")}, indent=1))
EOF
# 7. What comes back from a lent machine (at most 8 files): train.log, results.tar.gz (the small files above) and
#    the final checkpoint with fp16 weights (config, vocabulary and processor files beside them) as
#    checkpoint.tar.part-aa, -ab, ... of at most 15 MiB each (reassemble: cat checkpoint.tar.part-* | tar x).
#    GPU_TRAIN_RETURN_CHECKPOINT=0 keeps it on the machine only.
if [ "${GPU_TRAIN_RETURN_CHECKPOINT:-1}" = 1 ] && [ -f "$RUN/checkpoint/model.safetensors" ]; then
    if $PY - "$RUN/checkpoint" "$WORK/checkpoint-fp16" <<'EOF'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
source, target = Path(sys.argv[1]), Path(sys.argv[2])
target.mkdir(parents=True)
for item in source.iterdir():
    if item.is_file() and item.suffix in (".json", ".txt"):
        shutil.copy2(item, target / item.name)
weights = load_file(str(source / "model.safetensors"))
save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
          str(target / "model.safetensors"), metadata={"format": "pt"})
EOF
    then
        (cd "$WORK" && tar -cf - checkpoint-fp16 | split -b 15M - "$OUT/checkpoint.tar.part-")
        note "checkpoint with fp16 weights: $(ls "$OUT" | grep -c checkpoint.tar.part-) part(s) in \$OUT"
    else
        note "checkpoint not packed"
    fi
fi
(cd "$OUT" && small=$(ls | grep -v -e '^train.log$' -e '^checkpoint.tar.part-' -e '^results.tar.gz$') \
    && [ -n "$small" ] && tar -czf results.tar.gz $small && rm -f $small) || note "results not packed"
exit "$train_status"
