"""Plot a run's training curves from ``RUN/metrics.jsonl``: training loss and held-out WER/CER by step.

    python -m w2v2_onnx_finetune.plot RUN/metrics.jsonl -o RUN/curves.png [--title TEXT]
    python -m w2v2_onnx_finetune.plot FIRST/metrics.jsonl SECOND/metrics.jsonl -o curves.png

Several files are consecutive stages of one model (a run continued from the previous one's checkpoint):
their steps and minutes follow on from the stage before, and a dotted line marks where each stage starts.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from w2v2_onnx.errors import DataError


def read_curves(path: str | Path) -> tuple[list[tuple[int, float, float]], dict[str, list[tuple[int, float, float]]]]:
    """``(loss, evals)``: loss as (step, minutes, loss); evals[source] as (step, wer, cer).

    Loss records with a non-finite loss or gradient norm (a diverged run) are left out.

    Raises:
        DataError: the file is missing or holds no training log.
    """
    try:
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read training metrics from {path}: {exc}") from exc
    # a log whose gradient norm is NaN or infinite comes from a diverged interval: its loss means nothing
    loss = [(r["step"], r.get("wall_s", 0.0) / 60, r["loss"]) for r in records
            if "loss" in r and math.isfinite(r.get("grad_norm", 0.0)) and math.isfinite(r["loss"])]
    evals: dict[str, list[tuple[int, float, float]]] = {}
    for r in records:
        for key in r:
            if key.startswith("eval_") and key.endswith("_wer"):
                name = key[len("eval_"):-len("_wer")]
                evals.setdefault(name, []).append((r["step"], r[key], r.get(f"eval_{name}_cer", float("nan"))))
    if not loss:
        raise DataError(f"{path} holds no training loss records")
    return loss, evals


def read_stages(
    paths: Sequence[str | Path],
) -> tuple[list[tuple[int, float, float]], dict[str, list[tuple[int, float, float]]], list[int]]:
    """:func:`read_curves` of consecutive training stages, with steps and minutes following on; also the
    step at which each stage after the first starts."""
    loss: list[tuple[int, float, float]] = []
    evals: dict[str, list[tuple[int, float, float]]] = {}
    starts: list[int] = []
    step_offset, minute_offset = 0, 0.0
    for index, path in enumerate(paths):
        stage_loss, stage_evals = read_curves(path)
        if index:
            starts.append(step_offset)
        loss.extend((step + step_offset, minutes + minute_offset, value) for step, minutes, value in stage_loss)
        for name, points in stage_evals.items():
            evals.setdefault(name, []).extend((step + step_offset, wer, cer) for step, wer, cer in points)
        step_offset, minute_offset = loss[-1][0], loss[-1][1]
    return loss, evals, starts


def plot_curves(
    path: str | Path | Sequence[str | Path], out: str | Path, *, title: str | None = None, smooth: int = 10
) -> Path:
    """Write a two-panel PNG: smoothed training loss, and held-out WER (solid) / CER (dashed) per source.

    ``path`` may list several ``metrics.jsonl`` files: consecutive stages of one model (see the module doc).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    loss, evals, starts = read_stages(paths)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [s for s, _, _ in loss]
    values = [v for _, _, v in loss]
    smoothed = [sum(values[max(0, i - smooth + 1):i + 1]) / len(values[max(0, i - smooth + 1):i + 1])
                for i in range(len(values))]
    left.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.8)
    left.plot(steps, smoothed, color="tab:blue", label=f"training CTC loss ({smooth}-point mean)")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    top = left.secondary_xaxis("top", functions=(_interp(steps, [m for _, m, _ in loss]),
                                                 _interp([m for _, m, _ in loss], steps)))
    top.set_xlabel("training minutes")
    for index, (name, points) in enumerate(sorted(evals.items())):
        colour = f"C{index}"
        right.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=colour, label=f"{name} WER")
        right.plot([p[0] for p in points], [p[2] for p in points], marker="s", linestyle="--", color=colour,
                   label=f"{name} CER")
    for start in starts:
        for axis in (left, right):
            axis.axvline(start, color="grey", linestyle=":", linewidth=1)
    right.set_xlabel("step")
    right.set_ylabel("held-out error rate (greedy)")
    right.set_ylim(0, 1.1)
    right.grid(alpha=0.3)
    right.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _interp(xs: Sequence[float], ys: Sequence[float]):
    import numpy as np

    return lambda x: np.interp(x, xs, ys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune.plot", description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, nargs="+",
                        help="RUN/metrics.jsonl; several files are consecutive stages of one model")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    print(plot_curves(args.metrics, args.output, title=args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
