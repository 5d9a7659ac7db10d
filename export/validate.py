"""Validation of exported graphs: fp32 against PyTorch, fp16 and int8 against fp32.

fp32: max absolute log-probability difference and greedy-transcript agreement with PyTorch at the
shortest valid input, 1 s, 7.3 s and 30 s, and for a padded batch (each row vs the input alone).
fp16 / int8: greedy-transcript agreement and character error rate against the fp32 graph on
calibration audio. A threshold exceeded raises :class:`~w2v2_onnx.errors.ValidationError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from w2v2_onnx.errors import ValidationError
from w2v2_onnx.greedy import greedy_decode
from w2v2_onnx.vocabulary import Vocabulary

#: Lengths checked besides the shortest valid input, in seconds.
DEFAULT_SECONDS: tuple[float, ...] = (1.0, 7.3, 30.0)


@dataclass(frozen=True)
class Thresholds:
    """Limits a precision must stay within.

    Attributes:
        fp32_max_abs_diff: max |log-prob difference| between ONNX fp32 and PyTorch.
        fp32_max_cer: character error rate of ONNX fp32 greedy transcripts vs PyTorch's (not 0: random
            test models have near-tied logits, where a 1e-6 difference can flip a frame's argmax).
        fp16_max_cer: CER of fp16 transcripts vs fp32.
        int8_max_cer: CER of int8 transcripts vs fp32.
    """

    fp32_max_abs_diff: float = 1e-3
    fp32_max_cer: float = 0.01
    fp16_max_cer: float = 0.02
    int8_max_cer: float = 0.10


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (row-vectorised in numpy: long transcripts stay fast)."""
    if a == b:
        return 0
    if not a or not b:
        return max(len(a), len(b))
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    prev = steps.copy()
    for i, char in enumerate(np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32), 1):
        base = np.empty_like(prev)
        base[0] = i
        base[1:] = np.minimum(prev[1:] + 1, prev[:-1] + (target != char))
        # insertions chain left to right: cur[j] = min_k<=j base[k] + (j - k)
        prev = np.minimum.accumulate(base - steps) + steps
    return int(prev[-1])


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Total edits / total reference characters (0 when both are empty)."""
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    chars = sum(len(r) for r in references)
    return edits / chars if chars else float(edits > 0)


class Decoder:
    """Greedy transcripts with a config's vocabulary: the runtime's own best-path decoder."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.vocab = Vocabulary.from_tokens(config["vocabulary"], blank_id=int(config["blank_id"]),
                                            word_delimiter=config["word_delimiter"],
                                            special_tokens=config["special_tokens"])

    def __call__(self, log_probs: np.ndarray) -> str:
        # frame duration only scales word times, which validation does not compare
        return greedy_decode(log_probs, self.vocab, frame_duration=1.0).text


def make_session(path: Path, threads: int | None = None) -> Any:
    """A CPU ONNX Runtime session; ``threads`` defaults to the CPUs this process may use.

    (ONNX Runtime's own default sizes the pool to the host, not the container's CPU set.)
    """
    import onnxruntime as ort

    from w2v2_onnx.session import available_cpus

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session: Any, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Log-probs of each clip run alone, cut to its valid frames."""
    out = []
    for clip in clips:
        log_probs, lengths = session.run(
            None, {"input_values": clip[None].astype(np.float32), "input_lengths": np.array([len(clip)])}
        )
        out.append(log_probs[0, : int(lengths[0])])
    return out


def run_padded_batch(session: Any, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Log-probs of the clips run as one zero-padded batch, each cut to its valid frames."""
    width = max(len(c) for c in clips)
    batch = np.zeros((len(clips), width), dtype=np.float32)
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    log_probs, lengths = session.run(
        None, {"input_values": batch, "input_lengths": np.array([len(c) for c in clips], dtype=np.int64)}
    )
    return [log_probs[i, : int(lengths[i])] for i in range(len(clips))]


def torch_reference(model: Any, clip: np.ndarray, do_normalize: bool) -> np.ndarray:
    """``log_softmax(model(normalized clip).logits)`` for one clip alone, as the feature extractor does."""
    import torch

    values = clip.astype(np.float64)
    if do_normalize:
        values = (values - values.mean()) / np.sqrt(values.var() + 1e-7)
    with torch.no_grad():
        logits = model(torch.from_numpy(values.astype(np.float32))[None]).logits
    return torch.log_softmax(logits.float(), dim=-1)[0].numpy()


def parity_clips(
    audio: Sequence[np.ndarray],
    receptive_field: int,
    sample_rate: int,
    seconds: Sequence[float] = DEFAULT_SECONDS,
) -> list[np.ndarray]:
    """Clips of the shortest valid length and of each of ``seconds``, cut from (tiled) ``audio``."""
    source = np.concatenate(list(audio)) if audio else np.zeros(0, np.float32)
    lengths = [receptive_field] + [int(round(s * sample_rate)) for s in seconds]
    need = max(lengths)
    if len(source) < need:
        source = (
            np.tile(source, need // max(1, len(source)) + 1) if len(source) else np.zeros(need, np.float32)
        )
    return [np.ascontiguousarray(source[:n]) for n in lengths]


def validate_fp32(
    model: Any,
    onnx_path: Path,
    config: dict[str, Any],
    audio: Sequence[np.ndarray],
    seconds: Sequence[float] = DEFAULT_SECONDS,
) -> dict[str, Any]:
    """Compare the fp32 graph with PyTorch at the shortest valid input, ``seconds`` and a padded batch.

    Args:
        model: the Hugging Face model (eval mode).
        onnx_path: the fp32 graph.
        config: the ``w2v2_onnx.json`` content.
        audio: clips the test inputs are cut from (tiled when too short).
        seconds: input lengths besides the shortest valid one.

    Returns:
        ``{"cases": [...], "max_abs_diff", "batch_max_abs_diff", "cer", "transcripts_equal", ...}``;
        check them with :func:`check_fp32`.

    Raises:
        ValidationError: the graph gives a different number of frames than PyTorch.
    """
    clips = parity_clips(audio, int(config["receptive_field"]), int(config["sample_rate"]), seconds)
    decode = Decoder(config)
    session = make_session(onnx_path)
    refs = [torch_reference(model, c, bool(config["do_normalize"])) for c in clips]
    alone = run_session(session, clips)
    # The batch holds the three shortest clips (padding up to 7.3 s), enough to show padding is inert.
    batch_clips = sorted(clips, key=len)[:3]
    batched = run_padded_batch(session, batch_clips)
    cases = []
    for clip, ref, got in zip(clips, refs, alone, strict=True):
        if ref.shape != got.shape:
            raise ValidationError(
                f"fp32 graph gave {got.shape} log-probs for {len(clip)} samples, PyTorch {ref.shape}"
            )
        cases.append(
            {
                "samples": len(clip),
                "frames": int(ref.shape[0]),
                "max_abs_diff": float(np.abs(ref - got).max()),
                "transcript_equal": decode(ref) == decode(got),
            }
        )
    ref_by_len = {len(c): r for c, r in zip(clips, refs, strict=True)}
    batch_diff = max(
        float(np.abs(ref_by_len[len(c)] - got).max()) for c, got in zip(batch_clips, batched, strict=True)
    )
    ref_texts = [decode(r) for r in refs]
    return {
        "cases": cases,
        "max_abs_diff": max(c["max_abs_diff"] for c in cases),
        "batch_max_abs_diff": batch_diff,
        "batch_lengths": [len(c) for c in batch_clips],
        "cer": cer(ref_texts, [decode(g) for g in alone]),
        "transcripts_equal": sum(c["transcript_equal"] for c in cases),
        "transcripts_total": len(cases),
    }


def check_fp32(figures: dict[str, Any], thresholds: Thresholds) -> None:
    """Raise :class:`ValidationError` when :func:`validate_fp32` figures pass a threshold."""
    cases = figures["cases"]
    worst = max(figures["max_abs_diff"], figures["batch_max_abs_diff"])
    if worst > thresholds.fp32_max_abs_diff:
        raise ValidationError(
            f"fp32 graph differs from PyTorch by {worst:.3g} in log-probability "
            f"(threshold {thresholds.fp32_max_abs_diff:g}) at lengths "
            f"{[c['samples'] for c in cases]} and a padded batch; see export_report.json"
        )
    if figures["cer"] > thresholds.fp32_max_cer:
        raise ValidationError(
            f"fp32 greedy transcripts differ from PyTorch's: CER {figures['cer']:.4f} "
            f"(threshold {thresholds.fp32_max_cer:g})"
        )


def validate_against_fp32(
    path: Path,
    fp32_path: Path,
    config: dict[str, Any],
    audio: Sequence[np.ndarray],
) -> dict[str, Any]:
    """Compare a reduced-precision graph with the fp32 graph on ``audio`` (check with :func:`check_cer`).

    Returns:
        ``{"cer", "transcripts_equal", "transcripts_total", "max_abs_diff", "mean_abs_diff",
        "argmax_agreement"}``.
    """
    decode = Decoder(config)
    reference = run_session(make_session(fp32_path), audio)
    got = run_session(make_session(path), audio)
    ref_texts = [decode(r) for r in reference]
    texts = [decode(g) for g in got]
    diffs = [np.abs(r - g) for r, g in zip(reference, got, strict=True)]
    return {
        "cer": cer(ref_texts, texts),
        "transcripts_equal": sum(a == b for a, b in zip(ref_texts, texts, strict=True)),
        "transcripts_total": len(texts),
        "max_abs_diff": float(max(d.max() for d in diffs)),
        "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
        "argmax_agreement": float(
            np.mean(
                np.concatenate([r.argmax(-1) == g.argmax(-1) for r, g in zip(reference, got, strict=True)])
            )
        ),
    }


def check_cer(precision: str, figures: dict[str, Any], max_cer: float) -> None:
    """Raise :class:`ValidationError` when :func:`validate_against_fp32` figures pass ``max_cer``."""
    if figures["cer"] > max_cer:
        raise ValidationError(
            f"{precision} transcripts differ from fp32: CER {figures['cer']:.4f} on "
            f"{figures['transcripts_total']} clips (threshold {max_cer:g}); figures in export_report.json; "
            f"loosen it with --max-{precision}-cer"
        )
