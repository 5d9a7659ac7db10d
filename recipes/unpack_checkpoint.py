#!/usr/bin/env python3
"""Rebuild a checkpoint that ``recipes/gpu_train.sh`` sent back in parts, with fp32 weights.

    python recipes/unpack_checkpoint.py FOLDER_WITH_PARTS RUN_DIR

``gpu_train.sh`` (step 7) returns the final checkpoint as ``checkpoint.tar.part-aa``, ``-ab``, ... holding
``checkpoint-fp16/`` (config, vocabulary and processor files, weights stored as fp16 so that the files fit what
a lent machine sends back). This writes ``RUN_DIR/checkpoint/`` with the same files and the weights cast back
to fp32 (transformers would otherwise load an fp16 model), ready for ``recipes/evaluate_model.sh RUN_DIR``
and ``w2v2-onnx export``. The fp16 rounding of the weights is the only difference from the trained model.
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
from pathlib import Path


def unpack(parts_dir: Path, run_dir: Path) -> Path:
    """Join the parts, extract them and write ``run_dir/checkpoint`` with fp32 weights; returns that folder."""
    from safetensors.torch import load_file, save_file

    parts = sorted(parts_dir.glob("checkpoint.tar.part-*"))
    if not parts:
        raise SystemExit(f"no checkpoint.tar.part-* in {parts_dir}")
    target = run_dir / "checkpoint"
    if target.exists():
        raise SystemExit(f"{target} exists: remove it first")
    stage = run_dir / ".unpack"
    shutil.rmtree(stage, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as archive:
        archive.extractall(stage, filter="data")
    source = stage / "checkpoint-fp16"
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.float() if v.is_floating_point() else v for k, v in weights.items()},
              str(source / "model.safetensors"), metadata={"format": "pt"})
    source.rename(target)
    stage.rmdir()
    print(f"{target}: {len(weights)} tensors, {sum(v.numel() for v in weights.values()) / 1e6:.2f} M parameters "
          f"(fp32, from {len(parts)} part(s))")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    unpack(Path(sys.argv[1]), Path(sys.argv[2]))
