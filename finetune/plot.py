"""Plot a run's training curves from ``RUN/metrics.jsonl``: training loss and held-out WER/CER by step.

    python -m w2v2_onnx_finetune.plot RUN/metrics.jsonl -o RUN/curves.png [--title TEXT]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from w2v2_onnx.errors import DataError


def read_curves(path: str | Path) -> tuple[list[tuple[int, float, float]], dict[str, list[tuple[int, float, float]]]]:
    """``(loss, evals)``: loss as (step, minutes, loss); evals[source] as (step, wer, cer).

    Raises:
        DataError: the file is missing or holds no training log.
    """
    try:
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read training metrics from {path}: {exc}") from exc
    loss = [(r["step"], r.get("wall_s", 0.0) / 60, r["loss"]) for r in records if "loss" in r]
    evals: dict[str, list[tuple[int, float, float]]] = {}
    for r in records:
        for key in r:
            if key.startswith("eval_") and key.endswith("_wer"):
                name = key[len("eval_"):-len("_wer")]
                evals.setdefault(name, []).append((r["step"], r[key], r.get(f"eval_{name}_cer", float("nan"))))
    if not loss:
        raise DataError(f"{path} holds no training loss records")
    return loss, evals


def plot_curves(path: str | Path, out: str | Path, *, title: str | None = None, smooth: int = 10) -> Path:
    """Write a two-panel PNG: smoothed training loss, and held-out WER (solid) / CER (dashed) per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss, evals = read_curves(path)
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
    parser.add_argument("metrics", type=Path, help="RUN/metrics.jsonl")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    print(plot_curves(args.metrics, args.output, title=args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
