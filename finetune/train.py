"""The training run: data, model, Hugging Face Trainer, checkpoints and the final checkpoint dir."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from w2v2_onnx.checks import MAX_THREADS, is_finite_number
from w2v2_onnx.errors import DataError, InvalidOptionError
from w2v2_onnx_finetune.model import REGULARISATION, SIZES
from w2v2_onnx_finetune.sources import SourceSpec

logger = logging.getLogger(__name__)

FINAL_DIR = "checkpoint"

#: Learning-rate schedules: the Trainer's own, and ``time-linear`` (linear decay over a wall-time budget).
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay", "time-linear")


@dataclass
class TrainConfig:
    """Everything a training run needs; the CLI fills it from its flags (see ``docs/finetune.md``)."""

    output_dir: Path
    sources: list[SourceSpec]
    start: str = "scratch:small"
    seed: int = 0
    split_seed: int | None = None  # seed of the held-out splits; None: ``seed`` (see held_out_seed)
    epochs: float = 10.0
    max_steps: int = -1
    batch_size: int = 8
    eval_batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-4
    warmup: float = 0.1
    weight_decay: float = 0.0
    scheduler: str = "linear"
    max_seconds: float = 16.0
    trim_silence: bool = False
    precision: str = "auto"
    threads: int | None = None
    eval_steps: int | None = None
    logging_steps: int = 25
    save_total_limit: int = 2
    resume: bool = False
    max_wall_minutes: float | None = None
    train_until: float | None = None  # Unix time: stop training by then (counts the time spent loading)
    freeze_feature_encoder: str = "auto"
    best_metric: str | None = None
    num_workers: int = 0
    speed_perturb: float = 0.0  # share of training draws played at another speed (see SpeedPerturbation)
    speed_range: tuple[float, float] = (0.9, 1.1)
    pad_silence: float = 0.0  # share of training draws given margins of silence or low noise (SilencePadding)
    model_overrides: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse settings that would fail later (inside the Trainer) or silently do something else.

        Raises:
            InvalidOptionError: naming the setting and what is allowed.
        """
        def bad(name: str, allowed: str, value: Any) -> InvalidOptionError:
            return InvalidOptionError(f"--{name.replace('_', '-')} must be {allowed}, got {value!r}")

        for name in ("batch_size", "eval_batch_size", "grad_accum", "logging_steps", "save_total_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, "a positive integer", value)
        if not is_finite_number(self.learning_rate) or self.learning_rate <= 0:
            raise bad("learning_rate", "a finite number above 0", self.learning_rate)
        if not is_finite_number(self.warmup) or self.warmup < 0:
            raise bad("warmup", "a finite number >= 0 (steps, or a fraction of the run if below 1)", self.warmup)
        if not is_finite_number(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a finite number >= 0", self.weight_decay)
        if not is_finite_number(self.epochs) or self.epochs <= 0:
            raise bad("epochs", "a finite number above 0", self.epochs)
        if self.max_steps != -1 and self.max_steps < 1:
            raise bad("max_steps", "a positive integer, or -1 for --epochs", self.max_steps)
        if not is_finite_number(self.max_seconds) or self.max_seconds <= 0:
            raise bad("max_seconds", "a finite number of seconds above 0", self.max_seconds)
        wall = self.max_wall_minutes
        if wall is not None and (not is_finite_number(wall) or wall <= 0):
            raise bad("max_wall_minutes", "a finite number of minutes above 0", self.max_wall_minutes)
        if self.train_until is not None and not is_finite_number(self.train_until):
            raise bad("train_until", "a Unix time in seconds", self.train_until)
        if self.eval_steps is not None and self.eval_steps < 1:
            raise bad("eval_steps", "a positive integer (or left out: every epoch)", self.eval_steps)
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise bad("threads", f"an integer from 1 to {MAX_THREADS}", self.threads)
        if self.num_workers < 0:
            raise bad("num_workers", "an integer >= 0", self.num_workers)
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 2**32:
                raise bad(name, "an integer from 0 to 2**32 - 1", value)
        if not is_finite_number(self.speed_perturb) or not 0 <= self.speed_perturb <= 1:
            raise bad("speed_perturb", "a probability from 0 to 1", self.speed_perturb)
        if not is_finite_number(self.pad_silence) or not 0 <= self.pad_silence <= 1:
            raise bad("pad_silence", "a probability from 0 to 1", self.pad_silence)
        low, high = self.speed_range
        if not (is_finite_number(low) and is_finite_number(high) and 0.5 <= low <= high <= 2.0):
            raise bad("speed_range", "two speed factors LOW HIGH with 0.5 <= LOW <= HIGH <= 2", self.speed_range)
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"one of {', '.join(SCHEDULERS)}", self.scheduler)
        for name, value in self.model_overrides.items():
            if name not in REGULARISATION:
                raise InvalidOptionError(f"model_overrides: {name!r} cannot be overridden; the settings that can "
                                         f"are {', '.join(REGULARISATION)}")
            if name.endswith("_length"):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
                    raise bad(name, "an integer from 1 to 10000", value)
            elif not is_finite_number(value) or not 0 <= value <= 1:
                raise bad(name, "a probability from 0 to 1", value)
        if self.start.startswith("scratch:") and self.start.removeprefix("scratch:") not in SIZES:
            raise bad("start", f"scratch:SIZE with SIZE one of {', '.join(sorted(SIZES))}, a checkpoint folder or a "
                               f"hub id", self.start)
        if self.resume and not any(Path(self.output_dir).glob("checkpoint-*")):
            raise InvalidOptionError(f"--resume: {self.output_dir} holds no checkpoint-<step> folder to continue; "
                                     f"leave out --resume to start a new run there")

    @property
    def held_out_seed(self) -> int:
        """The seed that draws the held-out splits: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed


def _check_mask_lengths(model_config: Any, examples: list, batch_size: int) -> None:
    """SpecAugment spans must fit the axes they mask, or transformers fails at the first such batch.

    Raises:
        InvalidOptionError: a feature mask longer than the model's channels, or a time mask longer than the
            longest training example's frames (then every batch would fail).
    """
    from w2v2_onnx_finetune.model import output_frames

    length, channels = model_config.mask_feature_length, model_config.hidden_size
    if model_config.mask_feature_prob > 0 and length > channels:
        raise InvalidOptionError(f"--mask-feature-length {length} is longer than the model's {channels} feature "
                                 f"channels; use at most {channels}")
    length = model_config.mask_time_length
    if model_config.mask_time_prob > 0 and examples:
        frames = sorted(output_frames(model_config, len(example.audio)) for example in examples)
        if length > frames[-1]:
            raise InvalidOptionError(f"--mask-time-length {length} is longer than the longest training example "
                                     f"({frames[-1]} frames); use at most {frames[-1]}")
        shorter = sum(count < length for count in frames)
        if shorter >= batch_size:  # length-grouped batches put short examples together
            logger.warning("--mask-time-length %d is longer than %d training examples (the shortest has %d frames): "
                           "a batch made only of them would stop training", length, shorter, frames[0])


def _precision_flags(precision: str) -> dict[str, bool]:
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision == "fp16" and not cuda:
        raise InvalidOptionError("fp16 mixed precision needs CUDA; use bf16 or fp32 on CPU")
    flags = {"fp16": precision == "fp16", "bf16": precision == "bf16"}
    if not cuda:
        flags["use_cpu"] = True  # the Trainer only allows bf16 without a GPU when told it is on the CPU
    return flags


#: The shortest training budget that ``--train-until`` leaves (a deadline already past still trains this long).
MIN_BUDGET_S = 30.0


def _training_budget_s(max_wall_minutes: float | None, train_until: float | None,
                       now: float | None = None) -> float | None:
    """Seconds of training: ``max_wall_minutes``, cut to what ``train_until`` (Unix time) leaves from ``now``.

    ``None`` when neither is set. The time left before ``train_until`` is measured after the data is loaded
    and the model built, so a deadline bounds the whole command, not only the training loop.
    """
    budget = max_wall_minutes * 60 if max_wall_minutes else None
    if train_until is not None:
        left = train_until - (time.time() if now is None else now)
        if left < MIN_BUDGET_S:
            logger.warning("--train-until leaves %.0f s after loading; training %.0f s anyway", left, MIN_BUDGET_S)
            left = MIN_BUDGET_S
        if budget is None or left < budget:
            logger.info("training budget %.0f s (what --train-until leaves; --max-wall-minutes gave %s)",
                        left, "none" if budget is None else f"{budget:.0f} s")
            budget = left
    return budget


def _is_our_checkpoint(start: str) -> bool:
    from w2v2_onnx_finetune.vocab import vocab_dict

    vocab = Path(start) / "vocab.json"
    try:
        return vocab.is_file() and json.loads(vocab.read_text(encoding="utf-8")) == vocab_dict()
    except (OSError, json.JSONDecodeError):
        return False


def load_data(config: TrainConfig) -> tuple[list[Any], dict[str, list[Any]], list[dict[str, Any]]]:
    """Load every source; return (train examples, eval examples by source name, summaries)."""
    from w2v2_onnx_finetune.data import load_source

    train: list[Any] = []
    evaluation: dict[str, list[Any]] = {}
    summaries = []
    for spec in config.sources:
        data = load_source(spec, seed=config.held_out_seed, max_seconds=config.max_seconds,
                           trim_train_silence=config.trim_silence)
        train.extend(data.train * spec.repeat)
        if data.eval:
            evaluation.setdefault(spec.name, []).extend(data.eval)
        summary = data.summary()
        summary["eval_ids"] = [e.ident for e in data.eval]
        summaries.append(summary)
        if data.bad_rows:
            logger.warning("%s: %d bad rows skipped (listed in data.json)", spec.name, len(data.bad_rows))
    if not train:
        raise DataError("no training examples: every source is empty, eval-only, or all rows are bad")
    return train, evaluation, summaries


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Train a model and write ``<output_dir>/checkpoint`` (model + processor + training.json).

    Trainer checkpoints (``checkpoint-<step>``) and ``metrics.jsonl`` are written into ``output_dir``
    as training goes; with ``resume`` the newest checkpoint there is continued.

    Returns:
        The final metrics and run facts (also in ``training.json``).

    Raises:
        DataError: no usable training data or a bad source.
        InvalidOptionError: a setting out of range (see :meth:`TrainConfig.check`).
    """
    config.check()
    import torch
    import transformers
    from transformers import PrinterCallback, TrainingArguments, set_seed

    from w2v2_onnx_finetune.augment import SilencePadding, SpeedPerturbation
    from w2v2_onnx_finetune.batching import CTCCollator, SpeechDataset
    from w2v2_onnx_finetune.callbacks import MetricsLogCallback, TimeBudgetCallback
    from w2v2_onnx_finetune.metrics import make_compute_metrics
    from w2v2_onnx_finetune.model import build_model
    from w2v2_onnx_finetune.trainer import CTCTrainer
    from w2v2_onnx_finetune.vocab import build_processor

    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    random.seed(config.seed)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()

    train_examples, eval_examples, summaries = load_data(config)
    (output / "data.json").write_text(json.dumps(summaries, indent=1) + "\n", encoding="utf-8")
    freeze = config.freeze_feature_encoder == "yes" or (
        config.freeze_feature_encoder == "auto" and not config.start.startswith("scratch:")
        and not _is_our_checkpoint(config.start))
    model = build_model(config.start, freeze_feature_encoder=freeze, **config.model_overrides)
    _check_mask_lengths(model.config, train_examples, config.batch_size)
    use_mask = getattr(model.config, "feat_extract_norm", "layer") == "layer"
    processor = build_processor(output)
    processor.feature_extractor.return_attention_mask = use_mask
    speed = SpeedPerturbation(config.speed_perturb, *config.speed_range) if config.speed_perturb > 0 else None
    padding = SilencePadding(config.pad_silence) if config.pad_silence > 0 else None
    train_set = SpeechDataset(train_examples, speed=speed, seed=config.seed, padding=padding)
    eval_sets = {name: SpeechDataset(items) for name, items in eval_examples.items()}
    logger.info("training on %d examples (%.0f s of audio); eval sets %s", len(train_set),
                train_set.total_seconds(), {k: len(v) for k, v in eval_sets.items()})

    budget_s = _training_budget_s(config.max_wall_minutes, config.train_until)
    deadline = time.time() + budget_s if budget_s else None
    if config.scheduler == "time-linear" and budget_s is None:
        raise InvalidOptionError("--scheduler time-linear needs --max-wall-minutes or --train-until "
                                 "(the time the learning rate decays over)")
    strategy = "steps" if config.eval_steps else "epoch"
    best_metric = config.best_metric or (f"eval_{next(iter(eval_sets))}_wer" if eval_sets else None)
    if best_metric == "none":  # keep the last checkpoint: no selection on eval data
        best_metric = None
    known = [f"eval_{name}_{metric}" for name in eval_sets for metric in ("wer", "cer", "exact", "loss")]
    if best_metric is not None and best_metric not in known:
        raise InvalidOptionError(f"--best-metric {best_metric!r} is not a metric of this run; choose none or one of "
                                 f"{', '.join(known) or '(no eval sets: only none)'}")
    args = TrainingArguments(
        output_dir=str(output),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear" if config.scheduler == "time-linear" else config.scheduler,
        train_sampling_strategy="group_by_length",
        eval_strategy=strategy if eval_sets else "no",
        save_strategy=strategy,
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps,
        logging_steps=config.logging_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=best_metric is not None,
        metric_for_best_model=best_metric,
        greater_is_better=False,
        seed=config.seed,
        dataloader_num_workers=config.num_workers,
        # Workers keep their copy of the dataset across epochs, so its per-example draw counts go on and
        # speed perturbation draws other speeds each epoch (fresh workers would repeat the first epoch's).
        dataloader_persistent_workers=config.num_workers > 0,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        **_precision_flags(config.precision),
    )
    trainer = CTCTrainer(
        model=model,
        args=args,
        data_collator=CTCCollator(return_attention_mask=use_mask),
        train_dataset=train_set,
        eval_dataset=eval_sets or None,
        processing_class=processor,
        compute_metrics=make_compute_metrics(),
        callbacks=[MetricsLogCallback(output / "metrics.jsonl", len(train_set))],
        time_deadline=deadline if config.scheduler == "time-linear" else None,
    )
    trainer.remove_callback(PrinterCallback)  # MetricsLogCallback logs instead; stdout stays for the CLI
    if deadline is not None:
        trainer.add_callback(TimeBudgetCallback(deadline))
    result = trainer.train(resume_from_checkpoint=True if config.resume else None)

    final = output / FINAL_DIR
    trainer.save_model(str(final))
    processor.save_pretrained(str(final))
    final_metrics = trainer.evaluate() if eval_sets else {}
    trainer.stop_loader_workers()
    facts = {
        "start": config.start, "seed": config.seed,
        "split_seed": config.held_out_seed,
        "train_examples": len(train_set),
        "train_audio_s": round(train_set.total_seconds(), 1), "global_step": trainer.state.global_step,
        "best_checkpoint": trainer.state.best_model_checkpoint, "best_metric": best_metric,
        "skipped_steps": trainer.skipped_steps,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0), 1),
        "wall_s": round(time.time() - started, 1), "final_eval": final_metrics,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
    }
    (final / "training.json").write_text(json.dumps(facts, indent=1, default=str) + "\n", encoding="utf-8")
    logger.info("final checkpoint in %s: %s", final, json.dumps(final_metrics))
    return facts
