"""Load a Hugging Face CTC checkpoint (local directory or hub id) with what the model directory needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from w2v2_onnx.errors import ExportError, UnsupportedModelError

log = logging.getLogger(__name__)

#: Architectures the export stage supports, by ``config.json`` ``architectures[0]``.
SUPPORTED_ARCHITECTURES: tuple[str, ...] = (
    "Wav2Vec2ForCTC",
    "HubertForCTC",
    "WavLMForCTC",
    "Data2VecAudioForCTC",
    "Wav2Vec2ConformerForCTC",
)


@dataclass
class LoadedCheckpoint:
    """A loaded ``*ForCTC`` model with its vocabulary and preprocessing facts.

    Attributes:
        model: the torch model, eval mode, eager attention.
        source: the checkpoint path or hub id as given.
        architecture: e.g. ``Wav2Vec2ForCTC``.
        tokens: CTC tokens by logit index (length == the model's vocab size).
        blank_id: the CTC blank (tokenizer pad token).
        word_delimiter: the word delimiter token or None.
        unk_token: the unknown token or None.
        special_tokens: tokens never written into a transcript.
        do_normalize: whether the feature extractor normalizes each utterance.
        sample_rate: the feature extractor's sampling rate.
    """

    model: Any
    source: str
    architecture: str
    tokens: list[str]
    blank_id: int
    word_delimiter: str | None
    unk_token: str | None
    special_tokens: list[str]
    do_normalize: bool
    sample_rate: int


def _load_processor_parts(checkpoint: str) -> tuple[Any, Any]:
    """Return (feature_extractor, tokenizer), via AutoProcessor or the two Auto classes."""
    import transformers

    try:
        processor = transformers.AutoProcessor.from_pretrained(checkpoint)
        feature_extractor = getattr(processor, "feature_extractor", None)
        tokenizer = getattr(processor, "tokenizer", None)
        if feature_extractor is not None and tokenizer is not None:
            return feature_extractor, tokenizer
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("AutoProcessor failed for %s (%s); trying the parts", checkpoint, exc)
    try:
        feature_extractor = transformers.AutoFeatureExtractor.from_pretrained(checkpoint)
        tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(
            f"cannot load the feature extractor and CTC tokenizer of {checkpoint!r}: {exc} "
            f"(a CTC checkpoint needs preprocessor_config.json and vocab.json beside config.json)"
        ) from exc
    return feature_extractor, tokenizer


def _vocabulary(tokenizer: Any, vocab_size: int) -> list[str]:
    """Tokens by id, matched to the model's output size."""
    by_id = sorted(((int(i), str(t)) for t, i in tokenizer.get_vocab().items()), key=lambda p: p[0])
    ids = [i for i, _ in by_id]
    if len(set(ids)) != len(ids) or ids != list(range(len(ids))):
        raise ExportError(f"tokenizer ids are not 0..n-1 without gaps ({len(ids)} tokens); cannot map logits")
    tokens = [t for _, t in by_id]
    if len(tokens) > vocab_size:
        extra = tokens[vocab_size:]
        added = set(getattr(tokenizer, "all_special_tokens", [])) | set(tokenizer.get_added_vocab())
        if not set(extra) <= added:
            raise ExportError(
                f"tokenizer has {len(tokens)} tokens but the model outputs {vocab_size} logits, and the "
                f"extra tokens {extra[:5]} are not added/special tokens"
            )
        log.warning("dropping tokenizer tokens %s: the model has only %d logits", extra, vocab_size)
        tokens = tokens[:vocab_size]
    while len(tokens) < vocab_size:
        # Logits without a token (vocab_size rounded up during training): never emitted as text.
        tokens.append(f"<unused_{len(tokens)}>")
    return tokens


def load_checkpoint(checkpoint: str | Path) -> LoadedCheckpoint:
    """Load a ``*ForCTC`` checkpoint for export.

    Args:
        checkpoint: a local checkpoint directory or a Hugging Face hub id.

    Returns:
        The loaded model with its vocabulary and preprocessing settings.

    Raises:
        UnsupportedModelError: the architecture is not in :data:`SUPPORTED_ARCHITECTURES`.
        ExportError: the checkpoint cannot be loaded.
    """
    import transformers

    source = str(checkpoint)
    local = Path(source).expanduser()
    if not local.exists() and (local.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1):
        raise ExportError(
            f"checkpoint directory {source!r} does not exist (give a local directory or a hub id)"
        )
    if local.exists() and not (local / "config.json").is_file():
        raise ExportError(f"{source!r} is not a Hugging Face checkpoint: it has no config.json")
    try:
        config = transformers.AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        tried = "" if local.exists() else " (no local directory has this name, so it was tried as a hub id)"
        raise ExportError(f"cannot load the config of checkpoint {source!r}{tried}: {exc}") from exc
    architectures = list(getattr(config, "architectures", None) or [])
    architecture = architectures[0] if architectures else f"{type(config).__name__} (no architectures field)"
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"checkpoint {source!r} has architecture {architecture!r}; the export stage supports "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    if getattr(config, "add_adapter", False):
        raise UnsupportedModelError(
            f"checkpoint {source!r} uses a conv adapter (add_adapter=True), which changes the frame rate; "
            f"not supported"
        )
    from safetensors import SafetensorError

    try:
        model = transformers.AutoModelForCTC.from_pretrained(source, attn_implementation="eager")
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # corrupt, truncated or mismatched weights
        raise ExportError(f"cannot load the model weights of {source!r}: {exc}") from exc
    model.eval()
    feature_extractor, tokenizer = _load_processor_parts(source)
    tokens = _vocabulary(tokenizer, int(config.vocab_size))
    pad = tokenizer.pad_token
    if pad is None or pad not in tokens:
        raise ExportError(f"tokenizer of {source!r} has no pad token in the vocabulary; it is the CTC blank")
    delimiter = getattr(tokenizer, "word_delimiter_token", None)
    unk = tokenizer.unk_token if tokenizer.unk_token in tokens else None
    special = [
        t for t in (pad, unk, tokenizer.bos_token, tokenizer.eos_token) if t is not None and t in tokens
    ]
    special += [t for t in tokens if t.startswith("<unused_") and t not in special]
    return LoadedCheckpoint(
        model=model,
        source=source,
        architecture=architecture,
        tokens=tokens,
        blank_id=tokens.index(pad),
        word_delimiter=delimiter if delimiter in tokens else None,
        unk_token=unk,
        special_tokens=special,
        do_normalize=bool(getattr(feature_extractor, "do_normalize", True)),
        sample_rate=int(getattr(feature_extractor, "sampling_rate", 16000)),
    )
