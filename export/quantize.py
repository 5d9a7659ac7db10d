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


# Ops that only move elements, and which of their inputs carry the data (the rest are indices or shapes).
_MOVES = {"Gather": (0,), "Slice": (0,), "Reshape": (0,), "Concat": None}


def quantize_before_gather(path: Path) -> int:
    """Quantize a conv layer's input before its columns are gathered, not after; return how many moved.

    The channels-last front-end (``conv_matmul``) gathers a layer's columns from its input (a ``Gather`` of
    frames, or slices and a concat); dynamic quantization then quantizes those columns. Quantizing the input
    itself and gathering from the uint8 copy computes the same product (the scale now covers the whole input, a
    superset of the columns) while the gather moves a quarter of the bytes. Rewritten where a
    ``DynamicQuantizeLinear`` reads, through ops that only move elements (``Gather``, ``Slice``, ``Concat``,
    ``Reshape``), each output used only there, one tensor, and at least one of them gathers (not a lone reshape).
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for output in graph.output:
        uses[output.name] = uses.get(output.name, 0) + 1
    position = {id(node): index for index, node in enumerate(graph.node)}
    removed: set[int] = set()
    inserted: dict[int, object] = {}  # id of the node to insert before -> the new node
    retyped: set[str] = set()
    sources: set[str] = set()
    moved = 0
    for quantize in [node for node in graph.node if node.op_type == "DynamicQuantizeLinear"]:
        tree: list = []
        leaves: set[str] = set()
        _movement_tree(quantize.input[0], producer, uses, tree, leaves)
        if len(leaves) != 1 or not any(node.op_type != "Reshape" for node in tree) or leaves & sources:
            continue  # (a source already quantized for another tree keeps that one; this tree stays as it is)
        source = leaves.pop()
        sources.add(source)
        whole = f"{source}_quantized_whole"
        early = onnx.helper.make_node("DynamicQuantizeLinear", [source], [whole, *quantize.output[1:]],
                                      name=f"{quantize.name}_before_gather")
        readers = []
        for node in tree:
            for slot in _data_slots(node):
                if node.input[slot] == source:
                    node.input[slot] = whole
                    readers.append(node)
            retyped.add(node.output[0])
        top = producer[quantize.input[0]]
        top.output[0] = quantize.output[0]
        removed.add(id(quantize))
        inserted[id(min(readers, key=lambda node: position[id(node)]))] = early
        moved += 1
    if moved:
        nodes = []
        for node in graph.node:
            if id(node) in inserted:
                nodes.append(inserted[id(node)])
            if id(node) not in removed:
                nodes.append(node)
        del graph.node[:]
        graph.node.extend(nodes)
        kept = [info for info in graph.value_info if info.name not in retyped]  # their type is now uint8
        del graph.value_info[:]
        graph.value_info.extend(kept)
        onnx.save(model, str(path))
    return moved


def _data_slots(node) -> range | tuple[int, ...]:  # noqa: ANN001
    slots = _MOVES[node.op_type]
    return range(len(node.input)) if slots is None else slots


def _movement_tree(name: str, producer: dict, uses: dict[str, int], tree: list, leaves: set[str]) -> None:
    """Walk back from ``name`` through element-moving nodes used only once; collect them and the tensors
    they read (``leaves``)."""
    node = producer.get(name)
    if node is None or node.op_type not in _MOVES or uses.get(name) != 1 or len(node.output) != 1:
        leaves.add(name)
        return
    tree.append(node)
    for slot in _data_slots(node):
        _movement_tree(node.input[slot], producer, uses, tree, leaves)


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
                notes = [note + (f"; {len(kept)} MatMul(s) of the first conv layer kept fp32" if kept else "")]
                moved = quantize_before_gather(int8_path)
                if moved:
                    notes.append(f"int8: {moved} column gather(s) read a quantized (uint8) input, quantized once")
                return notes
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
