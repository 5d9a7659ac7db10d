"""The model directory contract (``docs/model-directory.md``): the config json, vocab.json, metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from w2v2_onnx_export.checkpoint import LoadedCheckpoint

FORMAT = "w2v2-onnx"
FORMAT_VERSION = 1
CONFIG_NAME = "w2v2_onnx.json"
VOCAB_NAME = "vocab.json"
REPORT_NAME = "export_report.json"
METADATA_KEY = "w2v2_onnx"
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def onnx_file_name(precision: str) -> str:
    """``model.<precision>.onnx``."""
    return f"model.{precision}.onnx"


def frame_step(strides: list[int]) -> int:
    """Samples between consecutive output frames: the product of the conv strides."""
    step = 1
    for s in strides:
        step *= int(s)
    return step


def receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Samples one output frame sees (also the shortest input that gives a frame)."""
    field = 1
    for k, s in zip(reversed(kernels), reversed(strides), strict=True):
        field = (field - 1) * int(s) + int(k)
    return field


def build_config(loaded: LoadedCheckpoint, files: dict[str, str],
                 windows: tuple[float, float] | None = None) -> dict[str, Any]:
    """Return the ``w2v2_onnx.json`` content for a loaded checkpoint and the written precision files, with
    the model's own window defaults (``windows``: chunk length and context in seconds) when given."""
    import torch
    import transformers

    config = loaded.model.config
    kernels = [int(k) for k in config.conv_kernel]
    strides = [int(s) for s in config.conv_stride]
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": str(config.model_type),
        "architecture": loaded.architecture,
        "sample_rate": loaded.sample_rate,
        "do_normalize": loaded.do_normalize,
        "feat_extract_norm": str(getattr(config, "feat_extract_norm", "layer")),
        "conv_kernel": kernels,
        "conv_stride": strides,
        "frame_step": frame_step(strides),
        "receptive_field": receptive_field(kernels, strides),
        "vocabulary": list(loaded.tokens),
        "blank_id": loaded.blank_id,
        "word_delimiter": loaded.word_delimiter,
        "unk_token": loaded.unk_token,
        "special_tokens": list(loaded.special_tokens),
        "files": {p: files[p] for p in PRECISIONS if p in files},
        "source": {
            "checkpoint": loaded.source,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__.split("+")[0],
        },
    }
    if windows is not None:
        config["windows"] = {"chunk_length": windows[0], "chunk_context": windows[1]}
    return config


def metadata_json(config: dict[str, Any], precision: str) -> str:
    """The ``w2v2_onnx`` metadata value: the config without ``files``, with ``precision``."""
    meta = {k: v for k, v in config.items() if k != "files"}
    meta["precision"] = precision
    return json.dumps(meta, ensure_ascii=False)


def set_metadata(onnx_path: Path, config: dict[str, Any], precision: str) -> None:
    """Write the config into ``onnx_path``'s ``metadata_props`` (replacing an older value)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata_json(config, precision)
    onnx.save(model, str(onnx_path))


def write_directory_files(out_dir: Path, config: dict[str, Any]) -> None:
    """Write ``w2v2_onnx.json`` and ``vocab.json``."""
    (out_dir / CONFIG_NAME).write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    vocab = {t: i for i, t in enumerate(config["vocabulary"])}
    (out_dir / VOCAB_NAME).write_text(
        json.dumps(vocab, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
