"""int8 quantization with ONNX Runtime: dynamic (MatMul only, the default) or static QDQ (Conv + MatMul).

Both use per-channel signed int8 weights. Static QDQ also quantizes the conv front-end, the bottleneck
once the matmuls are int8; its activation ranges come from calibration audio run through the graph
itself (so the in-graph normalization is the same preprocessing). Measured here on a base-size model,
static QDQ agreed with fp32 on only ~58% of frames and was not faster, so dynamic is the default (see
docs/export.md). Dynamic ``ConvInteger`` is not offered: peers measured it slower than fp32.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from w2v2_onnx.errors import ExportError, InvalidOptionError

log = logging.getLogger(__name__)

INT8_METHODS: tuple[str, ...] = ("dynamic", "static")


class AudioCalibrationReader:
    """``CalibrationDataReader`` feeding one clip per batch in the graph's input format."""

    def __init__(self, clips: Sequence[np.ndarray]) -> None:
        self._clips = list(clips)
        self._iter: Iterator[dict[str, np.ndarray]] | None = None

    def _feeds(self) -> Iterator[dict[str, np.ndarray]]:
        for clip in self._clips:
            yield {
                "input_values": np.ascontiguousarray(clip[None], dtype=np.float32),
                "input_lengths": np.array([len(clip)], dtype=np.int64),
            }

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next feed, or None when done (the protocol of onnxruntime.quantization)."""
        if self._iter is None:
            self._iter = self._feeds()
        return next(self._iter, None)

    def rewind(self) -> None:
        """Start again from the first clip."""
        self._iter = None


def _preprocess(src: Path, dst: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (symbolic shape inference, graph cleanup)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception as exc:  # pre-processing is an optimisation; quantize the raw graph if it fails
        log.warning("quantization pre-processing failed (%s); quantizing the graph as exported", exc)
        return src


def matmuls_with_weight(path: Path, shape: Sequence[int]) -> list[str]:
    """Names of the MatMul nodes whose second input is a constant of exactly ``shape``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    return [
        node.name for node in model.graph.node
        if node.op_type == "MatMul" and shapes.get(node.input[1]) == list(shape)
    ]


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    calibration: Sequence[np.ndarray],
    *,
    method: str = "dynamic",
    max_calibration_seconds: float = 10.0,
    fp32_weight_shape: tuple[int, int] | None = None,
) -> list[str]:
    """Write an int8 model of ``fp32_path`` to ``int8_path``.

    Args:
        fp32_path: the fp32 graph.
        int8_path: where to write the quantized graph.
        calibration: mono float32 clips (static method only).
        method: ``dynamic`` (MatMul only) or ``static`` (QDQ, Conv + MatMul, per-channel, MinMax).
        max_calibration_seconds: clips are cut to this many seconds (at 16 kHz) to bound calibration memory.
        fp32_weight_shape: MatMuls with a constant weight of this shape stay fp32 (dynamic method: the first
            conv layer as a matmul reads raw audio and is too thin for int8 kernels to pay).

    Returns:
        Notes for the report.

    Raises:
        InvalidOptionError: unknown method, or static without calibration audio.
        ExportError: ONNX Runtime's quantizer failed.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if method not in INT8_METHODS:
        raise InvalidOptionError(f"int8 method {method!r}: choose one of {INT8_METHODS}")
    with tempfile.TemporaryDirectory(prefix="w2v2_onnx_quant_") as tmp:
        source = _preprocess(fp32_path, Path(tmp) / "pre.onnx")
        try:
            if method == "dynamic":
                kept = matmuls_with_weight(source, fp32_weight_shape) if fp32_weight_shape else []
                quantize_dynamic(
                    str(source),
                    str(int8_path),
                    op_types_to_quantize=["MatMul"],
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=kept,
                )
                note = "int8: dynamic, MatMul only, per-channel int8 weights"
                return [note + (f"; {len(kept)} MatMul(s) of the first conv layer kept fp32" if kept else "")]
            if not calibration:
                raise InvalidOptionError("static int8 quantization needs calibration audio")
            limit = int(max_calibration_seconds * 16000)
            clips = [c[:limit] for c in calibration]
            quantize_static(
                str(source),
                str(int8_path),
                AudioCalibrationReader(clips),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv", "MatMul"],
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except InvalidOptionError:
            raise
        except Exception as exc:  # the quantizer raises assorted types on unexpected graphs
            raise ExportError(f"int8 {method} quantization failed: {type(exc).__name__}: {exc}") from exc
    seconds = sum(len(c) for c in clips) / 16000
    return [f"int8: static QDQ, Conv + MatMul, per-channel, MinMax on {len(clips)} clips ({seconds:.1f} s)"]
