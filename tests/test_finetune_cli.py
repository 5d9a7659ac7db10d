"""The fine-tuning CLI: registered in the top-level CLI, light at import, schedule helper."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from w2v2_onnx.cli import build_parser
from w2v2_onnx_finetune import cli
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


@pytest.mark.parametrize("flags, match", [
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--eval-batch-size", "-2"], "--eval-batch-size must be a positive integer"),
    (["--grad-accum", "0"], "--grad-accum must be a positive integer"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number above 0"),
    (["--learning-rate", "0"], "--learning-rate must be a finite number above 0"),
    (["--warmup", "-1"], "--warmup must be a finite number >= 0"),
    (["--epochs", "0"], "--epochs must be a finite number above 0"),
    (["--max-steps", "-5"], "--max-steps must be a positive integer, or -1"),
    (["--max-wall-minutes", "0"], "--max-wall-minutes must be a finite number of minutes above 0"),
    (["--eval-steps", "0"], "--eval-steps must be a positive integer"),
    (["--threads", "0"], "--threads must be an integer from 1 to 1024"),
    (["--num-workers", "-1"], "--num-workers must be an integer >= 0"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 2\\*\\*32 - 1"),
    (["--scheduler", "bogus"], "--scheduler must be one of linear"),
    (["--mask-time-prob", "2"], "--mask-time-prob must be a probability from 0 to 1"),
    (["--layerdrop", "1.5"], "--layerdrop must be a probability from 0 to 1"),
    (["--hidden-dropout", "nan"], "--hidden-dropout must be a probability from 0 to 1"),
    (["--mask-time-length", "0"], "--mask-time-length must be an integer from 1 to 10000"),
    (["--logging-steps", "0"], "--logging-steps must be a positive integer"),
    (["--resume"], "holds no checkpoint-<step> folder"),
    (["--start", "scratch:huge"], "--start must be scratch:SIZE with SIZE one of base, small, small-fb, tiny"),
])
def test_bad_training_flags_are_one_line_errors_before_any_loading(tmp_path, capsys, flags, match) -> None:
    status = cli.main(["--data", str(tmp_path / "never_read.tsv"), "--output-dir", str(tmp_path / "run"),
                       "--start", "scratch:tiny", *flags])
    assert status == 1
    err = capsys.readouterr().err
    assert re.search(match, err) and "Traceback" not in err


def test_data_source_repeat_is_bounded() -> None:
    from w2v2_onnx.errors import DataError
    from w2v2_onnx_finetune.sources import parse_source

    with pytest.raises(DataError, match="repeat must be from 1 to 100"):
        parse_source("x.tsv:repeat=1000000000")


def test_evaluate_refuses_a_folder_that_is_no_checkpoint(tmp_path, capsys) -> None:
    from w2v2_onnx_finetune import evaluate

    with pytest.raises(SystemExit) as info:
        evaluate.main(["--checkpoint", str(tmp_path), "--data", "x.tsv"])
    assert info.value.code == 2 and "not a checkpoint folder" in capsys.readouterr().err
