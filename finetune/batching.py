"""The torch dataset of in-memory examples and the padding-aware CTC collator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2v2_onnx_finetune.augment import SilencePadding, SpeedPerturbation
from w2v2_onnx_finetune.data import Example
from w2v2_onnx_finetune.vocab import encode_transcript


def normalize_audio(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, exactly as ``Wav2Vec2FeatureExtractor(do_normalize=True)``."""
    audio = np.asarray(audio, dtype=np.float32)
    return ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)


class SpeechDataset:
    """Examples as model inputs: normalised ``input_values`` and CTC ``labels``.

    Args:
        examples: decoded utterances.
        normalize: apply per-utterance normalisation (the feature extractor's ``do_normalize``).
        speed: speed perturbation applied each time an example is drawn (training data only), or None.
        padding: margins of silence or low noise added each time an example is drawn, after the speed
            perturbation (training data only), or None.
        seed: seed of the perturbations: draw ``k`` of example ``i`` uses the generator of ``(seed, i, k)``,
            so a run repeats exactly and each epoch sees other speeds and margins.
    """

    def __init__(self, examples: Sequence[Example], normalize: bool = True,
                 speed: SpeedPerturbation | None = None, seed: int = 0,
                 padding: SilencePadding | None = None) -> None:
        self.examples = list(examples)
        self.normalize = normalize
        self.labels = [encode_transcript(e.text) for e in self.examples]
        self.speed = speed
        self.padding = padding
        self.seed = seed
        self._draws = [0] * len(self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        audio = self.examples[index].audio
        if self.speed is not None or self.padding is not None:
            rng = np.random.default_rng((self.seed, index, self._draws[index]))
            self._draws[index] += 1
            if self.speed is not None:
                audio = self.speed.apply(audio, rng)
            if self.padding is not None:
                audio = self.padding.apply(audio, rng)
        values = normalize_audio(audio) if self.normalize else np.asarray(audio, dtype=np.float32)
        return {"input_values": values, "labels": self.labels[index]}

    def total_seconds(self, sample_rate: int = 16000) -> float:
        """Seconds of audio in the dataset."""
        return sum(len(e.audio) for e in self.examples) / sample_rate


@dataclass
class CTCCollator:
    """Pads a batch: audio with zeros (plus an attention mask), labels with -100 (ignored by CTC).

    Attributes:
        return_attention_mask: pass the mask to the model. Layer-norm models need it; group-norm
            models (wav2vec2-base) were trained without one and get plain zero padding.
        pad_to_multiple_of: round the padded audio length up (helps tensor cores on GPU).
    """

    return_attention_mask: bool = True
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Return a batch of ``input_values``, optional ``attention_mask`` and ``labels`` tensors."""
        import torch

        lengths = [len(f["input_values"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        values = torch.zeros(len(features), width, dtype=torch.float32)
        mask = torch.zeros(len(features), width, dtype=torch.long)
        for row, (feature, length) in enumerate(zip(features, lengths, strict=True)):
            values[row, :length] = torch.as_tensor(np.asarray(feature["input_values"], dtype=np.float32))
            mask[row, :length] = 1
        label_width = max(len(f["labels"]) for f in features)
        labels = torch.full((len(features), label_width), -100, dtype=torch.long)
        for row, feature in enumerate(features):
            labels[row, : len(feature["labels"])] = torch.as_tensor(feature["labels"], dtype=torch.long)
        batch: dict[str, Any] = {"input_values": values, "labels": labels}
        if self.return_attention_mask:
            batch["attention_mask"] = mask
        return batch
