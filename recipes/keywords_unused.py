"""Write a manifest of the keyword recordings that model (a)'s training did not draw, for a many-speaker check.

Model (a) trains on ``keywords:role=train,limit=500``: 500 of the 1,600 rows, drawn with seed 0. The other
1,100 (more than 50 speakers, the same six phrases) were never trained on. This writes them as
``OUT/manifest.tsv`` with absolute audio paths, for
``benchmarks/accuracy.py --test "OUT:name=keywords_unused,role=eval"``.

    python recipes/keywords_unused.py /tmp/kw [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from w2v2_onnx_finetune.data import manifest_parts
from w2v2_onnx_finetune.sources import parse_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--spec", default="role=train,limit=500", help="the training spec's keys (as in the recipes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = (args.data / "keywords").resolve()
    _, drawn, _ = manifest_parts(parse_source(f"{folder}:{args.spec}"), seed=args.seed)
    used = {u.row for u in drawn}  # 1-based rows, the header being row 1
    with open(folder / "manifest.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    args.out.mkdir(parents=True, exist_ok=True)
    kept = [r for number, r in enumerate(rows, start=2) if number not in used]
    with open(args.out / "manifest.tsv", "w", encoding="utf-8") as handle:
        handle.write("path\ttranscript\n")
        for row in kept:
            handle.write(f"{folder / row['path']}\t{row['transcript']}\n")
    print(f"{len(kept)} of {len(rows)} rows not drawn for training -> {args.out / 'manifest.tsv'}")


if __name__ == "__main__":
    main()
