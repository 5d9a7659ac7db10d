"""WER, CER and digit accuracy for greedy CTC transcripts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from w2v2_onnx_finetune.vocab import decode_ids


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer), plus the share of exactly right transcripts.

    Empty references are skipped by jiwer's rules; callers never pass them (manifests drop them).
    """
    import jiwer

    refs = list(references)
    hyps = [h if h else "" for h in hypotheses]
    return {
        "wer": float(jiwer.wer(refs, hyps)),
        "cer": float(jiwer.cer(refs, hyps)),
        "exact": float(np.mean([r == h for r, h in zip(refs, hyps, strict=True)])) if refs else 0.0,
    }


def greedy_texts(logits: np.ndarray) -> list[str]:
    """Greedy CTC transcripts of a ``[batch, frames, vocab]`` array (padding frames included).

    Padded frames of shorter rows decode to blanks or to repeats in practice and carry little text;
    exact per-row evaluation uses :func:`w2v2_onnx_finetune.evaluate.transcribe`.
    """
    return [decode_ids(row.tolist()) for row in np.asarray(logits).argmax(axis=-1)]


def label_texts(label_ids: np.ndarray) -> list[str]:
    """Transcripts of padded label rows (-100 marks padding)."""
    from w2v2_onnx_finetune.vocab import VOCAB_TOKENS, WORD_DELIMITER

    texts = []
    for row in np.asarray(label_ids):
        tokens = [VOCAB_TOKENS[i] for i in row.tolist() if i >= 0]
        texts.append("".join(" " if t == WORD_DELIMITER else t for t in tokens))
    return texts


def make_compute_metrics() -> Callable[[Any], dict[str, float]]:
    """Return a ``compute_metrics`` function for the Hugging Face Trainer (WER, CER, exact)."""

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else \
            prediction.predictions
        predictions = np.asarray(logits)
        if predictions.ndim == 3:  # full logits (a plain Trainer); CTCTrainer already gives ids
            predictions = predictions.argmax(axis=-1)
        hypotheses = [decode_ids(row.tolist()) for row in predictions]
        return error_rates(label_texts(prediction.label_ids), hypotheses)

    return compute_metrics
