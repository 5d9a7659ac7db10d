"""Rewrite the conv front-end as channels-last matrix products, so int8 MatMul kernels can run it.

The wav2vec2 conv front-end is about a third of the model's FLOPs. ONNX Runtime's dynamic quantization leaves
Conv in fp32 (its ConvInteger is slower than fp32 here), so once the transformer's matmuls are int8 the conv
front-end dominates. :class:`ChannelsLastFeatureEncoder` computes the same front-end with time-major
``[batch, time, channels]`` tensors and no im2col copies:

* A convolution with kernel ``k`` and stride ``s`` is one matmul of its columns, ``[batch, frames, k * channels]``:
  a free reshape of its input to ``[batch, time / s, s * channels]`` when ``k <= s``, else (``k <= 2 s``) one
  ``Gather`` of input frames ``t s .. t s + k - 1`` for each output frame ``t``. The int8 export quantizes the
  input once and gathers from the uint8 copy (``quantize.quantize_before_gather``), a quarter of the bytes.
* Where layer 0's output is large (wav2vec2-base: 131 MB per 20 s window), the first ``BLOCKED_LAYERS`` layers
  run in ``blocks`` spans of time, one after the other, each computing just the frames its output needs, so
  every span's activations are read back from cache (:meth:`ChannelsLastFeatureEncoder._leading_layers_in_blocks`).
* The first layer (one input channel) stacks its two row views (a tiny copy) and stays fp32: raw audio needs
  the precision and an inner dimension of ``k`` is too thin for int8 kernels to pay.
* The audio is zero-padded inside the graph to the next length at which every reshape is exact; the padded
  frames are masked out of the first layer's GroupNorm statistics and cut off at the end, so every valid frame
  is the convolution of the real audio, as before (tested against the Hugging Face module).
* The first layer's per-channel GroupNorm folds into its matmul: the channel statistics come from the small
  moments of the layer's input columns, and the per-utterance scale and shift become the matmul's weight, so
  the largest activation of the model is written once and never re-read by the norm.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from w2v2_onnx_export.wrapper import MaskedGroupNorm, conv_output_lengths, frame_mask

# Spans in which the leading conv layers run, and how many layers (see _leading_layers_in_blocks).
DEFAULT_BLOCKS = 16
BLOCKED_LAYERS = 3
MIN_VALUES_PER_SAMPLE = 8  # layer-0 output values per input sample below which nothing runs in spans


class ChannelsLastFeatureEncoder(nn.Module):
    """Drop-in for a Hugging Face feature encoder: ``[B, S]`` audio in, ``[B, C, T]`` features out.

    Args:
        encoder: the model's ``feature_extractor`` (``conv_layers`` of conv, optional norm, activation).
            The first layer's norm may be the export wrapper's :class:`MaskedGroupNorm`, whose frame lengths
            it then uses.
        blocks: spans over which the first ``BLOCKED_LAYERS`` layers run one after the other, so their large
            outputs are read back while cached; 1 computes each layer whole.
        min_values_per_sample: run in spans only if layer 0 writes at least this many values per input sample.

    Raises:
        ValueError: a conv layer is grouped, dilated, padded, or has a kernel longer than twice its stride
            (beyond the first layer), or a GroupNorm is not per channel or follows a layer other than the
            first (one input channel): the only places Hugging Face models put one.
    """

    def __init__(
        self, encoder: nn.Module, blocks: int = DEFAULT_BLOCKS, min_values_per_sample: int = MIN_VALUES_PER_SAMPLE
    ) -> None:
        super().__init__()
        self.blocks = blocks
        self.min_values_per_sample = min_values_per_sample
        self.kernels: list[int] = []
        self.strides: list[int] = []
        self.rows: list[int] = []
        self.in_channels: list[int] = []
        self.out_channels: list[int] = []
        self.norm_kinds: list[str] = []
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()  # empty where the conv has no bias
        self.norms = nn.ModuleList()
        self.activations = nn.ModuleList()
        for index, layer in enumerate(encoder.conv_layers):
            conv = layer.conv
            if not isinstance(conv, nn.Conv1d) or conv.groups != 1 or conv.dilation[0] != 1:
                raise ValueError(f"conv layer {index}: only ungrouped, undilated Conv1d can become a matmul")
            if conv.padding not in ((0,), "valid"):
                raise ValueError(f"conv layer {index}: padded convolutions are not supported")
            kernel, stride = int(conv.kernel_size[0]), int(conv.stride[0])
            out_channels, in_channels, _ = conv.weight.shape
            rows = math.ceil(kernel / stride)
            if in_channels > 1 and rows > 2:
                raise ValueError(
                    f"conv layer {index}: kernel {kernel} > 2 x stride {stride} is not supported beyond the "
                    f"first layer")
            self.kernels.append(kernel)
            self.strides.append(stride)
            self.rows.append(rows)
            self.in_channels.append(int(in_channels))
            self.out_channels.append(int(out_channels))
            self.weights.append(nn.Parameter(self._matmul_weight(conv.weight.detach(), stride, rows),
                                             requires_grad=False))
            bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(0)
            self.biases.append(nn.Parameter(bias, requires_grad=False))
            norm = getattr(layer, "layer_norm", None)
            if isinstance(norm, (MaskedGroupNorm, nn.GroupNorm)):
                if isinstance(norm, nn.GroupNorm) and norm.num_groups != norm.num_channels:
                    raise ValueError(f"conv layer {index}: only per-channel GroupNorm is supported")
                if in_channels != 1:
                    raise ValueError(f"conv layer {index}: a GroupNorm is supported on the first layer only")
                self.norm_kinds.append("group")
            elif isinstance(norm, nn.LayerNorm):
                self.norm_kinds.append("layer")
            else:
                self.norm_kinds.append("none")
                norm = nn.Identity()
            self.norms.append(norm)
            self.activations.append(layer.activation)
        # Every reshape is exact when the audio has scale * m + offset samples (m output frames):
        # layer by layer backwards, an input of stride * (frames + rows - 1) gives `frames` outputs.
        self.scale, self.offset = 1, 0
        for stride, rows in zip(reversed(self.strides), reversed(self.rows), strict=True):
            self.scale, self.offset = stride * self.scale, stride * (self.offset + rows - 1)

    def _matmul_weight(self, weight: torch.Tensor, stride: int, rows: int) -> torch.Tensor:
        """``[out, in, k]`` -> the matmul weight; rows of the input hold ``stride`` frames ``(tap, channel)``."""
        out_channels, in_channels, kernel = weight.shape
        padded = torch.zeros(out_channels, in_channels, rows * stride, dtype=weight.dtype)
        padded[:, :, :kernel] = weight
        # [out, in, rows * stride] -> [rows * stride * in, out]: entry ((r * s + j) * in + c) = W[o, c, r*s + j]
        stacked = padded.permute(2, 1, 0).reshape(rows * stride * in_channels, out_channels)
        # The taps that exist: with k <= 2 s the next row contributes only its first (k - s) frames.
        return stacked[:kernel * in_channels].contiguous()

    @property
    def first_weight_shape(self) -> tuple[int, int]:
        """Shape of the first layer's matmul weight; the int8 export keeps its matmuls fp32."""
        return self.kernels[0] * self.in_channels[0], self.out_channels[0]

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        batch, samples = input_values.shape[0], input_values.shape[1]
        samples_t = samples if isinstance(samples, torch.Tensor) else torch.tensor(samples)
        valid_frames = conv_output_lengths(samples_t, self.kernels, self.strides)
        # m = max(1, ceil((S - offset) / scale)) frames from scale * m + offset samples (>= S)
        computed = torch.clamp(
            torch.div(samples_t - self.offset + self.scale - 1, self.scale, rounding_mode="floor"), min=1)
        padded_samples = computed * self.scale + self.offset
        zeros = torch.zeros(batch, self.scale + self.offset, dtype=input_values.dtype, device=input_values.device)
        hidden = torch.cat([input_values, zeros], dim=1)[:, :padded_samples]
        hidden = hidden.unsqueeze(-1)  # [B, S', 1]
        first = self._blockable_layers()
        if first:
            hidden = self._leading_layers_in_blocks(hidden, samples_t, batch, first)
        for index in range(first, len(self.kernels)):
            columns = self._columns(hidden, index)
            hidden = self.activations[index](self._layer(index, columns, self._fold(index, columns, samples_t, batch)))
        return hidden[:, :valid_frames].transpose(1, 2)

    def _fold(self, index: int, columns: torch.Tensor, samples: torch.Tensor, batch: int) -> torch.Tensor | None:
        """The GroupNorm-folded weight of the first layer of group-norm models (statistics over all of
        ``columns``), or None for a layer without GroupNorm."""
        norm = self.norms[index]
        if self.norm_kinds[index] != "group":
            return None
        lengths = getattr(norm, "frame_lengths", None)
        if lengths is None:  # without the wrapper's lengths the whole (unpadded) input is valid
            lengths = conv_output_lengths(samples, self.kernels[:1], self.strides[:1]).expand(batch)
        return _group_norm_fold(columns, self.weights[index], norm, lengths)

    def _layer(self, index: int, columns: torch.Tensor, fold: torch.Tensor | None) -> torch.Tensor:
        """One layer's convolution (and bias) and norm, before its activation, from its ``columns``."""
        if fold is not None:  # the norm is folded into the matmul, with a column of ones for its shift
            return torch.matmul(torch.cat([columns, torch.ones_like(columns[:, :, :1])], dim=-1), fold)
        hidden = torch.matmul(columns, self.weights[index])
        if self.biases[index].numel():
            hidden = hidden + self.biases[index]
        return self.norms[index](hidden) if self.norm_kinds[index] == "layer" else hidden

    def _blockable_layers(self) -> int:
        """How many leading layers run in spans: up to ``BLOCKED_LAYERS``, while each layer after the first
        reads whole frames of a multi-channel input (kernel at most two rows)."""
        # Only where layer 0's output is large against the audio (wav2vec2-base: 102 values per input sample,
        # 131 MB per 20 s window); small front-ends (the bundled model's: 1.6 per sample) fit the caches whole.
        if self.blocks <= 1 or self.out_channels[0] < self.min_values_per_sample * self.strides[0]:
            return 0
        count = 1
        while (count < min(BLOCKED_LAYERS, len(self.kernels)) and self.in_channels[count] > 1
               and self.rows[count] <= 2):
            count += 1
        return count if count > 1 else 0

    def _leading_layers_in_blocks(self, hidden: torch.Tensor, samples: torch.Tensor, batch: int,
                                  layers: int) -> torch.Tensor:
        """Layers ``0 .. layers - 1`` computed over ``self.blocks`` spans of the last one's output frames, one
        span after the other; returns that layer's activations.

        Layer 0's output is the largest activation of the model (512 channels x 3,200 frames per second of
        audio for wav2vec2-base), and the next layers' are half, a quarter...; computed whole, each leaves the
        caches before the next layer reads it. Each span here computes only the frames its output frames read
        (a frame or two of overlap with the next span, recomputed), so they are read back while cached. Every
        frame is the same function as computed whole (GroupNorm statistics still come from the whole input);
        the int8 export quantizes each span's activations on their own range.
        """
        columns = self._columns(hidden, 0)
        fold = self._fold(0, columns, samples, batch)
        length = columns.shape[1]  # a tensor when traced, an int when run eagerly
        counts = [length if isinstance(length, torch.Tensor) else torch.tensor(length)]
        for index in range(1, layers):  # output frames of each layer
            counts.append(counts[-1] // self.strides[index] - (self.rows[index] - 1))
        size = (counts[-1] + self.blocks - 1) // self.blocks
        outputs = []
        for block in range(self.blocks):
            # this span's output frames [start, stop) of the last layer, and what each layer below must give
            spans = [(torch.clamp(size * block, max=counts[-1]), torch.clamp(size * (block + 1), max=counts[-1]))]
            for index in range(layers - 1, 0, -1):
                start, stop = spans[0]
                spill = max(self.kernels[index] - self.strides[index], 0)
                spans.insert(0, (self.strides[index] * start, self.strides[index] * stop + spill))
            start, stop = spans[0]
            frames = self.activations[0](self._layer(0, columns[:, start:stop], fold))
            for index in range(1, layers):
                start, stop = spans[index]
                gathered = self._gathered_columns(frames, index, stop - start, batch)
                frames = self.activations[index](self._layer(index, gathered, None))
            outputs.append(frames)
        return torch.cat(outputs, dim=1)

    def _columns(self, hidden: torch.Tensor, index: int) -> torch.Tensor:
        """The layer's input columns, ``[B, frames, kernel * in]``: its row view (a free reshape) where the kernel
        fits one row; otherwise one Gather of the ``kernel`` input frames of each output frame, or, for the
        one-channel first layer, the row views side by side (the last one cut to the taps the kernel uses)."""
        stride, rows, in_channels = self.strides[index], self.rows[index], self.in_channels[index]
        reshaped = hidden.reshape(hidden.shape[0], -1, stride * in_channels)
        if rows == 1:
            return reshaped
        if in_channels > 1:
            return self._gathered_columns(hidden, index, reshaped.shape[1] - (rows - 1), hidden.shape[0])
        spill = (self.kernels[index] - (rows - 1) * stride) * in_channels  # taps used from the last row
        # Row r of output frame t is input row t + r; negative ends keep the slice lengths symbolic-friendly.
        views = [reshaped[:, row:row - (rows - 1)] for row in range(rows - 1)]
        return torch.cat([*views, reshaped[:, rows - 1:, :spill]], dim=-1)


    def _gathered_columns(self, hidden: torch.Tensor, index: int, count: torch.Tensor | int,
                          batch: torch.Tensor | int) -> torch.Tensor:
        """Columns of ``count`` output frames by one Gather of whole input frames: output ``t`` reads frames
        ``t * s .. t * s + k - 1`` of ``hidden`` (``[B, frames, C]``), giving ``[B, count, k * C]``."""
        stride, kernel = self.strides[index], self.kernels[index]
        taps = torch.arange(count, device=hidden.device)[:, None] * stride + torch.arange(kernel)[None, :]
        gathered = torch.index_select(hidden, 1, taps.reshape(-1))  # [B, count * kernel, C]
        return gathered.reshape(batch, -1, kernel * self.in_channels[index])


def _group_norm_fold(
    columns: torch.Tensor, weight: torch.Tensor, norm: nn.Module, lengths: torch.Tensor
) -> torch.Tensor:
    """The weight ``[B, k + 1, C]`` that makes ``[columns, 1] @ it`` equal ``GroupNorm(columns @ weight [+ bias])``
    per channel over the valid frames, so the norm costs no pass over the output.

    The channel statistics come from the columns' own small moments: ``mean = mu @ W`` and
    ``E[(x W)^2] = diag(W^T G W)``, with ``mu`` and ``G`` the masked mean and Gram matrix of the ``[T, k]``
    columns. The norm's per-utterance scale and shift then fold into the weight (and a column of ones), so the
    big ``[T, C]`` activation is written once, by the matmul, instead of being read and rewritten by the norm.
    A conv bias cancels out of the centred values, so it is not needed.
    """
    mask = frame_mask(lengths, columns.shape[1], columns.dtype)  # [B, 1, T]
    # Each valid frame weighs 1 / sqrt(count) on both sides of the products, so no sum over the frames exceeds
    # the moments themselves: a raw sum of squares over 30 s (96,000 frames) overflows fp16's 65,504.
    root = torch.rsqrt(mask.sum(dim=2, keepdim=True))  # [B, 1, 1]
    weighted = columns * (mask * root).transpose(1, 2)  # [B, T, k]; zero on padding
    mu = torch.matmul(mask * root, weighted)  # [B, 1, k]
    gram = torch.matmul(weighted.transpose(1, 2), weighted)  # [B, k, k]
    mean = torch.matmul(mu, weight)  # [B, 1, C]
    second = (torch.matmul(gram, weight) * weight).sum(dim=1, keepdim=True)
    var = torch.clamp(second - mean * mean, min=0.0)
    scale = torch.rsqrt(var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -mean * scale if norm.bias is None else norm.bias - mean * scale
    return torch.cat([weight * scale, shift], dim=1)  # [B, k + 1, C]


def rewrite_conv_front_end(model: nn.Module, **options: int) -> ChannelsLastFeatureEncoder:
    """Replace the model's feature encoder by a :class:`ChannelsLastFeatureEncoder` (``options`` are its
    keyword arguments) and return it.

    Call it after the export wrapper is built, so the first layer's masked GroupNorm is carried over.
    """
    base = getattr(model, model.base_model_prefix)
    encoder = ChannelsLastFeatureEncoder(base.feature_extractor, **options)
    base.feature_extractor = encoder
    return encoder
