"""Rewrite the conv front-end's convolutions as matrix products, so int8 MatMul kernels can run them.

The wav2vec2 conv front-end is about a third of the model's FLOPs. ONNX Runtime's dynamic quantization leaves
Conv in fp32 (its ConvInteger is slower than fp32 here), so once the transformer's matmuls are int8 the conv
front-end dominates. A 1-D convolution with kernel ``k`` and stride ``s`` (no padding, no dilation, one group)
is a matmul of ``k`` strided views of its input stacked along channels (im2col) with the reshaped weight,
which dynamic quantization turns into an int8 ``MatMulInteger``. Same numbers in fp32 (tested).
"""

from __future__ import annotations

import torch
from torch import nn


class ConvAsMatMul(nn.Module):
    """A ``Conv1d`` computed as ``im2col(x) @ W``; input and output ``[batch, channels, time]``."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        if conv.groups != 1 or conv.dilation[0] != 1 or conv.padding not in ((0,), "valid"):
            raise ValueError("only ungrouped, undilated, unpadded Conv1d can be rewritten as a matmul")
        self.kernel = int(conv.kernel_size[0])
        self.stride = int(conv.stride[0])
        out_channels, in_channels, _ = conv.weight.shape
        # [out, in, k] -> [k * in, out], rows ordered (tap, channel) to match the stacked views below
        weight = conv.weight.detach().permute(2, 1, 0).reshape(self.kernel * in_channels, out_channels)
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        frames = torch.div(hidden.shape[-1] - self.kernel, self.stride, rounding_mode="floor") + 1
        steps = hidden.transpose(1, 2)  # [B, T, C]
        span = self.stride * (frames - 1) + 1
        views = [steps[:, tap:tap + span:self.stride] for tap in range(self.kernel)]
        out = torch.matmul(torch.cat(views, dim=-1), self.weight)  # [B, frames, out]
        if self.bias is not None:
            out = out + self.bias
        return out.transpose(1, 2)


def rewrite_conv_front_end(model: nn.Module, *, first_layer: int = 1) -> int:
    """Replace the feature encoder's convolutions from ``first_layer`` on; return how many were replaced.

    Layer 0 (one input channel, kernel 10) is left alone by default: its matmul would have an inner
    dimension of 10, too thin for int8 kernels to pay, and it holds a tiny share of the FLOPs.
    """
    base = getattr(model, model.base_model_prefix)
    replaced = 0
    for layer in list(base.feature_extractor.conv_layers)[first_layer:]:
        if isinstance(layer.conv, nn.Conv1d):
            layer.conv = ConvAsMatMul(layer.conv)
            replaced += 1
    return replaced
