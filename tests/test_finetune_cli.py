"""The fine-tuning CLI: registered in the top-level CLI, light at import, schedule helper."""

from __future__ import annotations

import subprocess
import sys

from w2v2_onnx.cli import build_parser
from w2v2_onnx_finetune.schedule import time_linear_factor


def test_finetune_subcommand_is_registered() -> None:
    args = build_parser().parse_args(["finetune", "--data", "x.tsv", "--output-dir", "out", "--seed", "3"])
    assert args.seed == 3 and args.start == "scratch:small" and args.data == ["x.tsv"]
    assert callable(args._run)


def test_cli_module_imports_no_torch() -> None:
    code = ("import sys, w2v2_onnx_finetune.cli; "
            "print(any(m in sys.modules for m in ('torch', 'transformers', 'datasets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_time_linear_schedule() -> None:
    assert time_linear_factor(0, 0.0, warmup_steps=10, budget_s=100) == 0.1
    assert time_linear_factor(50, 50.0, warmup_steps=10, budget_s=100) == 0.5
    assert time_linear_factor(90, 150.0, warmup_steps=10, budget_s=100) == 0.0


def test_training_budget_takes_the_earlier_of_max_wall_minutes_and_train_until() -> None:
    from w2v2_onnx_finetune.train import MIN_BUDGET_S, _training_budget_s

    assert _training_budget_s(None, None) is None
    assert _training_budget_s(2.0, None) == 120.0
    assert _training_budget_s(2.0, 1_000.0, now=900.0) == 100.0      # the deadline comes first
    assert _training_budget_s(1.0, 1_000.0, now=800.0) == 60.0       # the minutes come first
    assert _training_budget_s(None, 1_000.0, now=700.0) == 300.0
    assert _training_budget_s(5.0, 1_000.0, now=995.0) == MIN_BUDGET_S  # past or nearly: a short run anyway
