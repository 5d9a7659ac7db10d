"""Average the weights of checkpoints of one architecture into a new checkpoint directory.

Usage (repository root): python recipes/average_checkpoints.py OUT_DIR CHECKPOINT_DIR [CHECKPOINT_DIR ...]

Every floating-point tensor of ``model.safetensors`` becomes the plain mean over the checkpoints (integer
tensors must be equal); config, vocabulary and processor files are copied from the first checkpoint. Refuses
checkpoints whose tensor names, shapes or configs differ, naming the first difference; config keys that only
shape training (SpecAugment, dropouts) may differ.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from w2v2_onnx_finetune.model import REGULARISATION

WEIGHTS = "model.safetensors"
COPIED = ("config.json", "vocab.json", "tokenizer_config.json", "processor_config.json",
          "preprocessor_config.json", "special_tokens_map.json")


#: Config keys that only shape training (the fine-tuning stage's SpecAugment and dropout overrides) or record
#: where a file came from: they may differ between checkpoints.
TRAINING_ONLY = set(REGULARISATION) | {"use_cache", "transformers_version", "_name_or_path"}


def _config(directory: Path) -> dict:
    config = json.loads((directory / "config.json").read_text())
    return {key: value for key, value in config.items() if key not in TRAINING_ONLY}


def average(out_dir: Path, checkpoints: list[Path]) -> None:
    """Write the mean of ``checkpoints``' weights to ``out_dir`` (see the module docstring)."""
    if len(checkpoints) < 2:
        raise SystemExit("give at least two checkpoint directories")
    for directory in checkpoints:
        if not (directory / WEIGHTS).is_file():
            raise SystemExit(f"{directory}: no {WEIGHTS}")
        config, first = _config(directory), _config(checkpoints[0])
        if config != first:
            keys = sorted(key for key in config.keys() | first.keys() if config.get(key) != first.get(key))
            raise SystemExit(f"{directory}: config.json differs from {checkpoints[0]}'s in {', '.join(keys)}")
    states = [load_file(str(directory / WEIGHTS)) for directory in checkpoints]
    names = set(states[0])
    for directory, state in zip(checkpoints[1:], states[1:], strict=True):
        if set(state) != names:
            raise SystemExit(f"{directory}: tensor names differ from {checkpoints[0]}'s: "
                             f"{sorted(set(state) ^ names)[:5]}")
    averaged = {}
    for name in sorted(names):
        tensors = [state[name] for state in states]
        if any(tensor.shape != tensors[0].shape for tensor in tensors):
            raise SystemExit(f"tensor {name}: shapes differ: {[tuple(t.shape) for t in tensors]}")
        if tensors[0].is_floating_point():
            averaged[name] = torch.stack([t.double() for t in tensors]).mean(0).to(tensors[0].dtype)
        elif all(torch.equal(tensor, tensors[0]) for tensor in tensors):
            averaged[name] = tensors[0]
        else:
            raise SystemExit(f"integer tensor {name} differs between checkpoints")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(out_dir / WEIGHTS), metadata={"format": "pt"})
    for name in COPIED:
        if (checkpoints[0] / name).is_file():
            shutil.copy2(checkpoints[0] / name, out_dir / name)
    (out_dir / "averaged_from.json").write_text(json.dumps([str(c) for c in checkpoints], indent=1) + "\n")
    print(f"averaged {len(names)} tensors of {len(checkpoints)} checkpoints into {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    average(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
