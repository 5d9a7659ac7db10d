"""Building the model: a named size from scratch, a pretrained checkpoint, or one of our checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from w2v2_onnx.errors import InvalidOptionError, ModelNotFoundError
from w2v2_onnx_finetune.vocab import PAD_TOKEN, VOCAB_TOKENS

logger = logging.getLogger(__name__)

_STANDARD_KERNEL = (10, 3, 3, 3, 3, 2, 2)
_STANDARD_STRIDE = (5, 2, 2, 2, 2, 2, 2)

#: Model config values a training run may override (SpecAugment and dropouts), named as in transformers'
#: ``Wav2Vec2Config`` and its CTC fine-tuning example; ``*_length`` values are integers, the others
#: probabilities from 0 to 1.
REGULARISATION: dict[str, str] = {
    "mask_time_prob": "SpecAugment: share of time steps starting a masked span (0-1)",
    "mask_time_length": "SpecAugment: frames per time mask (20 ms each)",
    "mask_feature_prob": "SpecAugment: share of feature channels starting a masked span (0-1)",
    "mask_feature_length": "SpecAugment: channels per feature mask",
    "hidden_dropout": "dropout in the transformer's hidden layers and embeddings (0-1)",
    "attention_dropout": "dropout of attention probabilities (0-1)",
    "activation_dropout": "dropout after the feed-forward activation (0-1)",
    "feat_proj_dropout": "dropout after the feature projection (0-1)",
    "final_dropout": "dropout before the CTC head (0-1)",
    "layerdrop": "probability of skipping a whole transformer layer in a training step (0-1)",
}

#: Named sizes for training from scratch. All keep the standard front-end geometry (frame step 320,
#: receptive field 400), so the export stage and runtime treat them like any wav2vec2 model.
SIZES: dict[str, dict[str, Any]] = {
    # For tests: trains in seconds.
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    # The CPU-trainable model: light front-end (cheap early layers), 6 pre-LN transformer layers.
    "small": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024,
                  conv_dim=(64, 128, 128, 256, 256, 256, 256), num_conv_pos_embeddings=64,
                  num_conv_pos_embedding_groups=16),
    # Same transformer as small, behind a two-layer front-end whose first layer is a 25 ms / 10 ms
    # filterbank (initialised as Gabor filters on a mel scale, then trained): cheap, and it learns much
    # faster from scratch than the standard seven-layer stack. Frame step 320, receptive field 720.
    "small-fb": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024,
                     conv_dim=(256, 256), conv_kernel=(400, 3), conv_stride=(160, 2),
                     num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16),
    # wav2vec2-base geometry.
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 conv_dim=(512,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16),
}


def scratch_config(size: str, **overrides: Any) -> Any:
    """Return a ``Wav2Vec2Config`` of a named size with our vocabulary.

    ``tiny`` and ``small`` use layer-norm front-ends and pre-LN transformer layers
    (``do_stable_layer_norm``), which train from scratch more stably; ``base`` matches wav2vec2-base.

    Raises:
        InvalidOptionError: unknown size.
    """
    from transformers import Wav2Vec2Config

    if size not in SIZES:
        raise InvalidOptionError(f"model size {size!r} is not one of {sorted(SIZES)}")
    layer_norm = size != "base"
    settings: dict[str, Any] = dict(
        vocab_size=len(VOCAB_TOKENS), pad_token_id=VOCAB_TOKENS.index(PAD_TOKEN),
        conv_kernel=_STANDARD_KERNEL, conv_stride=_STANDARD_STRIDE,
        feat_extract_norm="layer" if layer_norm else "group", do_stable_layer_norm=layer_norm,
        conv_bias=layer_norm, ctc_loss_reduction="mean", ctc_zero_infinity=True,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.0,
        final_dropout=0.0, layerdrop=0.0, mask_time_prob=0.05, mask_time_length=5,
        mask_feature_prob=0.0,
    )
    settings.update(SIZES[size])
    settings.update(overrides)
    return Wav2Vec2Config(**settings)


def _check_vocab(config: Any, origin: str) -> None:
    if getattr(config, "vocab_size", None) != len(VOCAB_TOKENS):
        logger.warning("%s has vocab_size %s; the CTC head is replaced for our %d-token vocabulary",
                       origin, getattr(config, "vocab_size", None), len(VOCAB_TOKENS))


def build_model(start: str, *, freeze_feature_encoder: bool = True, **overrides: Any) -> Any:
    """Create the model to train.

    Args:
        start: ``scratch:tiny|small|base``, a directory (a pretrained model or one of our
            checkpoints) or a Hugging Face hub id.
        freeze_feature_encoder: freeze the convolutional front-end when starting from pretrained
            weights (the seed recipe); ignored from scratch.
        overrides: config values to change (the names of :data:`REGULARISATION`).

    Returns:
        A ``Wav2Vec2ForCTC``-style model (``AutoModelForCTC``) with our vocabulary size.

    Raises:
        InvalidOptionError: unknown scratch size.
        ModelNotFoundError: a local directory that holds no ``config.json``.
    """
    import torch  # noqa: F401  (transformers needs it; imported here to fail early and clearly)
    from transformers import AutoConfig, AutoModelForCTC, Wav2Vec2ForCTC

    if start.startswith("scratch:"):
        config = scratch_config(start.split(":", 1)[1], **overrides)
        logger.info("new %s model from scratch", start)
        model = Wav2Vec2ForCTC(config)
        if config.conv_kernel[0] >= 64:
            init_filterbank(model.wav2vec2.feature_extractor.conv_layers[0].conv, sample_rate=16000)
            logger.info("first conv layer initialised as a mel-spaced Gabor filterbank")
        return model
    path = Path(start)
    if (path / "w2v2_onnx.json").is_file() and not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} is an exported model directory, not a checkpoint: recover one from it first with "
            f"python -m w2v2_onnx_finetune.from_onnx {path} OUT_DIR --config scratch:SIZE (docs/finetune.md)")
    if path.exists() and not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path}: no config.json (give a checkpoint directory, a hub id or "
                                 f"scratch:{'|'.join(SIZES)})")
    config = AutoConfig.from_pretrained(start)
    _check_vocab(config, start)
    settings = dict(vocab_size=len(VOCAB_TOKENS), pad_token_id=VOCAB_TOKENS.index(PAD_TOKEN),
                    ctc_loss_reduction="mean", ctc_zero_infinity=True, **overrides)
    model = AutoModelForCTC.from_pretrained(start, ignore_mismatched_sizes=True, **settings)
    if freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
        logger.info("feature encoder frozen")
    return model


def init_filterbank(conv: Any, *, sample_rate: int, low_hz: float = 40.0, high_hz: float = 7800.0) -> None:
    """Initialise a wide first ``Conv1d`` (1 -> 4 x bands channels) as a mel-spaced Gabor filterbank.

    Each band gets four channels, cosine and sine at both signs, so that the rectifying activation after
    the layer keeps every phase and the next layer can sum them into a band energy. Window lengths shrink
    with the band width (long for low bands, short for high ones), all centred in the kernel.
    """
    import math

    import torch

    channels, _, kernel = conv.weight.shape
    bands = channels // 4
    mel = lambda hz: 2595.0 * math.log10(1.0 + hz / 700.0)  # noqa: E731
    inverse = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    points = [inverse(mel(low_hz) + (mel(high_hz) - mel(low_hz)) * i / (bands + 1)) for i in range(bands + 2)]
    t = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    weight = torch.zeros(channels, 1, kernel, dtype=torch.float64)
    for band in range(bands):
        centre, width = points[band + 1], points[band + 2] - points[band]
        length = min(kernel, max(32, round(2.0 * sample_rate / width)))
        window = torch.where(t.abs() < length / 2, torch.cos(math.pi * t / length) ** 2, torch.zeros_like(t))
        phase = 2 * math.pi * centre * t / sample_rate
        for k, wave in enumerate((torch.cos(phase), -torch.cos(phase), torch.sin(phase), -torch.sin(phase))):
            filt = window * wave
            weight[4 * band + k, 0] = filt / filt.norm().clamp_min(1e-8)
    with torch.no_grad():
        conv.weight.copy_(weight.to(conv.weight.dtype))
        if conv.bias is not None:
            conv.bias.zero_()


def output_frames(config: Any, samples: int) -> int:
    """Frames the model outputs for ``samples`` input samples (front-end arithmetic)."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        samples = (samples - kernel) // stride + 1
    return max(samples, 0)
