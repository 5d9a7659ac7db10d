"""The torch module that is exported: raw padded audio and lengths in, CTC log-probabilities out.

It implements the graph contract of ``docs/model-directory.md``: masked per-utterance normalization,
a padding-aware GroupNorm in the first conv layer of group-norm models, the attention mask passed to the
Hugging Face model, log-softmax, and output lengths from the conv length formula. Each row of a padded
batch gives the same result as that input alone.
"""

from __future__ import annotations

import torch
from torch import nn

#: The variance epsilon of ``Wav2Vec2FeatureExtractor`` normalization.
NORMALIZE_EPS = 1e-7


def conv_output_lengths(lengths: torch.Tensor, kernels: list[int], strides: list[int]) -> torch.Tensor:
    """Frames the conv front-end produces for ``lengths`` samples: ``n = (n - k) // s + 1`` per layer."""
    for kernel, stride in zip(kernels, strides, strict=True):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths


def frame_mask(lengths: torch.Tensor, frames: torch.Tensor | int, dtype: torch.dtype) -> torch.Tensor:
    """``[B, 1, frames]`` of ``dtype``: 1 for the first ``lengths[b]`` frames of row ``b``, else 0."""
    positions = torch.arange(frames, device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, :].to(dtype)


def normalize_masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance per row over the valid samples only; padded samples become 0.

    Args:
        values: ``[B, S]`` float audio.
        mask: ``[B, S]`` float, 1 for valid samples, 0 for padding.
    """
    count = mask.sum(dim=1, keepdim=True)
    mean = (values * mask).sum(dim=1, keepdim=True) / count
    centered = (values - mean) * mask
    var = (centered * centered).sum(dim=1, keepdim=True) / count
    return centered / torch.sqrt(var + NORMALIZE_EPS)


class MaskedGroupNorm(nn.Module):
    """A per-channel GroupNorm (groups == channels) whose statistics use only the valid frames.

    The wrapper sets :attr:`frame_lengths` (``[B]`` int64, valid frames of the first conv layer) before
    each call; Hugging Face's conv layer calls this module with the conv output only, so the lengths
    cannot travel as an argument. Without lengths it is the plain GroupNorm it replaced.
    """

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        if norm.num_groups != norm.num_channels:
            raise ValueError(
                f"MaskedGroupNorm needs groups == channels, got {norm.num_groups}/{norm.num_channels}"
            )
        self.eps = float(norm.eps)
        self.weight = norm.weight
        self.bias = norm.bias
        self.frame_lengths: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.frame_lengths is None:
            # Called outside the wrapper (the model used on its own): every frame is valid.
            return nn.functional.group_norm(hidden, hidden.shape[1], self.weight, self.bias, self.eps)
        mask = frame_mask(self.frame_lengths, hidden.shape[2], hidden.dtype)
        count = mask.sum(dim=2, keepdim=True)
        mean = (hidden * mask).sum(dim=2, keepdim=True) / count
        centered = (hidden - mean) * mask
        var = (centered * centered).sum(dim=2, keepdim=True) / count
        out = centered / torch.sqrt(var + self.eps)
        if self.weight is not None:
            out = out * self.weight[None, :, None] + self.bias[None, :, None]
        return out


class FrameMasker:
    """Forward pre-hook that zeroes padded frames of a ``[B, C, T]`` conv input.

    Hugging Face zeroes padded frames once, before the positional convolution. Convolutions over time
    deeper in the network (Data2VecAudio's stack of positional convs, the Conformer's depthwise conv)
    would otherwise read padded frames that are no longer zero, so a padded batch would differ from the
    same inputs alone. The wrapper sets :attr:`frame_lengths` (``[B]`` transformer frames) per call.
    """

    def __init__(self) -> None:
        self.frame_lengths: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if self.frame_lengths is None:
            return None
        hidden = args[0]
        return (hidden * frame_mask(self.frame_lengths, hidden.shape[-1], hidden.dtype), *args[1:])


def time_convolutions(model: nn.Module) -> list[nn.Module]:
    """Conv modules inside the transformer whose input must have zero padded frames."""
    encoder = _base_model(model).encoder
    found: list[nn.Module] = []
    pos_layers = getattr(getattr(encoder, "pos_conv_embed", None), "layers", None)
    if pos_layers is not None:  # Data2VecAudio: a stack of positional conv layers
        found.extend(pos_layers)
    for layer in getattr(encoder, "layers", []):
        conv_module = getattr(layer, "conv_module", None)
        if conv_module is not None:  # Conformer: depthwise conv over time
            found.append(conv_module.depthwise_conv)
    return found


def _base_model(model: nn.Module) -> nn.Module:
    """The ``*Model`` inside a ``*ForCTC`` (``model.wav2vec2``, ``model.hubert``, ...)."""
    return getattr(model, model.base_model_prefix)


class CTCExportWrapper(nn.Module):
    """Exported module: ``(input_values [B, S], input_lengths [B]) -> (log_probs [B, F, V], output_lengths)``.

    Args:
        model: a Hugging Face ``*ForCTC`` model in eval mode with eager attention.
        do_normalize: apply the feature extractor's per-utterance normalization inside the graph.
    """

    def __init__(self, model: nn.Module, *, do_normalize: bool) -> None:
        super().__init__()
        self.model = model
        self.do_normalize = do_normalize
        config = model.config
        self.kernels = [int(k) for k in config.conv_kernel]
        self.strides = [int(s) for s in config.conv_stride]
        self.masked_norm: MaskedGroupNorm | None = None
        first = _base_model(model).feature_extractor.conv_layers[0]
        if isinstance(getattr(first, "layer_norm", None), nn.GroupNorm):
            self.masked_norm = MaskedGroupNorm(first.layer_norm)
            first.layer_norm = self.masked_norm
        self.frame_masker = FrameMasker()
        self._hooks = [m.register_forward_pre_hook(self.frame_masker) for m in time_convolutions(model)]

    def forward(
        self, input_values: torch.Tensor, input_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(input_values.shape[1], device=input_values.device)
        sample_mask = positions[None, :] < input_lengths[:, None]
        values = input_values
        if self.do_normalize:
            values = normalize_masked(values, sample_mask.to(values.dtype))
        else:
            values = values * sample_mask.to(values.dtype)
        if self.masked_norm is not None:
            self.masked_norm.frame_lengths = conv_output_lengths(
                input_lengths, self.kernels[:1], self.strides[:1]
            )
        self.frame_masker.frame_lengths = conv_output_lengths(input_lengths, self.kernels, self.strides)
        try:
            logits = self.model(values, attention_mask=sample_mask.to(torch.long)).logits
        finally:
            self.frame_masker.frame_lengths = None
            if self.masked_norm is not None:
                self.masked_norm.frame_lengths = None
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        output_lengths = conv_output_lengths(input_lengths, self.kernels, self.strides)
        return log_probs, output_lengths.to(torch.long)
