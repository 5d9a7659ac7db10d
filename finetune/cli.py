"""``w2v2-onnx finetune`` (also ``python -m w2v2_onnx_finetune``): train a CTC model into a checkpoint.

Imports nothing heavy at module import time: torch and transformers are imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from w2v2_onnx.errors import W2V2OnnxError
from w2v2_onnx_finetune.model import REGULARISATION

DATA_HELP = ("data source, repeatable: LOCATION[:key=value,...]. LOCATION is a manifest (.tsv/.csv/.jsonl "
             "of path + transcript) or its folder, a datasets.save_to_disk folder, or a hub dataset name. "
             "Keys: name, role=split|train|eval, group=COLUMN, eval=FRACTION, hold_out=G1+G2, limit=N, "
             "repeat=N, path=COLUMN, text=COLUMN, split=HF_SPLIT. "
             "Example: ../shared/data/fsdd:group=speaker,hold_out=theo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the fine-tuning flags on ``parser``."""
    parser.add_argument("--data", action="append", required=True, metavar="SOURCE", help=DATA_HELP)
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="run folder: Trainer checkpoints, metrics.jsonl, data.json, final checkpoint/")
    parser.add_argument("--start", default="scratch:small",
                        help="scratch:tiny|small|base, a pretrained model (directory or hub id), or one of "
                             "our checkpoints to continue (default: %(default)s)")
    parser.add_argument("--freeze-feature-encoder", choices=("auto", "yes", "no"), default="auto",
                        help="auto: freeze for pretrained starts that are not our checkpoints")
    parser.add_argument("--seed", type=int, default=0, help="seed of init, shuffling and (by default) splits")
    parser.add_argument("--split-seed", type=int, default=None,
                        help="seed of the held-out splits (default: --seed); keep the first run's when continuing "
                             "training of one of our checkpoints, so no held-out row enters training")
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when > 0")
    parser.add_argument("--batch-size", type=int, default=8, help="per device")
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up steps, or a fraction if < 1")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--scheduler", default="linear",
                        help="Trainer lr_scheduler_type (linear, cosine, constant_with_warmup, ...) or "
                             "time-linear: decay to 0 at --max-wall-minutes")
    parser.add_argument("--max-seconds", type=float, default=16.0, help="skip (and log) longer audio")
    parser.add_argument("--trim-silence", action="store_true",
                        help="cut leading/trailing silence (beyond 0.2 s) from training audio only")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="auto: bf16/fp16 mixed precision on CUDA, fp32 on CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--eval-steps", type=int, default=None,
                        help="evaluate and save every N steps (default: every epoch)")
    parser.add_argument("--logging-steps", type=int, default=25)
    parser.add_argument("--save-total-limit", type=int, default=2)
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest checkpoint in --output-dir")
    parser.add_argument("--max-wall-minutes", type=float, default=None,
                        help="evaluate, save and stop after this much training time")
    parser.add_argument("--train-until", type=float, default=None, metavar="UNIX_SECONDS",
                        help="stop training (evaluating and saving first) at this wall-clock time, if that "
                             "comes before --max-wall-minutes: a budget that includes loading, for runs that "
                             "must end in time (e.g. $(( $(date +%%s) + 540 )))")
    parser.add_argument("--best-metric", default=None,
                        help="metric choosing the final checkpoint (default: eval_<first eval source>_wer); "
                             "none: the last checkpoint")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--speed-perturb", type=float, default=0.0, metavar="P",
                        help="play this share of training draws at another speed (tempo and pitch together; "
                             "0-1, default 0: off); held-out data is never perturbed")
    parser.add_argument("--speed-range", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"),
                        help="speed factors drawn uniformly for --speed-perturb (default: 0.9 1.1)")
    parser.add_argument("--pad-silence", type=float, default=0.0, metavar="P",
                        help="give this share of training draws up to 1.5 s of digital silence or low noise "
                             "before and after (0-1, default 0: off), so the model learns the silences users' "
                             "recordings have; held-out data is never padded")
    regularisation = parser.add_argument_group(
        "regularisation (model config overrides; default: the start model's own values)")
    for name, text in REGULARISATION.items():
        is_length = name.endswith("_length")
        regularisation.add_argument("--" + name.replace("_", "-"), type=int if is_length else float, default=None,
                                    metavar="N" if is_length else "P", help=text)
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))


def run(args: argparse.Namespace) -> int:
    """Train as the flags say; returns the exit status (1 on a data or model error)."""
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from w2v2_onnx_finetune.sources import parse_source
    from w2v2_onnx_finetune.train import TrainConfig, run_training

    try:
        overrides = {name: getattr(args, name) for name in REGULARISATION if getattr(args, name) is not None}
        config = TrainConfig(
            output_dir=args.output_dir, sources=[parse_source(s) for s in args.data], start=args.start,
            seed=args.seed, split_seed=args.split_seed, epochs=args.epochs, max_steps=args.max_steps,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size, grad_accum=args.grad_accum,
            learning_rate=args.learning_rate, warmup=args.warmup, weight_decay=args.weight_decay,
            scheduler=args.scheduler, max_seconds=args.max_seconds,
            trim_silence=args.trim_silence, precision=args.precision,
            threads=args.threads, eval_steps=args.eval_steps, logging_steps=args.logging_steps,
            save_total_limit=args.save_total_limit, resume=args.resume,
            max_wall_minutes=args.max_wall_minutes, train_until=args.train_until,
            freeze_feature_encoder=args.freeze_feature_encoder,
            best_metric=args.best_metric, num_workers=args.num_workers, speed_perturb=args.speed_perturb,
            speed_range=tuple(args.speed_range), pad_silence=args.pad_silence, model_overrides=overrides,
        )
        facts = run_training(config)
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"checkpoint": str(Path(args.output_dir) / "checkpoint"),
                      "final_eval": facts["final_eval"]}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m w2v2_onnx_finetune``."""
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
