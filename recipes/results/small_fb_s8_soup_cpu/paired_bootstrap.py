"""How far apart can two models' dev scores be by chance? A paired bootstrap over the dev utterances.

Usage (repository root): python recipes/results/small_fb_s8_soup_cpu/paired_bootstrap.py OUT.json BASE_MODEL
CANDIDATE_MODEL [CANDIDATE_MODEL ...]

Each model transcribes the two dev sets of the bundling rule (decide.py's: the cathy dev part and the keywords
dev half, int8, greedy). Then 10,000 times, seeded, the utterances of each set are drawn with replacement (the
same draw for every model) and the rule's statistic is recomputed: corpus CER summed over the two sets, the
candidate's minus the base's. Prints and writes, for each candidate, that difference on the real sets and the
bootstrap's 2.5th and 97.5th percentiles.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from accuracy import decision_sets  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.lm_tune import edit_distance  # noqa: E402

DATA = os.environ.get("DATA", "../shared/data")
KEYWORDS_UNUSED = os.environ.get("KEYWORDS_UNUSED", "/tmp/kw/manifest.tsv")
DRAWS = 10_000


def char_errors(model: str, sets: dict[str, list[tuple[str, str]]]) -> dict[str, np.ndarray]:
    """Per-utterance character edit counts of ``model`` on each set."""
    transcriber = Transcriber(model, precision="int8", threads=2)
    return {name: np.array([edit_distance(list(transcriber.transcribe(path, decoder="greedy").text), list(text))
                            for path, text in rows]) for name, rows in sets.items()}


def main() -> None:
    out_path, base, candidates = sys.argv[1], sys.argv[2], sys.argv[3:]
    sets = decision_sets(DATA, KEYWORDS_UNUSED)
    lengths = {name: np.array([len(text) for _, text in rows]) for name, rows in sets.items()}
    rng = np.random.default_rng(0)
    draws = {name: rng.integers(0, len(rows), size=(DRAWS, len(rows))) for name, rows in sets.items()}

    def summed_cer(errors: dict[str, np.ndarray], index: dict[str, np.ndarray] | None) -> np.ndarray | float:
        total = 0.0
        for name in sets:
            pick = index[name] if index is not None else slice(None)
            total = total + errors[name][pick].sum(axis=-1) / lengths[name][pick].sum(axis=-1)
        return total

    base_errors = char_errors(base, sets)
    result = {"base": base, "draws": DRAWS, "sets": {name: len(rows) for name, rows in sets.items()},
              "base_summed_cer": summed_cer(base_errors, None), "candidates": {}}
    for candidate in candidates:
        errors = char_errors(candidate, sets)
        diff = summed_cer(errors, draws) - summed_cer(base_errors, draws)
        low, high = np.percentile(diff, [2.5, 97.5])
        real = summed_cer(errors, None) - result["base_summed_cer"]
        result["candidates"][candidate] = {"difference": real, "ci95": [low, high],
                                           "share_of_draws_below_minus_0.010": float(np.mean(diff <= -0.010))}
        print(f"{candidate}: {real:+.4f}  95% interval [{low:+.4f}, {high:+.4f}]", flush=True)
    Path(out_path).write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
