"""ONNX Runtime's transformer optimizer on the fp32 graph, with the rewrites that let Attention fuse and keep
every node of the padding-mask arithmetic on a GPU (:func:`drop_mask_tile`, :func:`sum_instead_of_cumsum`).

Hugging Face's eager attention scales the scores after ``MatMul(q, k^T)`` with a ``Mul`` by
``head_dim ** -0.5``. The optimizer's BERT attention matcher accepts ``MatMul -> Mul -> Add -> Softmax``
only for some mask shapes; written as ``Div`` by ``head_dim ** 0.5`` it matches the classic BERT path.
The rewrite is exact up to float rounding of the reciprocal.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from w2v2_onnx.errors import ExportError

log = logging.getLogger(__name__)

#: Fused op types worth reporting.
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "LayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "BiasAdd",
    "SkipSimplifiedLayerNormalization",
)


def _scalar_constant(model: Any, name: str) -> float | None:
    """The value of ``name`` when it is a one-element initializer or Constant output, else None."""
    import onnx
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            array = numpy_helper.to_array(init)
            return float(array.reshape(-1)[0]) if array.size == 1 else None
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    array = numpy_helper.to_array(onnx.helper.get_attribute_value(attr))
                    return float(array.reshape(-1)[0]) if array.size == 1 else None
    return None


def rewrite_score_scaling(model: Any) -> int:
    """Turn ``MatMul -> Mul(c) -> Add -> Softmax`` into ``MatMul -> Div(1/c) -> Add -> Softmax`` in place.

    Returns:
        How many attention score scalings were rewritten.
    """
    import numpy as np
    from onnx import numpy_helper

    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        data, const = node.input
        scale = _scalar_constant(model, const)
        if scale is None:
            data, const = const, data
            scale = _scalar_constant(model, const)
        parent = producers.get(data)
        children = consumers.get(node.output[0], [])
        if scale is None or scale == 0.0 or parent is None or parent.op_type != "MatMul":
            continue
        if len(children) != 1 or children[0].op_type not in ("Add", "Softmax"):
            continue
        if children[0].op_type == "Add":
            grandchildren = consumers.get(children[0].output[0], [])
            if len(grandchildren) != 1 or grandchildren[0].op_type != "Softmax":
                continue
        divisor = numpy_helper.from_array(
            np.array(1.0 / scale, dtype=np.float32), name=f"{node.name}_divisor"
        )
        model.graph.initializer.append(divisor)
        node.op_type = "Div"
        del node.input[:]
        node.input.extend([data, divisor.name])
        rewritten += 1
    return rewritten


def _graph_maps(model: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Producer of each tensor, and the consumers of each tensor."""
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producers, consumers


def _int_constant(model: Any, name: str, producers: dict[str, Any]) -> list[int] | None:
    """The values of an integer initializer or Constant output ``name``, else None."""
    import onnx
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).reshape(-1)]
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        for attr in node.attribute:
            if attr.name == "value":
                return [int(v) for v in numpy_helper.to_array(onnx.helper.get_attribute_value(attr)).reshape(-1)]
    return None


def drop_mask_tile(model: Any) -> int:
    """Remove the ``Tile`` of the padding mask before ``Not -> Where``, in place (``Where`` broadcasts).

    Hugging Face zeroes padded frames with ``hidden[~mask.unsqueeze(-1).repeat(1, 1, H)] = 0``: a ``Tile`` of a
    ``[B, T, 1]`` bool mask to ``[B, T, H]``, then ``Not`` and ``Where``. ONNX Runtime has no CUDA ``Tile`` for
    bool, so on a GPU that Tile ran on the CPU every call (the mask copied out, ``B x T x H`` bools copied back,
    the stream synchronized), and its CPU node kept CUDA graphs from capturing the run. Only Tiles whose
    repeats are ``[1, 1, n]`` and whose output reaches nothing but ``Where`` conditions (through ``Not`` and
    casts to bool) qualify.

    Returns:
        How many Tiles were removed.
    """
    from onnx import TensorProto, helper

    producers, consumers = _graph_maps(model)
    outputs = {o.name for o in model.graph.output}

    def only_conditions(name: str) -> bool:
        """Every path from ``name`` is Not / Cast-to-bool nodes ending in Where conditions."""
        users = consumers.get(name, [])
        if not users or name in outputs:
            return False
        for user in users:
            if user.op_type == "Where":
                if user.input[0] != name or name in user.input[1:]:
                    return False
            elif user.op_type == "Not" or (user.op_type == "Cast" and any(
                    a.name == "to" and helper.get_attribute_value(a) == TensorProto.BOOL for a in user.attribute)):
                if not only_conditions(user.output[0]):
                    return False
            else:
                return False
        return True

    removed = 0
    for tile in [n for n in model.graph.node if n.op_type == "Tile"]:
        users = consumers.get(tile.output[0], [])
        if not only_conditions(tile.output[0]) or any(u.op_type == "Where" for u in users):
            continue
        repeats = producers.get(tile.input[1])
        leading: list[list[int] | None]
        if repeats is not None and repeats.op_type == "Concat":
            leading = [_int_constant(model, name, producers) for name in repeats.input[:-1]]
            ok = len(repeats.input) == 3 and all(v == [1] for v in leading)
        else:
            values = _int_constant(model, tile.input[1], producers)
            ok = values is not None and len(values) == 3 and values[:2] == [1, 1]
        if not ok:
            continue
        for user in users:
            user.input[0] = tile.input[0]
        model.graph.node.remove(tile)
        removed += 1
    return removed


def sum_instead_of_cumsum(model: Any) -> int:
    """Replace ``CumSum(x, axis) -> Gather(-1, axis)`` (the last running total) by ``ReduceSum``, in place.

    Hugging Face computes the valid samples per row as ``attention_mask.cumsum(-1)[:, -1]``: a running sum over
    every input sample (160,000 per 10 s), of which only the last value is used; ONNX Runtime's CUDA CumSum on
    int64 took 0.3 ms of the 4 ms a 10 s input needed on an H100. The sum is the same integer.

    Returns:
        How many CumSums were replaced.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    producers, consumers = _graph_maps(model)
    replaced = 0
    for cumsum in [n for n in model.graph.node if n.op_type == "CumSum"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in cumsum.attribute}
        axis = _int_constant(model, cumsum.input[1], producers)
        users = consumers.get(cumsum.output[0], [])
        if attrs.get("exclusive", 0) or attrs.get("reverse", 0) or axis is None or len(axis) != 1 or not users:
            continue
        # the last axis of a [batch, samples] tensor, written 1 or -1 by either node
        gathers_last = axis[0] in (1, -1) and all(
            u.op_type == "Gather" and u.input[0] == cumsum.output[0]
            and _int_constant(model, u.input[1], producers) == [-1]
            and {a.name: helper.get_attribute_value(a) for a in u.attribute}.get("axis", 0) in (1, -1)
            for u in users)
        if not gathers_last:
            continue
        axes = numpy_helper.from_array(np.array(axis, dtype=np.int64), name=f"{cumsum.output[0]}_sum_axes")
        model.graph.initializer.append(axes)
        for user in users:
            user.op_type = "ReduceSum"
            del user.attribute[:]
            user.attribute.append(helper.make_attribute("keepdims", 0))
            user.input[0] = cumsum.input[0]
            user.input[1] = axes.name
        model.graph.node.remove(cumsum)
        replaced += 1
    return replaced


def optimize_fp32(
    onnx_path: Path, hf_config: Any, *, fuse_attention: bool = True, probe_lengths: tuple[int, ...] = ()
) -> list[str]:
    """Optimize ``onnx_path`` in place with ``onnxruntime.transformers.optimizer`` (model type ``bert``).

    The optimizer's pattern fusions were written for BERT; on graphs they misread (relative position
    attention) they can bake a shape in. With ``probe_lengths``, the optimized graph must match the
    original on a padded batch of those lengths, else the original is kept and a note says so.

    Args:
        onnx_path: the fp32 graph; replaced by the optimized one.
        hf_config: the Hugging Face config (``num_attention_heads``, ``hidden_size``).
        fuse_attention: apply :func:`rewrite_score_scaling` first so Attention can fuse.
        probe_lengths: sample counts of the safety probe (two or more different lengths).

    Returns:
        Notes for the report (rewrites made, fused op counts, or why the optimizer was skipped).

    Raises:
        ExportError: the optimizer failed.
    """
    import onnx
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    model = onnx.load(str(onnx_path))
    rewrites = rewrite_score_scaling(model) if fuse_attention else 0
    tiles, cumsums = drop_mask_tile(model), sum_instead_of_cumsum(model)
    options = FusionOptions("bert")
    options.enable_attention = fuse_attention
    try:
        optimized = optimizer.optimize_model(
            model,
            model_type="bert",
            num_heads=int(hf_config.num_attention_heads),
            hidden_size=int(hf_config.hidden_size),
            optimization_options=options,
            opt_level=0,
            use_gpu=False,
        )
    except Exception as exc:  # the optimizer raises assorted types on unexpected graphs
        raise ExportError(f"ONNX Runtime transformer optimizer failed: {type(exc).__name__}: {exc}") from exc
    problem = _probe(onnx_path, optimized.model, probe_lengths) if probe_lengths else None
    if problem:
        log.warning("keeping the unoptimized graph: %s", problem)
        return [f"optimizer skipped: the optimized graph {problem}"]
    optimized.save_model_to_file(str(onnx_path))
    counts = Counter(node.op_type for node in optimized.model.graph.node)
    fused = {op: counts[op] for op in FUSED_OPS if counts[op]}
    return [f"optimizer: {rewrites} score scalings rewritten Mul->Div, {tiles} mask Tile(s) dropped, "
            f"{cumsums} CumSum(s) replaced by ReduceSum; fused ops {fused}"]


def _probe(original: Path, optimized: Any, lengths: tuple[int, ...]) -> str | None:
    """Why ``optimized`` is not interchangeable with ``original`` on a padded batch, or None."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    batch = np.zeros((len(lengths), max(lengths)), dtype=np.float32)
    for i, n in enumerate(lengths):
        batch[i, :n] = rng.standard_normal(n) * 0.1
    feeds = {"input_values": batch, "input_lengths": np.array(lengths, dtype=np.int64)}
    providers = ["CPUExecutionProvider"]
    want = ort.InferenceSession(str(original), providers=providers).run(None, feeds)[0]
    try:
        got = ort.InferenceSession(optimized.SerializeToString(), providers=providers).run(None, feeds)[0]
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
        return f"fails to run: {str(exc).splitlines()[0][:200]}"
    if got.shape != want.shape:
        return f"gives shape {got.shape} instead of {want.shape}"
    diff = float(np.nanmax(np.abs(got - want))) if np.isfinite(got).all() else float("inf")
    return f"differs by {diff:.3g} from the original" if diff > 1e-3 else None
