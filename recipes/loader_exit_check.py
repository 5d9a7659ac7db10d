#!/usr/bin/env python3
"""How long a finished fine-tuning run takes to exit with persistent DataLoader workers, with and without
``CTCTrainer.stop_loader_workers`` (the device check of the fix for run 4's 44 s wait at exit).

    python recipes/loader_exit_check.py [--workers 12] [--out results.json]

Writes the tiny tone corpus of the fine-tuning tests (tests/tone_corpus.py), then runs the fine-tuning CLI in a fresh
process twice per variant: as it is ("stopped"), and with ``stop_loader_workers`` replaced by a no-op
("kept", the code before the fix). Each run trains a tiny model for a few steps with ``--num-workers N`` and
three evaluation sets, so training and evaluation loaders both keep workers. Reported per run: the whole
process's wall time and the seconds from the CLI's final output to the process's exit. On CUDA the Trainer
pins memory, the condition of pytorch/pytorch#81794; on a CPU the two variants should exit alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from tone_corpus import write_tone_corpus  # noqa: E402

_RUN = r"""
import sys, time
keep = sys.argv[1] == "kept"
if keep:
    from w2v2_onnx_finetune.trainer import CTCTrainer
    CTCTrainer.stop_loader_workers = lambda self: 0
from w2v2_onnx_finetune import cli
code = cli.main(sys.argv[2:])
print(f"RETURNED {time.time():.3f}", flush=True)
sys.exit(code)
"""


def run_once(variant: str, corpus: Path, out: Path, workers: int) -> dict:
    data = [f"{corpus}:name=tiny,group=speaker,hold_out=spk5", f"{corpus}:name=tiny_b,role=eval,limit=8",
            f"{corpus}:name=tiny_c,role=eval,limit=12"]
    args = [arg for spec in data for arg in ("--data", spec)]
    args += ["--output-dir", str(out), "--start", "scratch:tiny", "--max-steps", "6", "--batch-size", "4",
             "--eval-steps", "3", "--num-workers", str(workers), "--log-level", "WARNING"]
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", _RUN, variant, *args], capture_output=True, text=True,
                          env=os.environ | {"PYTHONUNBUFFERED": "1"}, timeout=900)
    ended = time.time()
    returned = [float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("RETURNED ")]
    return {"variant": variant, "exit_code": proc.returncode, "wall_s": round(ended - started, 2),
            "exit_after_return_s": round(ended - returned[0], 2) if returned else None,
            "stderr_tail": proc.stderr[-400:] if proc.returncode else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    facts = {"cuda": torch.cuda.is_available(),
             "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
             "torch": torch.__version__, "workers": args.workers, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        write_tone_corpus(corpus, count=48, speakers=6)
        for round_ in range(args.rounds):
            for variant in ("stopped", "kept"):
                result = run_once(variant, corpus, Path(tmp) / f"run-{variant}-{round_}", args.workers)
                print(json.dumps(result), flush=True)
                facts["runs"].append(result)
    if args.out:
        args.out.write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")
    return 0 if all(run["exit_code"] == 0 for run in facts["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
