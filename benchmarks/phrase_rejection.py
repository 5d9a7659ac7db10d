"""Rejecting inputs that say none of the phrases: ``PhraseMatch.margin`` (and ``probability``) as thresholds.

A script, not a test. In-set recordings say one of the phrases; out-of-set recordings say something else.
Each threshold is chosen on dev data only, as the value that rejects a set share (default 5%) of the dev
in-set recordings, and then applied to the test data: how many in-set recordings are accepted with the
right phrase, accepted with a wrong one or rejected, and how many out-of-set recordings are falsely
accepted. The in-set source is split in two halves (seeded) for dev and test when it has no dev part::

    python benchmarks/phrase_rejection.py --model-dir w2v2_onnx/models/default \\
        --in-set "/tmp/kw:name=keywords_unused,role=eval" \\
        --out-dev "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1,part=dev" \\
        --out-test "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1" \\
        --out-test "../shared/data/fsdd:group=speaker,hold_out=theo" \\
        --out benchmarks/results/phrase_rejection_small_fb_v4_bundled.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out, seeded_halves  # noqa: E402
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402


def scored(transcriber: Transcriber, rows: list[tuple[str, str]], phrases: list[str]) -> list[dict]:
    """Each row's reference, best phrase, margin and probability."""
    matches = [transcriber.match_phrases(path, phrases) for path, _ in rows]
    return [{"reference": ref, "phrase": m.phrase, "margin": m.margin, "probability": m.probability}
            for (_, ref), m in zip(rows, matches, strict=True)]


def in_set_outcome(rows: list[dict], key: str, threshold: float) -> dict[str, float]:
    accepted = [r for r in rows if r[key] >= threshold]
    right = sum(r["phrase"] == r["reference"] for r in accepted)
    return {"accepted_right": right / len(rows), "accepted_wrong": (len(accepted) - right) / len(rows),
            "rejected": 1 - len(accepted) / len(rows)}


def false_accepts(rows: list[dict], key: str, threshold: float) -> float:
    return float(np.mean([r[key] >= threshold for r in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="default: the bundled model")
    parser.add_argument("--in-set", required=True, metavar="SOURCE", help="recordings that say one of the phrases")
    parser.add_argument("--out-dev", action="append", default=[], metavar="SOURCE",
                        help="out-of-set recordings for choosing the thresholds")
    parser.add_argument("--out-test", action="append", required=True, metavar="SOURCE",
                        help="out-of-set recordings for measuring them")
    parser.add_argument("--phrases", nargs="+", help="default: the in-set source's distinct transcripts")
    parser.add_argument("--reject-share", type=float, default=0.05,
                        help="share of dev in-set recordings each threshold rejects")
    parser.add_argument("--seed", type=int, default=0, help="split seed (the fine-tuning stage's, and the halves')")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    in_name, in_rows = held_out(args.in_set, args.seed)
    phrases = args.phrases or sorted({t for _, t in in_rows})
    in_dev, in_test = seeded_halves(in_rows, args.seed)
    transcriber = Transcriber(args.model_dir, device="cpu", precision="int8", threads=args.threads)
    dev_in = scored(transcriber, in_dev, phrases)
    test_in = scored(transcriber, in_test, phrases)
    out_dev = {name: scored(transcriber, rows, phrases)
               for name, rows in (held_out(spec, args.seed) for spec in args.out_dev)}
    out_test = {name: scored(transcriber, rows, phrases)
                for name, rows in (held_out(spec, args.seed) for spec in args.out_test)}
    result: dict = {"kind": "phrase_rejection", "machine": machine_info(), "model_dir": args.model_dir or "bundled",
                    "in_set": in_name, "phrases": phrases, "dev_in": len(dev_in), "test_in": len(test_in),
                    "reject_share": args.reject_share, "rules": {}}
    for key in ("margin", "probability"):
        threshold = float(np.quantile([r[key] for r in dev_in], args.reject_share))
        entry = {"threshold": threshold, "dev_in": in_set_outcome(dev_in, key, threshold),
                 "dev_false_accepts": {n: false_accepts(r, key, threshold) for n, r in out_dev.items()},
                 "test_in": in_set_outcome(test_in, key, threshold),
                 "test_false_accepts": {n: false_accepts(r, key, threshold) for n, r in out_test.items()},
                 "no_threshold_test_in": in_set_outcome(test_in, key, -np.inf)}
        result["rules"][key] = entry
        print(f"{key:11s} threshold {threshold:9.3f} (rejects {args.reject_share:.0%} of dev {in_name}): test "
              f"{in_name} right {entry['test_in']['accepted_right']:.3f} wrong {entry['test_in']['accepted_wrong']:.3f}"
              f" rejected {entry['test_in']['rejected']:.3f}; false accepts "
              + ", ".join(f"{n} {v:.3f}" for n, v in entry["test_false_accepts"].items()))
    # The margin's trade-off on the test data, for reading only (no threshold is chosen from it).
    quantiles = np.quantile([r["margin"] for r in test_in], [0.01, 0.02, 0.05, 0.1, 0.2])
    result["test_curve"] = [
        {"threshold": float(q), **in_set_outcome(test_in, "margin", float(q)),
         **{f"false_accepts_{n}": false_accepts(r, "margin", float(q)) for n, r in out_test.items()}}
        for q in quantiles]
    if args.out:
        write_json(result, args.out)
    else:
        print(json.dumps(result["rules"], indent=1))


if __name__ == "__main__":
    main()
