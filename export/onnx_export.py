"""torch -> ONNX: the legacy TorchScript exporter (opset 17), which gave the fastest graph here.

The dynamo exporter was measured slower on wav2vec2 (it keeps an all-zero mask add per layer), see
``docs/export.md``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from w2v2_onnx.errors import ExportError
from w2v2_onnx_export.wrapper import CTCExportWrapper

log = logging.getLogger(__name__)

INPUT_NAMES = ["input_values", "input_lengths"]
OUTPUT_NAMES = ["log_probs", "output_lengths"]


def dummy_inputs(receptive_field: int, frame_step: int, seed: int = 0) -> tuple:
    """A padded batch of two rows of different lengths, so no padding shortcut is traced."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    samples = receptive_field + 8 * frame_step + 7
    values = torch.randn(2, samples, generator=generator) * 0.1
    lengths = torch.tensor([samples, receptive_field + 3 * frame_step + 1], dtype=torch.long)
    values[1, lengths[1] :] = 0.0
    return values, lengths


def export_onnx(
    wrapper: CTCExportWrapper, path: Path, *, opset: int, receptive_field: int, frame_step: int
) -> None:
    """Export ``wrapper`` to ``path`` with dynamic batch and sample axes.

    Raises:
        ExportError: torch.onnx failed.
    """
    import torch

    values, lengths = dummy_inputs(receptive_field, frame_step)
    dynamic_axes = {
        "input_values": {0: "batch", 1: "samples"},
        "input_lengths": {0: "batch"},
        "log_probs": {0: "batch", 1: "frames"},
        "output_lengths": {0: "batch"},
    }
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracer warnings about python ints are expected (shapes are traced through torch ops).
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                wrapper,
                (values, lengths),
                str(path),
                input_names=INPUT_NAMES,
                output_names=OUTPUT_NAMES,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                custom_opsets={"com.microsoft": 1},  # ONNX Runtime's contrib ops (see attention.py)
                dynamo=False,
            )
    except Exception as exc:  # torch.onnx raises many unrelated types; name the stage in one error
        raise ExportError(f"torch.onnx.export (opset {opset}) failed: {type(exc).__name__}: {exc}") from exc
    log.info("exported %s", path)
