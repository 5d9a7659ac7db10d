"""fp16 conversion: float16 weights and compute, float32 inputs/outputs, numerically fragile parts in fp32.

Kept in fp32: the input normalization and output lengths (sums over up to 30 s of samples overflow
fp16), the padding-aware GroupNorm of the first conv layer, every LayerNorm, Softmax, LogSoftmax and
reduction. Anchors measured an fp16 InstanceNormalization failing in cuDNN at batch 64 x 30 s, one more
reason to keep that norm in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from w2v2_onnx.errors import ExportError

#: The layer norms: ONNX Runtime's CUDA kernels for these accumulate in fp32 even on fp16 tensors.
LAYER_NORM_OPS: tuple[str, ...] = (
    "LayerNormalization",
    "SkipLayerNormalization",
    "SimplifiedLayerNormalization",
    "SkipSimplifiedLayerNormalization",
)

#: Op types left in fp32 (added to ONNX Runtime's default block list).
FP32_OPS: tuple[str, ...] = LAYER_NORM_OPS + (
    "InstanceNormalization",
    "GroupNormalization",
    "GroupNorm",
    "Softmax",
    "LogSoftmax",
    "ReduceSum",
    "ReduceMean",
    "ReduceSumSquare",
    "Pow",
    "Sqrt",
)

#: Node-name fragments of the padding-aware GroupNorm (its Div/Mul/Sub must stay fp32 too).
FP32_SCOPES: tuple[str, ...] = ("conv_layers.0/layer_norm/",)


def fp32_node_names(model: object) -> list[str]:
    """Names of nodes kept in fp32: the wrapper's own nodes (normalization, lengths, log-softmax), which
    the TorchScript exporter names without a ``/model/`` scope, and the nodes of :data:`FP32_SCOPES`."""
    names = []
    for node in model.graph.node:  # type: ignore[attr-defined]
        if not node.name:
            continue
        top_level = node.name.startswith("/") and not node.name.startswith("/model/")
        if top_level or any(scope in node.name for scope in FP32_SCOPES):
            names.append(node.name)
    return names


def remove_fp16_round_trips(model: object, fp32_producers: set[str]) -> int:
    """Bypass ``Cast(to fp16) -> Cast(to fp32)`` pairs the converter puts between two fp32 nodes.

    ``convert_float_to_float16`` routes the edge between two blocked nodes through float16, so a sum of
    squares over 30 s of audio overflows to inf on its way to the next fp32 node. This rewires each such
    consumer to the original fp32 tensor and deletes casts left without consumers.

    Args:
        model: the converted ModelProto, edited in place.
        fp32_producers: names of nodes whose outputs are float32 (the blocked nodes).

    Returns:
        How many round trips were bypassed.
    """
    from onnx import TensorProto

    graph = model.graph  # type: ignore[attr-defined]

    def cast_to(node: object) -> int | None:
        if node.op_type != "Cast":  # type: ignore[attr-defined]
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)  # type: ignore[attr-defined]

    producers = {out: node for node in graph.node for out in node.output}
    replace: dict[str, str] = {}
    for node in graph.node:
        if cast_to(node) != TensorProto.FLOAT:
            continue
        inner = producers.get(node.input[0])
        if inner is None or cast_to(inner) != TensorProto.FLOAT16:
            continue
        source = producers.get(inner.input[0])
        if source is not None and source.name in fp32_producers:
            replace[node.output[0]] = inner.input[0]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in replace:
                node.input[i] = replace[name]
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Cast" and not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    return len(replace)


def convert_fp16(fp32_path: Path, fp16_path: Path, *, fp32_ops: Sequence[str] = FP32_OPS) -> None:
    """Write an fp16 copy of ``fp32_path`` to ``fp16_path`` (inputs and outputs stay float32).

    Args:
        fp32_path: the fp32 graph (optimized or not).
        fp16_path: where to write the fp16 graph.
        fp32_ops: op types kept in fp32 besides ONNX Runtime's default block list; the wrapper's own nodes
            and :data:`FP32_SCOPES` stay fp32 whatever this says.

    Raises:
        ExportError: the conversion failed.
    """
    import onnx
    from onnxruntime.transformers import float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(fp32_path))
    op_block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(fp32_ops)
    node_block = fp32_node_names(model)
    blocked = set(node_block) | {n.name for n in model.graph.node if n.op_type in op_block}
    wrapped = OnnxModel(model)
    try:
        # Through OnnxModel: symbolic shape inference types the contrib ops of an optimized graph
        # (Gelu, Attention, SkipLayerNormalization), which plain ONNX shape inference leaves untyped.
        wrapped.convert_float_to_float16(
            use_symbolic_shape_infer=True,
            keep_io_types=True,
            op_block_list=op_block,
            node_block_list=node_block,
        )
    except Exception as exc:  # the converter raises assorted types on unexpected graphs
        raise ExportError(f"fp16 conversion failed: {type(exc).__name__}: {exc}") from exc
    remove_fp16_round_trips(wrapped.model, blocked)
    remove_duplicate_nodes(wrapped.model)
    onnx.save(wrapped.model, str(fp16_path))


def remove_duplicate_nodes(model: object) -> int:
    """Delete exact copies of an earlier node, and rename nodes that only share a name; return how many
    nodes were deleted or renamed.

    ONNX Runtime's fp16 converter up to 1.31 puts one Cast before *each* fp32 consumer of an fp16 tensor,
    named, with its output, after the tensor alone: two blocked consumers of one tensor give two identical
    nodes writing one tensor, and ONNX Runtime refuses the model ("two nodes with same node name").
    1.32 no longer does this.

    Raises:
        ExportError: two different nodes write the same tensor (not a converter duplicate).
    """
    graph = model.graph  # type: ignore[attr-defined]
    writers: dict[str, bytes] = {}
    names: set[str] = set()
    taken = {node.name for node in graph.node}
    keep = []
    changed = 0
    for node in graph.node:
        serialized = node.SerializeToString()
        outputs = [out for out in node.output if out]  # "" marks an optional output left out (LayerNorm's mean)
        if outputs and all(writers.get(out) == serialized for out in outputs):
            changed += 1  # an exact copy: dropped (by position; protobuf's remove() drops the first equal one)
            continue
        keep.append(node)
        clash = [out for out in outputs if out in writers]
        if clash:
            raise ExportError(f"fp16 conversion wrote tensor {clash[0]!r} twice with different nodes")
        for out in outputs:
            writers[out] = serialized
        if node.name and node.name in names:
            suffix = 1
            while f"{node.name}_{suffix}" in taken:
                suffix += 1
            node.name = f"{node.name}_{suffix}"
            taken.add(node.name)
            changed += 1
        names.add(node.name)
    if len(keep) < len(graph.node):
        kept = [type(node)() for node in keep]
        for copy, node in zip(kept, keep, strict=True):
            copy.CopyFrom(node)
        del graph.node[:]
        graph.node.extend(kept)
    return changed
