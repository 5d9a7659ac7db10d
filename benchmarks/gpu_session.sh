#!/usr/bin/env bash
# The CUDA checks of one lent GPU machine (see docs/benchmarks.md, "CUDA"), as few device calls as possible.
# onnxruntime-gpu travels in four parts (../shared/tools/ortgpu-parts.sh prepares .ortgpu/p1..p4); small
# wheels the runtime needs (soundfile, soxr, cffi, pycparser for Python 3.12) travel in .whl/.
#
# The exports use onnxruntime 1.32 (CPU wheel in .ortcpu/): the machine's own 1.30 fuses no Attention.
# Prepare once, here, in the repository root (both folders git-ignored through .git/info/exclude):
#   echo /.whl/ >> .git/info/exclude; echo /.ortcpu/ >> .git/info/exclude
#   get() { python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d "$@"; }
#   get .whl soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12; get .ortcpu onnxruntime==1.32.0
#
#   call 1, carry .whl .ortcpu:     bash benchmarks/gpu_session.sh setup     (starts the CPU exports)
#   call 2, carry .ortgpu/p1:       bash benchmarks/gpu_session.sh stage 1
#   call 3, carry .ortgpu/p2:       bash benchmarks/gpu_session.sh stage 2
#   call 4, carry .ortgpu/p3:       bash benchmarks/gpu_session.sh stage 3
#   call 5, carry .ortgpu/p4:       bash benchmarks/gpu_session.sh bench [run|levers|runtime-path|attention|capture|capture-runtime ...]
#
# The machine must stay warm between calls (about 30 s). Results land in $OUT: cuda_base.json (read by
# benchmarks/report.py), and the logs of the benchmark, the exports, the CUDA tests and the CLI.
set -uo pipefail
export PYTHONUNBUFFERED=1
WORK=/tmp/w2v2-cuda-bench
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/ortc

case "${1:-}" in
setup)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 --version
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/wsite \
        .whl/*.whl || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ortcpu \
        .ortcpu/*.whl || exit 1
    # A snapshot of the tree for the background export (later calls re-send the tree in place).
    mkdir -p /tmp/repo /tmp/pkgs
    tar --exclude=./.ortgpu --exclude=./.whl --exclude=./.gpudata --exclude=./.ortcpu --exclude=./.git -cf - . | tar xf - -C /tmp/repo
    ln -sfn /tmp/repo/w2v2_onnx /tmp/pkgs/w2v2_onnx
    ln -sfn /tmp/repo/export /tmp/pkgs/w2v2_onnx_export
    ln -sfn /tmp/repo/finetune /tmp/pkgs/w2v2_onnx_finetune
    # setsid: the export (CPU only, about two minutes) outlives this call and runs during the calls that bring onnxruntime-gpu.
    for part in main convmm; do
        setsid nohup env PYTHONPATH=/tmp/pkgs:/tmp/wsite:/tmp/ortcpu python3 /tmp/repo/benchmarks/cuda_figures.py \
            prepare --arch base --dir "$WORK" --only $part > /tmp/prepare-$part.log 2>&1 < /dev/null &
    done
    sleep 2
    ;;
stage)
    cp ".ortgpu/p$2/"* /tmp/ortc/ || exit 1
    ls -la /tmp/ortc
    tail -n 3 /tmp/prepare-*.log 2>/dev/null
    ;;
bench)
    cp .ortgpu/p4/* /tmp/ortc/ 2>/dev/null
    mkdir -p /tmp/site && cat /tmp/ortc/part.* | tar xJ -C /tmp/site || exit 1
    export PYTHONPATH=/tmp/site:/tmp/wsite:/tmp/pkgs
    python3 -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())"
    for _ in $(seq 180); do [ -f "$WORK/base/prepared-main" ] && [ -f "$WORK/base/prepared-convmm" ] && break; sleep 2; done
    cat /tmp/prepare-*.log | grep -v "Cannot determine\|Loading weights" > "$OUT/prepare.log"
    ls -la "$WORK/base/model"
    # run: every system and setting; levers: EXHAUSTIVE conv search and convmm; runtime-path: where the
    # runtime's time goes between the model alone and Transcriber; attention: mask formats, fixed shapes with
    # CUDA graphs, kernel profiles. Several steps may follow "bench", each with its own JSON and log.
    shift
    for step in "${@:-run}"; do
        python3 benchmarks/cuda_figures.py "$step" --arch base --dir "$WORK" --repeats 20 \
            --out "$OUT/cuda_base_$step.json" 2>&1 | grep -v "Loading weights\|Fallback mode" \
            | tee "$OUT/bench_$step.log"
    done
    python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$OUT/pytest_cuda.log"
    # The README's main job on a GPU machine: the bundled (int8-only) model with --device cuda.
    { time python3 -m w2v2_onnx transcribe w2v2_onnx/assets/sample.wav --device cuda --format json; } \
        > "$OUT/cli_cuda.log" 2>&1
    tail -5 "$OUT/cli_cuda.log"
    ;;
*)
    echo "usage: $0 setup | stage 1|2|3 | bench" >&2
    exit 2
    ;;
esac
