"""Greedy evaluation of a checkpoint on held-out data: WER, CER and exact-match (digit) accuracy.

``python -m w2v2_onnx_finetune.evaluate --checkpoint RUN/checkpoint --data SOURCE ... --seed S``
rebuilds each source's eval split exactly as training did (same spec, same seed) and scores only it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from w2v2_onnx.checks import MAX_THREADS
from w2v2_onnx.errors import W2V2OnnxError
from w2v2_onnx_finetune.data import Example
from w2v2_onnx_finetune.metrics import error_rates

logger = logging.getLogger(__name__)


def transcribe(model: Any, examples: Sequence[Example], *, batch_size: int = 8,
               use_mask: bool = True) -> list[str]:
    """Greedy transcripts of ``examples`` in input order (batched by length, padding masked)."""
    import torch

    from w2v2_onnx_finetune.batching import normalize_audio
    from w2v2_onnx_finetune.vocab import decode_ids

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].audio))
    texts: list[str] = [""] * len(examples)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            audios = [normalize_audio(examples[i].audio) for i in rows]
            width = max(len(a) for a in audios)
            values = torch.zeros(len(rows), width)
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for j, audio in enumerate(audios):
                values[j, : len(audio)] = torch.from_numpy(audio)
                mask[j, : len(audio)] = 1
            if not use_mask:
                # group-norm models saw no mask in training: run each row alone, unpadded
                for j, i in enumerate(rows):
                    single = model(values[j: j + 1, : len(audios[j])]).logits
                    texts[i] = decode_ids(single[0].argmax(-1).tolist())
                continue
            logits = model(values, attention_mask=mask).logits
            frames = model._get_feat_extract_output_lengths(mask.sum(-1)).tolist()
            ids = logits.argmax(-1)
            for j, i in enumerate(rows):
                texts[i] = decode_ids(ids[j, : int(frames[j])].tolist())
    return texts


def evaluate_checkpoint(checkpoint: str | Path, sources: Sequence[Any], *, seed: int = 0,
                        batch_size: int = 8, max_seconds: float = 30.0,
                        examples_out: int = 5) -> dict[str, Any]:
    """Score a checkpoint on the eval part of each source.

    Returns:
        ``{source name: {"count", "wer", "cer", "exact", "seconds", "rtfx", "examples"}}``; ``exact``
        is the share of utterances transcribed exactly (digit accuracy on single-digit data).
    """
    import torch
    from transformers import AutoModelForCTC

    from w2v2_onnx_finetune.data import load_source

    model = AutoModelForCTC.from_pretrained(str(checkpoint))
    use_mask = getattr(model.config, "feat_extract_norm", "layer") == "layer"
    results: dict[str, Any] = {}
    for spec in sources:
        data = load_source(spec, seed=seed, max_seconds=max_seconds)
        if not data.eval:
            logger.warning("%s has no eval rows with this spec and seed", spec.name)
            continue
        started = time.perf_counter()
        hypotheses = transcribe(model, data.eval, batch_size=batch_size, use_mask=use_mask)
        elapsed = time.perf_counter() - started
        references = [e.text for e in data.eval]
        audio_s = sum(len(e.audio) for e in data.eval) / 16000
        results[spec.name] = error_rates(references, hypotheses) | {
            "count": len(references), "seconds": round(audio_s, 1),
            "rtfx": round(audio_s / max(elapsed, 1e-9), 1), "threads": torch.get_num_threads(),
            "examples": [{"id": e.ident, "ref": r, "hyp": h} for e, r, h in
                         list(zip(data.eval, references, hypotheses, strict=True))[:examples_out]],
        }
        logger.info("%s: %s", spec.name, {k: v for k, v in results[spec.name].items() if k != "examples"})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print (and optionally write) the evaluation as JSON."""
    from w2v2_onnx_finetune.sources import parse_source

    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune.evaluate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", action="append", required=True, metavar="SOURCE",
                        help="same source specs as training (see w2v2-onnx finetune --help)")
    parser.add_argument("--seed", type=int, default=0, help="the training run's seed (decides splits)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        parser.error(f"--threads must be an integer from 1 to {MAX_THREADS}, got {args.threads}")
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"--checkpoint {args.checkpoint}: not a checkpoint folder (no config.json); give the run's "
                     f"checkpoint/ folder")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        results = evaluate_checkpoint(args.checkpoint, [parse_source(s) for s in args.data], seed=args.seed,
                                      batch_size=args.batch_size)
        text = json.dumps(results, indent=1)
        if args.json:
            args.json.write_text(text + "\n", encoding="utf-8")
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # transformers' loaders: a checkpoint without processor files, ...
        print(f"error: {args.checkpoint}: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
