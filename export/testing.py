"""Tiny random-weight CTC checkpoints for tests and benchmarks (no hub download).

The runtime's tests import :func:`make_tiny_checkpoint` too, so its signature is part of the
export stage's public surface.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from w2v2_onnx.errors import UnsupportedModelError

#: Default character vocabulary: blank, unknown, word delimiter, A-Z and the apostrophe.
DEFAULT_VOCAB: tuple[str, ...] = ("[PAD]", "[UNK]", "|", *string.ascii_uppercase, "'")

#: family name -> (config class, ForCTC class) names in transformers.
FAMILIES: dict[str, tuple[str, str]] = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2ForCTC"),
    "hubert": ("HubertConfig", "HubertForCTC"),
    "wavlm": ("WavLMConfig", "WavLMForCTC"),
    "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioForCTC"),
    "wav2vec2-conformer": ("Wav2Vec2ConformerConfig", "Wav2Vec2ConformerForCTC"),
}

#: The 32-token vocabulary of facebook/wav2vec2-base-960h (blank ``<pad>`` first).
BASE_960H_VOCAB: tuple[str, ...] = (
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "|",
    *"ETAONIHSRDLUMWCFGYPBVK",
    "'",
    *"XJQZ",
)

#: The wav2vec2-base / large conv front-end (frame step 320, receptive field 400).
STANDARD_CONV: dict[str, tuple[int, ...]] = {
    "conv_dim": (512,) * 7,
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
}


def tiny_config_kwargs(
    *,
    family: str = "wav2vec2",
    feat_extract_norm: str = "group",
    do_stable_layer_norm: bool | None = None,
    vocab_size: int = len(DEFAULT_VOCAB),
    hidden_size: int = 32,
    num_layers: int = 2,
    **config_overrides: Any,
) -> dict[str, Any]:
    """Return keyword arguments for a tiny config of ``family`` (see :func:`make_tiny_checkpoint`)."""
    if do_stable_layer_norm is None:
        do_stable_layer_norm = feat_extract_norm == "layer"
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "intermediate_size": hidden_size * 2,
        "conv_dim": (32, 32, 32),
        "conv_kernel": (10, 3, 3),
        "conv_stride": (5, 2, 2),
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "feat_extract_norm": feat_extract_norm,
        "do_stable_layer_norm": do_stable_layer_norm,
        "pad_token_id": 0,
        "ctc_loss_reduction": "mean",
    }
    if family == "data2vec-audio":
        # Data2VecAudio always uses layer-norm conv layers and a stack of positional conv layers.
        for key in ("feat_extract_norm", "do_stable_layer_norm", "num_conv_pos_embeddings"):
            kwargs.pop(key)
        kwargs["conv_pos_kernel_size"] = 5
        kwargs["num_conv_pos_embeddings"] = 5
    if family == "wav2vec2-conformer":
        kwargs.pop("do_stable_layer_norm")
        kwargs["conv_depthwise_kernel_size"] = 7
        kwargs["position_embeddings_type"] = config_overrides.pop("position_embeddings_type", "rotary")
    if family == "wavlm":
        kwargs["num_buckets"] = 16
        kwargs["max_bucket_distance"] = 64
    kwargs.update(config_overrides)
    kwargs["num_feat_extract_layers"] = len(kwargs["conv_dim"])
    return kwargs


def make_tiny_checkpoint(
    out_dir: str | Path,
    *,
    family: str = "wav2vec2",
    feat_extract_norm: str = "group",
    do_stable_layer_norm: bool | None = None,
    vocab: Sequence[str] | None = None,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
    **config_overrides: Any,
) -> Path:
    """Save a random-weight ``*ForCTC`` model with a real processor as a Hugging Face checkpoint.

    Args:
        out_dir: directory to write (created if missing).
        family: ``wav2vec2``, ``hubert``, ``wavlm``, ``data2vec-audio`` or ``wav2vec2-conformer``.
        feat_extract_norm: ``group`` (wav2vec2-base style) or ``layer`` (large-lv60 style).
        do_stable_layer_norm: pre-layer-norm transformer; defaults to ``feat_extract_norm == "layer"``.
        vocab: CTC tokens, blank first, with ``|`` and ``[UNK]`` or ``<unk>`` (``<s>``/``</s>`` become
            bos/eos when present); defaults to :data:`DEFAULT_VOCAB`.
        seed: torch seed for the random weights.
        hidden_size: transformer width.
        num_layers: transformer layers.
        **config_overrides: any other config field, e.g. ``**STANDARD_CONV`` for the 7-layer front-end, or
            ``vocab_size`` other than ``len(vocab)`` (logits without tokens, for tests).

    Returns:
        The checkpoint directory.

    Raises:
        UnsupportedModelError: ``family`` is not one of :data:`FAMILIES`.
    """
    import torch
    import transformers

    if family not in FAMILIES:
        raise UnsupportedModelError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokens = list(vocab if vocab is not None else DEFAULT_VOCAB)
    config_name, model_name = FAMILIES[family]
    kwargs = tiny_config_kwargs(
        family=family,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=do_stable_layer_norm,
        vocab_size=int(config_overrides.pop("vocab_size", len(tokens))),
        hidden_size=hidden_size,
        num_layers=num_layers,
        **config_overrides,
    )
    config = getattr(transformers, config_name)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    model.save_pretrained(out)

    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")

    def present(*names: str) -> str | None:
        return next((n for n in names if n in tokens), None)

    tokenizer = transformers.Wav2Vec2CTCTokenizer(
        str(vocab_file),
        unk_token=present("[UNK]", "<unk>"),
        pad_token=tokens[0],
        word_delimiter_token="|",
        bos_token=present("<s>"),
        eos_token=present("</s>"),
    )
    feature_extractor = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=getattr(config, "feat_extract_norm", "layer") == "layer",
    )
    transformers.Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(
        out
    )
    return out
