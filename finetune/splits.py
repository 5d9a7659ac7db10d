"""Seeded train/eval splits by group, so no prompt or speaker is in both sides."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from w2v2_onnx.errors import DataError
from w2v2_onnx_finetune.manifest import Utterance


def _rank(group: str, seed: int) -> str:
    # A hash of (seed, group) orders groups independently of row order and of the other groups,
    # so adding rows to a manifest never moves an existing group across the split.
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def split_by_group(
    utterances: Sequence[Utterance],
    *,
    eval_fraction: float = 0.0,
    hold_out: Iterable[str] = (),
    seed: int = 0,
) -> tuple[list[Utterance], list[Utterance]]:
    """Split utterances into (train, eval) so every group lies wholly on one side.

    Groups named in ``hold_out`` go to eval; of the other groups, a seeded ``eval_fraction`` of them
    (rounded, at least one when the fraction is positive) goes to eval as well.

    Args:
        utterances: rows with their ``group`` (prompt id, speaker, or the file name).
        eval_fraction: share of the remaining groups held out, in [0, 1).
        hold_out: groups always held out (e.g. the speaker ``theo``).
        seed: split seed.

    Returns:
        ``(train, eval)`` in input order.

    Raises:
        DataError: the fraction is out of range or a held-out group does not exist.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DataError(f"eval fraction {eval_fraction} is outside [0, 1)")
    groups = sorted({u.group for u in utterances})
    held = set(hold_out)
    unknown = held - set(groups)
    if unknown:
        shown = ", ".join(groups[:10]) + (" ..." if len(groups) > 10 else "")
        raise DataError(f"held-out group(s) {sorted(unknown)} not found (groups: {shown})")
    remaining = sorted((g for g in groups if g not in held), key=lambda g: _rank(g, seed))
    if eval_fraction > 0 and remaining:
        count = max(1, round(eval_fraction * len(remaining)))
        held |= set(remaining[:count])
    train = [u for u in utterances if u.group not in held]
    evaluation = [u for u in utterances if u.group in held]
    return train, evaluation
