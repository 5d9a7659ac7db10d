"""Trainer callbacks: a JSONL metrics log with per-epoch throughput, and a wall-time budget."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class MetricsLogCallback(TrainerCallback):
    """Append every Trainer log (loss, learning rate, eval WER/CER, runtimes) to ``metrics.jsonl``.

    At each epoch end it also writes an ``epoch_end`` record with the epoch's wall time and training
    samples per second, so per-epoch figures survive an interrupted run.

    Args:
        path: the JSONL file (appended to, so a resumed run continues the same log).
        samples_per_epoch: training examples in one epoch (for samples/s).
    """

    def __init__(self, path: str | Path, samples_per_epoch: int) -> None:
        self.path = Path(path)
        self.samples_per_epoch = samples_per_epoch
        self._started = time.time()
        self._epoch_started = time.time()

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._epoch_started = time.time()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        runtime = time.time() - self._epoch_started
        self._write({"event": "epoch_end", "epoch": state.epoch, "step": state.global_step,
                     "epoch_runtime_s": round(runtime, 1),
                     "train_samples_per_s": round(self.samples_per_epoch / max(runtime, 1e-9), 2),
                     "wall_s": round(time.time() - self._started, 1)})

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        record = {"event": "log", "epoch": state.epoch, "step": state.global_step,
                  "wall_s": round(time.time() - self._started, 1)}
        record.update({k: v for k, v in logs.items() if isinstance(v, int | float | str)})
        self._write(record)
        logger.info("%s", json.dumps(record))


class TimeBudgetCallback(TrainerCallback):
    """Stop training at a wall-clock deadline, evaluating and saving a checkpoint first.

    Args:
        deadline: a Unix time. The run computes it once, when its data is loaded and the model built
            (``time.time() + budget``), so the Trainer's own start-up counts against the budget and a
            ``--train-until`` deadline holds (a clock started at ``on_train_begin`` ran 8 s past it on a GPU
            machine).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.time() >= self.deadline:
            logger.info("time budget reached at step %d: evaluating, saving, stopping", state.global_step)
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = True
        return control
