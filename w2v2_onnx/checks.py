"""Predicates shared by the option checks of every stage; each caller raises its own typed error."""

from __future__ import annotations

import math


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is an ``int`` or ``float`` (not a ``bool``) that is neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
