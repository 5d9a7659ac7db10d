"""The export command line: end to end on temporary files, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_export import small_standard_checkpoint

from w2v2_onnx.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_standard_checkpoint(tmp_path_factory.mktemp("ckpt_cli"))


def test_export_subcommand_writes_directory(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "model"
    args = [
        "export",
        str(checkpoint),
        str(out),
        "--precision",
        "fp32,int8",
        "--int8-method",
        "dynamic",
        "--validation-seconds",
        "1.0",
        "--no-optimize",
        "--calibration-items",
        "2",
        "--max-int8-cer",
        "1",
        "--windows",
        "4,0.5",
    ]
    assert main(args) == 0
    config = json.loads((out / "w2v2_onnx.json").read_text())
    assert config["files"] == {"fp32": "model.fp32.onnx", "int8": "model.int8.onnx"}
    assert config["windows"] == {"chunk_length": 4.0, "chunk_context": 0.5}
    printed = capsys.readouterr().out
    assert "fp32:" in printed and "int8:" in printed
    from w2v2_onnx import Transcriber

    assert Transcriber(out).config.windows == (4.0, 0.5)  # the runtime takes the model's own windows


def test_calibration_folder_is_used(checkpoint: Path, tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # 8 kHz files: resampled to the model's 16 kHz
        sf.write(audio_dir / f"{i}.wav", (rng.standard_normal(8000) * 0.1).astype(np.float32), 8000)
    out = tmp_path / "model"
    args = ["export", str(checkpoint), str(out), "--precision", "int8", "--int8-method", "static"]
    args += [
        "--calibration",
        str(audio_dir),
        "--validation-seconds",
        "1.0",
        "--max-int8-cer",
        "1",
        "--no-optimize",
    ]
    assert main(args) == 0
    report = json.loads((out / "export_report.json").read_text())
    assert report["parity"]["int8"]["transcripts_total"] == 2
    assert any("2 clips (2.0 s)" in note for note in report["notes"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int4"], "precisions"),
        (
            ["--max-fp32-diff", "0", "--validation-seconds", "1.0", "--no-optimize"],
            "fp32 graph differs from PyTorch",
        ),
        (["--calibration", "/no/such/folder", "--precision", "int8"], "calibration source"),
        (["--windows", "1,0.6"], "windows (1.0, 0.6): chunk_length 1.0 s must exceed twice chunk_context"),
        (["--windows", "10"], "windows must be (chunk_length, chunk_context)"),
        (["--windows", "10,-1"], "chunk_context must be a positive number"),
    ],
)
def test_errors_print_one_line_and_exit_1(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert main(["export", str(checkpoint), str(tmp_path / "m"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("w2v2-onnx export: error:") and message in err
    assert "\n" not in err
    if "--windows" in extra:
        assert not (tmp_path / "m").exists()  # refused before anything is written


def test_module_entry_point_help_does_not_import_torch() -> None:
    code = (
        "import sys; from w2v2_onnx.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    result = subprocess.run(
        [sys.executable, "-m", "w2v2_onnx_export", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--precision" in result.stdout
