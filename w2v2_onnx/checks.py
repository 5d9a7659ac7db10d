"""Predicates shared by the option checks of every stage; each caller raises its own typed error."""

from __future__ import annotations

import math
from pathlib import Path

#: The most threads any stage accepts (ONNX Runtime and torch would try to start every one of them).
MAX_THREADS = 1024


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is an ``int`` or ``float`` (not a ``bool``) that is neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def path_exists(path: Path) -> bool:
    """``path.exists()``, False for a path the system cannot even look up (a name too long: Python 3.11 raises)."""
    try:
        return path.exists()
    except OSError:
        return False
