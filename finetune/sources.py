"""Data source specifications: ``LOCATION[:key=value,...]`` strings from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from w2v2_onnx.errors import DataError

ROLES = ("split", "train", "eval")


@dataclass(frozen=True)
class SourceSpec:
    """Where one data source is and how it is used.

    Attributes:
        location: manifest file or folder, a ``datasets.save_to_disk`` folder, or a hub dataset name.
        name: short name used in logs and metric names (``eval_<name>_wer``).
        role: ``split`` (seeded split by group), ``train`` (all rows train) or ``eval`` (all rows eval).
        group: column that groups rows for the split (``prompt_id``, ``speaker``); None: each file alone.
        eval_fraction: share of groups held out as the test part when ``role`` is ``split``.
        dev_fraction: share of further groups held out as a dev part (never trained on either).
        part: which held-out part the source evaluates on: ``eval`` (test, default) or ``dev``.
        hold_out: groups always held out (``theo``).
        limit: keep at most this many training rows (seeded choice); None keeps all.
        repeat: how many times the training rows are repeated per epoch (oversampling).
        path_column, text_column: manifest columns (for hub datasets: ``audio`` and ``text`` columns).
        hf_split: split name of a Hugging Face dataset (``train``), ignored for manifests.
    """

    location: str
    name: str
    role: str = "split"
    group: str | None = None
    eval_fraction: float = 0.0
    dev_fraction: float = 0.0
    part: str = "eval"
    hold_out: tuple[str, ...] = field(default_factory=tuple)
    limit: int | None = None
    repeat: int = 1
    path_column: str = "path"
    text_column: str = "transcript"
    hf_split: str = "train"


#: The most a source's rows may be repeated per epoch (each repeat holds the rows' audio in memory again).
MAX_REPEAT = 100
_KEYS = {"name", "role", "group", "eval", "dev", "part", "hold_out", "limit", "repeat", "path", "text", "split"}


def parse_source(spec: str) -> SourceSpec:
    """Parse ``LOCATION[:key=value,...]``.

    Keys: ``name``, ``role`` (split|train|eval), ``group``, ``eval`` (test fraction), ``dev`` (dev
    fraction), ``part`` (eval|dev: the held-out part to evaluate), ``hold_out``
    (groups joined by ``+``), ``limit``, ``repeat``, ``path`` and ``text`` (column names), ``split``
    (Hugging Face split). Example: ``../shared/data/fsdd:group=speaker,hold_out=theo``.

    Raises:
        DataError: an unknown key or a bad value.
    """
    location, _, options = spec.partition(":")
    if not location:
        raise DataError(f"data source {spec!r} has no location")
    values: dict[str, str] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise DataError(f"data source {spec!r}: bad option {item!r} (keys: {', '.join(sorted(_KEYS))})")
        if key in values:
            raise DataError(f"data source {spec!r}: {key!r} is given twice")
        values[key] = value
    role = values.get("role", "split")
    if role not in ROLES:
        raise DataError(f"data source {spec!r}: role {role!r} is not one of {ROLES}")
    try:
        eval_fraction = float(values.get("eval", "0"))
        dev_fraction = float(values.get("dev", "0"))
        limit = int(values["limit"]) if "limit" in values else None
        repeat = int(values.get("repeat", "1"))
    except ValueError as exc:
        raise DataError(f"data source {spec!r}: {exc}") from exc
    part = values.get("part", "eval")
    if part not in ("eval", "dev"):
        raise DataError(f"data source {spec!r}: part {part!r} is not one of ('eval', 'dev')")
    splitting = {k for k in ("eval", "dev", "hold_out", "part") if k in values}
    if role != "split" and splitting:
        raise DataError(f"data source {spec!r}: {sorted(splitting)} split a source, but role={role} uses all "
                        f"its rows; leave them out or use role=split")
    if part == "dev" and "dev" not in values:
        raise DataError(f"data source {spec!r}: part=dev needs dev=FRACTION (the share of groups held out as dev)")
    if not 1 <= repeat <= MAX_REPEAT or (limit is not None and limit < 1):
        raise DataError(f"data source {spec!r}: repeat must be from 1 to {MAX_REPEAT} and limit positive")
    default_name = Path(location.rstrip("/")).name
    if default_name.startswith("manifest."):
        default_name = Path(location).parent.name
    return SourceSpec(
        location=location,
        name=values.get("name", default_name) or "data",
        role=role,
        group=values.get("group") or None,
        eval_fraction=eval_fraction,
        dev_fraction=dev_fraction,
        part=part,
        hold_out=tuple(filter(None, values.get("hold_out", "").split("+"))),
        limit=limit,
        repeat=repeat,
        path_column=values.get("path", "path"),
        text_column=values.get("text", "transcript"),
        hf_split=values.get("split", "train"),
    )
