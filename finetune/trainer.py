"""A Hugging Face Trainer that returns greedy CTC ids from evaluation, with padded frames blanked."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from transformers import Trainer

from w2v2_onnx_finetune.schedule import time_linear_factor

logger = logging.getLogger(__name__)


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every element is finite, with one device sync: a NaN or inf makes its tensor's norm non-finite."""
    norms = torch._foreach_norm(tensors)
    device = norms[0].device
    return bool(torch.isfinite(torch.stack([n.to(device) for n in norms]).sum()))


def skip_non_finite_steps(optimizer: torch.optim.Optimizer) -> list[int]:
    """Make ``optimizer`` skip every step whose gradients hold a NaN or an infinity.

    A step pre-hook drops all gradients of such a step (``grad = None``, which AdamW and the other torch
    optimizers skip), so one overflow in a bf16/fp16 batch cannot turn every weight into NaN. Returns the
    list that receives the (1-based) number of each skipped step.
    """
    skipped: list[int] = []
    calls = [0]

    def drop_non_finite(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        calls[0] += 1
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if grads and not _all_finite(grads):
            for group in opt.param_groups:
                for param in group["params"]:
                    param.grad = None
            skipped.append(calls[0])
            logger.warning("optimizer step %d skipped: non-finite gradients (%d skipped so far)",
                           calls[0], len(skipped))

    optimizer.register_step_pre_hook(drop_non_finite)
    return skipped


class CTCTrainer(Trainer):
    """``Trainer`` whose evaluation returns per-frame argmax ids instead of full logits.

    Frames past each row's valid length become the blank (id 0), so padding in a batch never adds
    text to a transcript, and evaluation keeps ``frames`` ints per row instead of ``frames x vocab``
    floats.

    Optimizer steps whose gradients are not finite are skipped (:func:`skip_non_finite_steps`); their
    numbers are in ``skipped_steps``.

    Args:
        time_deadline: a Unix time; with one, the learning rate follows :func:`time_linear_factor` instead of
            the ``lr_scheduler_type`` of the arguments, decaying to 0 at that time (where the run's time budget
            ends, see ``TimeBudgetCallback``).
    """

    def __init__(self, *args: Any, time_deadline: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_deadline = time_deadline
        self._schedule_started: float | None = None
        self.skipped_steps: list[int] = []

    def stop_loader_workers(self) -> int:
        """End the persistent DataLoader worker processes of training and evaluation now.

        With ``persistent_workers`` they otherwise live until interpreter exit, where PyTorch can wait up to
        5 s for each worker with pinned memory (pytorch/pytorch#81794). A precaution: a GPU run that sat 44 s at
        exit after saving led to it, but a later check (``recipes/loader_exit_check.py``) did not reproduce
        that wait. Returns how many loaders had workers to stop.
        """
        loaders = list(getattr(self.accelerator, "_dataloaders", ()))
        loaders += list((getattr(self, "_eval_dataloaders", None) or {}).values())
        stopped = 0
        for loader in loaders:
            iterator = getattr(loader, "_iterator", None)
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is None:
                continue
            shutdown()
            loader._iterator = None
            stopped += 1
        return stopped

    def create_optimizer(self, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """The standard optimizer, made to skip steps with non-finite gradients."""
        optimizer = super().create_optimizer(*args, **kwargs)
        self.skipped_steps = skip_non_finite_steps(optimizer)
        return optimizer

    def create_scheduler(self, num_training_steps: int,
                         optimizer: torch.optim.Optimizer | None = None) -> Any:
        """Use the wall-time schedule when a time budget is set, else the standard one."""
        if self.time_deadline is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        warmup = self.args.get_warmup_steps(num_training_steps)
        deadline = self.time_deadline

        def factor(step: int) -> float:
            if self._schedule_started is None:
                self._schedule_started = time.time()
            span = max(deadline - self._schedule_started, 1e-6)
            return time_linear_factor(step, time.time() - self._schedule_started, warmup, span)

        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
        return self.lr_scheduler

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Run the parent step, then turn logits into masked argmax ids."""
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if logits is None:
            return loss, logits, labels
        if isinstance(logits, tuple):
            logits = logits[0]
        ids = logits.argmax(dim=-1)
        mask = inputs.get("attention_mask")
        if mask is not None:
            unwrapped = self.accelerator.unwrap_model(model)
            lengths = unwrapped._get_feat_extract_output_lengths(mask.sum(-1)).to(ids.device)
            frames = torch.arange(ids.shape[1], device=ids.device)[None, :]
            ids = ids.masked_fill(frames >= lengths[:, None], 0)
        return loss, ids, labels
