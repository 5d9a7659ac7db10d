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


PARTS = ("eval", "dev")


def split_by_group(
    utterances: Sequence[Utterance],
    *,
    eval_fraction: float = 0.0,
    dev_fraction: float = 0.0,
    hold_out: Iterable[str] = (),
    seed: int = 0,
    part: str = "eval",
) -> tuple[list[Utterance], list[Utterance]]:
    """Split utterances into (train, held out) so every group lies wholly on one side.

    Groups are ordered by a seeded hash. Groups named in ``hold_out`` and the first ``eval_fraction`` of
    the others (rounded, at least one when the fraction is positive) form the evaluation (test) part; the
    next ``dev_fraction`` form the dev part, for tuning (decoder weights, checkpoints) without touching
    the test part. Neither part is ever trained on. ``eval=0.1, dev=0.1`` trains on exactly the rows that
    ``eval=0.2`` does, and its test part is exactly that of ``eval=0.1``.

    Args:
        utterances: rows with their ``group`` (prompt id, speaker, or the file name).
        eval_fraction: share of the remaining groups in the test part, in [0, 1).
        dev_fraction: share of the remaining groups in the dev part; ``eval_fraction + dev_fraction < 1``.
        hold_out: groups always in the test part (e.g. the speaker ``theo``).
        seed: split seed.
        part: which held-out part to return: ``eval`` (test) or ``dev``.

    Returns:
        ``(train, held_out_part)``, each in input order.

    Raises:
        DataError: a fraction is out of range, the part is unknown or a held-out group does not exist.
    """
    if not 0.0 <= eval_fraction < 1.0 or not 0.0 <= dev_fraction < 1.0 or eval_fraction + dev_fraction >= 1.0:
        raise DataError(f"eval fraction {eval_fraction} and dev fraction {dev_fraction} must be in [0, 1) "
                        "and sum to less than 1")
    if part not in PARTS:
        raise DataError(f"held-out part {part!r} is not one of {PARTS}")
    groups = sorted({u.group for u in utterances})
    test = set(hold_out)
    unknown = test - set(groups)
    if unknown:
        shown = ", ".join(groups[:10]) + (" ..." if len(groups) > 10 else "")
        raise DataError(f"held-out group(s) {sorted(unknown)} not found (groups: {shown})")
    remaining = sorted((g for g in groups if g not in test), key=lambda g: _rank(g, seed))
    n_test = max(1, round(eval_fraction * len(remaining))) if eval_fraction > 0 and remaining else 0
    n_held = n_test
    if dev_fraction > 0 and remaining:
        n_held = max(n_test + 1, round((eval_fraction + dev_fraction) * len(remaining)))
    test |= set(remaining[:n_test])
    dev = set(remaining[n_test:n_held])
    train = [u for u in utterances if u.group not in test and u.group not in dev]
    chosen = dev if part == "dev" else test
    return train, [u for u in utterances if u.group in chosen]
