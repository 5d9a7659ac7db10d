"""Attention for the int8 graph: ONNX Runtime's fused ``MultiHeadAttention`` instead of Hugging Face's ops.

Hugging Face's eager attention exports as ``MatMul`` (scores), ``Mul`` (scale), ``Add`` (the
``[batch, 1, time, time]`` padding mask), ``Softmax`` and ``MatMul``, with transposes around them. On the CPU the
mask Add and the softmax are each a full pass over the ``[batch, heads, time, time]`` scores, the largest tensor of
every layer. ONNX Runtime's ``com.microsoft.MultiHeadAttention`` kernel writes the mask into the score buffer and
lets the score GEMM accumulate onto it, then runs the softmax in place, and takes a 2-D key-padding mask instead of
a ``time x time`` one.

The int8 graph is quantized from the graph as exported (ONNX Runtime's optimizer is not run on it), so the
export itself emits the operator: :func:`fused_attention` swaps the model's attention function during the
export, and a ``torch.autograd.Function`` computes the same result in PyTorch for tracing while its
``symbolic`` writes the ONNX node. The query, key and value projections stay ordinary MatMuls, so dynamic
quantization still makes them int8. fp32 and fp16 keep Hugging Face's pattern, which the optimizer fuses into
``Attention`` for GPUs.

ONNX Runtime runs ``MultiHeadAttention`` on the CPU in a flash-attention kernel (blocks of keys in cache, an
online softmax, no ``time x time`` score buffer) only when the node has no key-padding mask; with one it falls
back to the score-buffer path. A single input, or a batch of equal lengths, keeps every key, so
:func:`add_unmasked_attention` gives each node a branch without the mask, taken when the mask keeps every key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

FUSED_ATTENTION = "w2v2_onnx_multihead"

# Architectures whose attention calls transformers' attention registry with a padding-only eager mask.
FUSABLE_MODEL_TYPES = frozenset({"wav2vec2", "hubert", "data2vec-audio", "sew", "unispeech", "unispeech-sat"})


class _MultiHeadAttention(torch.autograd.Function):
    """``[batch, time, hidden]`` query, key and value in, the same shape out; exports as one ONNX Runtime node."""

    @staticmethod
    def forward(ctx, query, key, value, keep, num_heads: int, scale: float, mask_value: float, hidden: int):  # noqa: ANN001
        heads = [t.unflatten(2, (num_heads, hidden // num_heads)).transpose(1, 2) for t in (query, key, value)]
        scores = torch.matmul(heads[0], heads[1].transpose(2, 3)) * scale
        if keep is not None:
            scores = scores.masked_fill(keep[:, None, None, :] == 0, mask_value)
        weights = torch.softmax(scores, dim=-1)
        return torch.matmul(weights, heads[2]).transpose(1, 2).flatten(2)

    @staticmethod
    def symbolic(g, query, key, value, keep, num_heads: int, scale: float, mask_value: float, hidden: int):  # noqa: ANN001
        bias = g.op("Constant", value_t=torch.zeros(3 * hidden))
        inputs = [query, key, value, bias] + ([keep] if keep is not None else [])
        return g.op("com.microsoft::MultiHeadAttention", *inputs, num_heads_i=num_heads, scale_f=scale,
                    mask_filter_value_f=mask_value)


def multihead_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function (``[batch, heads, time, head_dim]`` in) on :class:`_MultiHeadAttention`.

    ``attention_mask`` is Hugging Face's additive eager mask, ``[batch, 1, query, key]``, whose rows are equal
    for a padding mask; row 0 gives the keys to keep. Returns ``[batch, time, heads, head_dim]`` and no
    weights.
    """
    heads, head_dim = int(module.num_heads), int(module.head_dim)  # python ints: shapes are traced tensors
    if scaling is None:
        scaling = head_dim**-0.5
    keep = None
    mask_value = float(torch.finfo(torch.float32).min)
    if attention_mask is not None:
        keep = (attention_mask[:, 0, 0, :] == 0).to(torch.int32)
    flat = [t.transpose(1, 2).flatten(2) for t in (query, key, value)]
    output = _MultiHeadAttention.apply(*flat, keep, heads, float(scaling), mask_value, heads * head_dim)
    return output.unflatten(2, (heads, head_dim)), None


def _register() -> bool:
    """Register the attention with transformers; False where this version has no attention registry."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:
        return False
    AttentionInterface.register(FUSED_ATTENTION, multihead_attention)
    AttentionMaskInterface.register(FUSED_ATTENTION, eager_mask)
    return True


@contextlib.contextmanager
def fused_attention(model: nn.Module) -> Iterator[bool]:
    """Run ``model`` (a Hugging Face ``*ForCTC`` in eager attention) with :func:`multihead_attention` inside.

    Yields whether the swap is active: False, with the model untouched, where the model is not in eager
    attention, is of an architecture whose attention is not a plain padding-masked one (WavLM's relative
    positions, conformers), or where transformers has no attention registry.
    """
    config = model.config
    previous = getattr(config, "_attn_implementation", None)
    if model.training or previous != "eager" or config.model_type not in FUSABLE_MODEL_TYPES or not _register():
        yield False
        return
    config._attn_implementation = FUSED_ATTENTION
    try:
        yield True
    finally:
        config._attn_implementation = previous


def add_unmasked_attention(path: Path) -> int:
    """Rewrite the graph at ``path`` so that each masked ``MultiHeadAttention`` runs without its mask when the
    mask keeps every key; return how many nodes were rewritten.

    Each such node becomes ``If(ReduceMin(mask) != 0)`` with the node minus its mask in the ``then`` branch
    (ONNX Runtime's CPU flash-attention kernel) and the node as it was in the ``else`` branch (padded
    batches). Both compute the same attention, so results agree to float rounding. Nodes with other optional
    inputs (an additive bias, past keys) are left as they are.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    nodes, rewritten = [], 0
    for node in graph.node:
        inputs = list(node.input)
        masked = (node.op_type == "MultiHeadAttention" and node.domain == "com.microsoft" and len(inputs) >= 5
                  and inputs[4] != "" and not any(inputs[5:]) and len(node.output) == 1)
        if not masked:
            nodes.append(node)
            continue
        name = node.name or f"MultiHeadAttention_{rewritten}"
        mask, output = inputs[4], node.output[0]
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        smallest, all_kept = f"{name}/mask_min", f"{name}/all_kept"
        nodes.append(helper.make_node("ReduceMin", [mask], [smallest], keepdims=0, name=f"{name}/MaskMin"))
        nodes.append(helper.make_node("Cast", [smallest], [all_kept], to=TensorProto.BOOL, name=f"{name}/AllKept"))
        branches = {}
        for branch, branch_inputs in (("unmasked", inputs[:4]), ("masked", inputs[:5])):
            result = f"{name}/{branch}_output"
            inner = helper.make_node("MultiHeadAttention", branch_inputs, [result], domain="com.microsoft",
                                     name=f"{name}/{branch}", **attributes)
            branches[branch] = helper.make_graph(
                [inner], f"{name}_{branch}".replace("/", "_"), [],
                [helper.make_tensor_value_info(result, TensorProto.FLOAT, None)])
        nodes.append(helper.make_node("If", [all_kept], [output], name=f"{name}/IfAllKept",
                                      then_branch=branches["unmasked"], else_branch=branches["masked"]))
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.save(model, str(path))
    return rewritten
