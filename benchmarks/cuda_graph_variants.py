"""Graph rewrites measured as CUDA levers (``cuda_figures.py attention``): attention mask formats.

ONNX Runtime's CUDA ``Attention`` kernel picks its algorithm from the mask it is given
(contrib_ops/cuda/bert/attention.cc): no mask lets it use flash attention (or the memory-efficient kernel);
a ``[batch]`` key-length mask, which the transformer optimizer writes for our graphs (``MaskReduceSum``),
allows only TensorRT's fused kernels, which are not built for every GPU, and otherwise the unfused path
(score GEMM, masked softmax over a ``time x time`` buffer, GEMM); a ``[3 * batch + 2]`` mask (key lengths, then
the query and key start offsets) selects the memory-efficient (cutlass) kernel, which skips padded keys
without a score buffer. These functions write the variants; the GPU decides which is fastest.

(A fixed-shape variant, dims pinned and shapes folded offline, was measured too, at commit bb429dd; fixing the
dimensions when the session loads was faster, so it is gone.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: ``mask`` choices of :func:`attention_mask_variant`.
MASK_MODES = ("seqstart", "nomask")


def _attention_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    nodes = [n for n in graph.node if n.op_type == "Attention" and n.domain == "com.microsoft"]
    if not nodes:
        raise ValueError("the graph has no fused com.microsoft Attention node (was it optimized?)")
    return nodes


def attention_mask_variant(source: Path, target: Path, mask: str) -> int:
    """Rewrite the mask input of every fused ``Attention`` node; returns the number of nodes changed.

    ``seqstart``: ``[key_lengths (B), query starts (B + 1), key starts (B + 1)]`` as int32, the starts being
    ``0, T, 2T, ...`` of the right-padded ``[B, T]`` layout. ``nomask``: no mask (right only for batches whose
    rows are all full length; the benchmark's batches are).
    """
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {MASK_MODES}, got {mask!r}")
    model = onnx.load(str(source))
    graph = model.graph
    nodes = _attention_nodes(graph)
    masks = {n.input[3] for n in nodes if len(n.input) > 3 and n.input[3]}
    if len(masks) != 1:
        raise ValueError(f"expected one shared mask input, got {sorted(masks)}")
    (old,) = masks
    if mask == "nomask":
        for node in nodes:
            del node.input[3:]
    else:
        first = nodes[0].input[0]
        new, added = f"{old}_seqstart", []
        c = lambda name, value: numpy_helper.from_array(np.array(value, dtype=np.int64), name)  # noqa: E731
        graph.initializer.extend([c("seqstart_zero", 0), c("seqstart_one", 1)])
        added += [
            helper.make_node("Shape", [first], ["seqstart_shape"], name="seqstart_Shape"),
            helper.make_node("Gather", ["seqstart_shape", "seqstart_zero"], ["seqstart_b"], name="seqstart_B",
                             axis=0),
            helper.make_node("Gather", ["seqstart_shape", "seqstart_one"], ["seqstart_t"], name="seqstart_T",
                             axis=0),
            helper.make_node("Mul", ["seqstart_b", "seqstart_t"], ["seqstart_end"], name="seqstart_End"),
            helper.make_node("Add", ["seqstart_end", "seqstart_one"], ["seqstart_limit"], name="seqstart_Limit"),
            helper.make_node("Range", ["seqstart_zero", "seqstart_limit", "seqstart_t"], ["seqstart_starts64"],
                             name="seqstart_Range"),
            helper.make_node("Cast", ["seqstart_starts64"], ["seqstart_starts"], name="seqstart_Cast",
                             to=TensorProto.INT32),
            helper.make_node("Concat", [old, "seqstart_starts", "seqstart_starts"], [new], name="seqstart_Concat",
                             axis=0),
        ]
        # insert before the first Attention node so the graph stays topologically sorted
        position = list(graph.node).index(nodes[0])
        for offset, node in enumerate(added):
            graph.node.insert(position + offset, node)
        for node in nodes:
            node.input[3] = new
    onnx.save(model, str(target))
    return len(nodes)

