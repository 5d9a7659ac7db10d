"""The wall-time learning-rate schedule (no heavy imports, so it is cheap to test)."""

from __future__ import annotations


def time_linear_factor(step: int, elapsed_s: float, warmup_steps: int, budget_s: float) -> float:
    """LR factor of the ``time-linear`` schedule: linear warm-up by step, then linear decay by wall time.

    The factor reaches 0 when ``elapsed_s`` reaches ``budget_s``, so a run stopped by its time budget
    ends with a fully decayed learning rate whatever the machine's speed.
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * max(0.0, 1.0 - elapsed_s / budget_s)
