"""Tune the LM weight (alpha) and word bonus (beta) of beam search on a dev split by grid search.

The acoustic model runs once: the tool decodes the CTC log-probabilities of the dev utterances at every
(alpha, beta) point, reusing one loaded LM, and reports the word error rate of each::

    python -m w2v2_onnx.lm_tune --references dev.tsv --model-dir MODEL --lm lm.arpa \\
        --alphas 0 0.25 0.5 0.75 1 1.5 --betas 0 0.5 1 1.5 2 3 --num-workers 2 --out tuning.json

``dev.tsv`` has a header and the columns ``path`` (audio, relative to the TSV's folder) and ``transcript``;
the model directory's model computes the log-probabilities (``Transcriber.log_probs``). With
``--log-probs dev.npz`` (one ``[frames, vocab]`` array per utterance id) the TSV has ``id`` and
``transcript`` instead and no model runs. Only numpy and the runtime are needed (no torch).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.errors import InvalidOptionError, ModelDirectoryError
from w2v2_onnx.vocabulary import Vocabulary

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DEFAULT_BETAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance (substitutions + deletions + insertions) between two sequences."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        cur = [i]
        for j, h in enumerate(hypothesis, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def word_errors(hypothesis: str, reference: str) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    return edit_distance(reference.split(), hypothesis.split())


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus WER: total word errors over total reference words.

    Raises:
        InvalidOptionError: if the lists differ in length or the references have no words.
    """
    if len(hypotheses) != len(references):
        raise InvalidOptionError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    words = sum(len(r.split()) for r in references)
    if words == 0:
        raise InvalidOptionError("the references contain no words")
    return sum(word_errors(h, r) for h, r in zip(hypotheses, references, strict=True)) / words


@dataclass(frozen=True)
class GridPoint:
    """WER of one (alpha, beta) setting."""

    alpha: float
    beta: float
    wer: float


def grid_search(decoder: BeamSearchDecoder, log_probs: Sequence[np.ndarray], references: Sequence[str],
                frame_duration: float, *, alphas: Sequence[float] = DEFAULT_ALPHAS,
                betas: Sequence[float] = DEFAULT_BETAS, num_workers: int = 0) -> list[GridPoint]:
    """Decode the dev set at every (alpha, beta) and return the points sorted from best to worst WER.

    Args:
        decoder: a beam decoder with the LM loaded (other settings such as beam_width are kept).
        log_probs: one ``[frames, vocab]`` matrix per dev utterance.
        references: the reference transcripts, in the same order.
        frame_duration: seconds per frame.
        alphas, betas: the grid.
        num_workers: worker processes per grid point (see ``BeamSearchDecoder.decode_batch``).

    Returns:
        Every grid point with its WER; ties keep grid order (smaller alpha, then smaller beta first).

    Raises:
        InvalidOptionError: if the decoder has no LM, the grid is empty or the inputs do not match.
    """
    if decoder.scorer is None:
        raise InvalidOptionError("grid_search needs a decoder with a language model (lm=...)")
    if not alphas or not betas:
        raise InvalidOptionError("alphas and betas must each hold at least one value")
    points = []
    for alpha, beta in itertools.product(alphas, betas):
        tuned = decoder.replace(alpha=float(alpha), beta=float(beta))
        texts = [d.text for d in tuned.decode_batch(log_probs, frame_duration, num_workers=num_workers)]
        points.append(GridPoint(float(alpha), float(beta), word_error_rate(texts, references)))
    return sorted(points, key=lambda p: p.wer)


def load_vocabulary(model_dir: str | Path) -> Vocabulary:
    """Read the vocabulary of a model directory's ``w2v2_onnx.json`` (see docs/model-directory.md).

    Raises:
        ModelDirectoryError: if the config is missing or lacks the vocabulary.
    """
    path = Path(model_dir) / "w2v2_onnx.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        return Vocabulary.from_tokens(config["vocabulary"], blank_id=config.get("blank_id", 0),
                                      word_delimiter=config.get("word_delimiter", "|"),
                                      special_tokens=config.get("special_tokens", ()))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelDirectoryError(f"cannot read the vocabulary from {path}: {exc}") from exc


def _read_references(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "transcript" not in rows[0]:
        raise InvalidOptionError(f"{path}: expected a TSV with a header and a 'transcript' column")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: grid-search alpha and beta; prints a table and the best point, writes JSON."""
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx.lm_tune", description=__doc__.splitlines()[0])
    parser.add_argument("--references", required=True,
                        help="TSV with a header: columns path (audio, relative to the TSV) and transcript, or "
                        "id and transcript with --log-probs")
    parser.add_argument("--log-probs", help="npz with one [frames, vocab] array per id (default: run the model "
                        "on the audio paths)")
    parser.add_argument("--model-dir", required=True, help="model directory (its vocabulary; its model runs "
                        "when --log-probs is not given)")
    parser.add_argument("--precision", default=None, help="model precision to run (default: int8 on CPU)")
    parser.add_argument("--lm", required=True, help="ARPA or KenLM binary language model")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    parser.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS))
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--frame-duration", type=float, default=0.02)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--out", help="write every grid point as JSON here")
    args = parser.parse_args(argv)
    rows = _read_references(args.references)
    frame_duration = args.frame_duration
    if args.log_probs:
        refs = {row["id"]: row["transcript"] for row in rows}
        data = np.load(args.log_probs)
        missing = sorted(set(refs) - set(data.files))
        if missing:
            print(f"error: no log-probabilities for {len(missing)} references, e.g. {missing[:3]}",
                  file=sys.stderr)
            return 2
        ids = sorted(refs)
        log_probs, references = [data[i] for i in ids], [refs[i] for i in ids]
    else:
        from w2v2_onnx.transcriber import Transcriber

        if "path" not in rows[0]:
            raise InvalidOptionError(f"{args.references}: without --log-probs it needs a 'path' column of audio")
        transcriber = Transcriber(args.model_dir, precision=args.precision)
        folder = Path(args.references).parent
        log_probs = [transcriber.log_probs(folder / row["path"]) for row in rows]
        references = [row["transcript"] for row in rows]
        frame_duration = transcriber.config.frame_duration
    decoder = BeamSearchDecoder(load_vocabulary(args.model_dir), lm=args.lm, beam_width=args.beam_width)
    points = grid_search(decoder, log_probs, references, frame_duration,
                         alphas=args.alphas, betas=args.betas, num_workers=args.num_workers)
    for p in sorted(points, key=lambda p: (p.alpha, p.beta)):
        print(f"alpha {p.alpha:5.2f}  beta {p.beta:5.2f}  WER {p.wer:.4f}")
    best = points[0]
    print(f"best: alpha={best.alpha} beta={best.beta} WER={best.wer:.4f} on {len(references)} utterances")
    if args.out:
        Path(args.out).write_text(json.dumps([asdict(p) for p in points], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
