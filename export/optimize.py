"""ONNX Runtime's transformer optimizer on the fp32 graph, with the rewrite that lets Attention fuse.

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
    return [f"optimizer: {rewrites} score scalings rewritten Mul->Div; fused ops {fused}"]


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
