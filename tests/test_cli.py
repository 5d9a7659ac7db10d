"""The command line end to end on temporary files."""

import json

import numpy as np
import pytest
import soundfile as sf
import tone_model as tm

from w2v2_onnx.cli import main


@pytest.fixture
def audio_dir(tmp_path):
    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "one.wav", tm.synthesize("ONE"), tm.RATE)
    sf.write(folder / "sub" / "two.flac", tm.synthesize("TWO WORDS", 22050), 22050)
    return folder


def test_single_file_prints_text(tone_model_dir, audio_dir, capsys):
    assert main(["transcribe", str(audio_dir / "one.wav"), "--model", str(tone_model_dir), "--device", "cpu"]) == 0
    assert capsys.readouterr().out == "ONE\n"


def test_directory_and_glob_expand(tone_model_dir, audio_dir, capsys):
    assert main(["transcribe", str(audio_dir), "--model", str(tone_model_dir), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == ["ONE", "TWO WORDS"]
    assert main(["transcribe", str(audio_dir / "**" / "*.flac"), "--model", str(tone_model_dir)]) == 0
    assert capsys.readouterr().out == "TWO WORDS\n"


def test_json_lines(tone_model_dir, audio_dir, capsys):
    assert main(["transcribe", str(audio_dir / "one.wav"), "--model", str(tone_model_dir), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "ONE" and record["source"].endswith("one.wav")
    assert record["words"][0]["word"] == "ONE" and record["duration"] > 0


def test_trim_silence_flag(tone_model_dir, tmp_path, capsys):
    path = tmp_path / "padded.wav"
    sf.write(path, tm.synthesize("ONE", lead=2.0), tm.RATE)
    assert main(["transcribe", str(path), "--model", str(tone_model_dir), "--format", "json", "--trim-silence"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "ONE" and record["options"]["trim_silence"] is True
    assert record["words"][0]["start"] == pytest.approx(2.0)
    assert record["duration"] == pytest.approx(sf.info(path).duration)
    assert main(["transcribe", str(path), "--model", str(tone_model_dir), "--format", "json", "--no-trim-silence"]) == 0
    assert "trim_silence" not in json.loads(capsys.readouterr().out)["options"]
    two = tmp_path / "two.wav"
    sf.write(two, np.concatenate([tm.synthesize("ONE", lead=1.0), tm.synthesize("TWO", lead=0.5)]), tm.RATE)
    assert main(["transcribe", str(two), "--model", str(tone_model_dir), "--split-at-pauses", "0.3"]) == 0
    assert capsys.readouterr().out == "ONE TWO\n"
    assert main(["transcribe", str(two), "--model", str(tone_model_dir), "--split-at-pauses", "0"]) == 2
    assert "split_at_pauses must be a number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["txt", "json", "srt", "vtt"])
def test_output_dir_formats(tone_model_dir, audio_dir, tmp_path, fmt):
    out = tmp_path / "out"
    assert main(["transcribe", str(audio_dir), "--model", str(tone_model_dir), "--format", fmt,
                 "--output-dir", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"one.{fmt}", f"two.{fmt}"]
    text = (out / f"two.{fmt}").read_text()
    assert "TWO WORDS" in text
    if fmt == "srt":
        assert text.startswith("1\n00:00:00,")
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n00:00:00.")


def test_failing_file_is_reported_and_others_still_transcribed(tone_model_dir, audio_dir, capsys):
    (audio_dir / "broken.wav").write_bytes(b"RIFF" + bytes(64))
    code = main(["transcribe", str(audio_dir), str(audio_dir / "missing.wav"), "--model", str(tone_model_dir)])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.wav" in captured.err and "missing.wav" in captured.err
    assert "ONE" in captured.out and "TWO WORDS" in captured.out


def test_bad_model_exits_nonzero_with_message(audio_dir, tmp_path, capsys):
    assert main(["transcribe", str(audio_dir / "one.wav"), "--model", str(tmp_path / "nomodel")]) == 2
    assert "model not found" in capsys.readouterr().err


def test_subtitles_for_many_files_need_output_dir(tone_model_dir, audio_dir, capsys):
    assert main(["transcribe", str(audio_dir), "--model", str(tone_model_dir), "--format", "srt"]) == 2
    assert "--output-dir" in capsys.readouterr().err


def test_formats_render_exact_timestamps():
    from w2v2_onnx.formats import to_srt, to_vtt
    from w2v2_onnx.results import Transcription, Word

    result = Transcription("HI THERE", (Word(0.5, 0.9, "HI", 0.9), Word(3661.25, 3661.5, "THERE", 0.8)), 3662.0)
    assert to_srt(result) == ("1\n00:00:00,500 --> 00:00:00,900\nHI\n\n"
                              "2\n01:01:01,250 --> 01:01:01,500\nTHERE\n")
    assert to_vtt(result).splitlines()[2] == "00:00:00.500 --> 00:00:00.900"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "w2v2-onnx" in capsys.readouterr().out


def test_empty_text_for_silence(tone_model_dir, tmp_path, capsys):
    sf.write(tmp_path / "silence.wav", np.zeros(8000, np.float32), tm.RATE)
    assert main(["transcribe", str(tmp_path / "silence.wav"), "--model", str(tone_model_dir)]) == 0
    assert capsys.readouterr().out == "\n"


def test_readme_main_job_runs_on_the_bundled_model(capsys):
    from pathlib import Path

    import w2v2_onnx
    from w2v2_onnx.model_dir import BUNDLED_MODEL_DIR

    if not (BUNDLED_MODEL_DIR / "w2v2_onnx.json").exists():
        pytest.skip("no bundled model in this installation")
    sample = Path(w2v2_onnx.__file__).parent / "assets" / "sample.wav"
    assert main(["transcribe", str(sample)]) == 0
    assert capsys.readouterr().out.endswith("\n")
    result = w2v2_onnx.transcribe(sample)
    assert result.duration == pytest.approx(3.89, abs=0.01)


def test_missing_optional_dependency_is_a_clear_message(monkeypatch, capsys):
    import w2v2_onnx.cli as cli

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["export"].set_defaults(_run=needs_torch)
    assert cli.main(["export", "ckpt", "out"]) == 2
    assert "pip install 'w2v2-onnx[export]'" in capsys.readouterr().err


def test_directory_without_audio_and_unusable_output_dir(tone_model_dir, audio_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["transcribe", str(tmp_path / "empty"), "--model", str(tone_model_dir)]) == 1
    assert "directory holds no audio files (.aif" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("x")
    assert main(["transcribe", str(audio_dir / "one.wav"), "--model", str(tone_model_dir),
                 "--output-dir", str(tmp_path / "a_file")]) == 2
    assert "--output-dir" in capsys.readouterr().err and not (tmp_path / "a_file").is_dir()


def test_bad_options_are_reported_once_before_any_file(tone_model_dir, audio_dir, capsys):
    code = main(["transcribe", str(audio_dir), "--model", str(tone_model_dir), "--decoder", "beam",
                 "--alpha", "nan"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("alpha must be a finite number") == 1 and "inputs failed" not in err


def test_subtitle_text_cannot_break_cues_and_unknown_format_is_typed():
    from w2v2_onnx.errors import InvalidOptionError
    from w2v2_onnx.formats import render, to_srt, to_vtt
    from w2v2_onnx.results import Transcription, Word

    result = Transcription("A-->B X\n\nY <b>&", (Word(0.0, 0.5, "A-->B", 0.9), Word(0.6, 0.9, "X\n\nY", 0.9),
                                                 Word(1.0, 1.2, "<b>&", 0.9)), 1.5)
    srt = to_srt(result)
    assert srt.count("-->") == 1 and "X Y" in srt and "\n\n" not in srt.strip()
    vtt = to_vtt(result)
    assert vtt.count("-->") == 1 and "&lt;b&gt;&amp;" in vtt and "A--&gt;B" in vtt
    with pytest.raises(InvalidOptionError, match="format must be one of"):
        render(result, "xml")


def test_non_finite_numbers_in_a_hand_built_result():
    """The decoders never produce NaN (the runtime raises InferenceError first), but a hand-built result
    might: JSON writes null (staying valid JSON), subtitles refuse it with a typed error."""
    import json

    from w2v2_onnx.errors import InvalidOptionError
    from w2v2_onnx.formats import render, to_json_line
    from w2v2_onnx.results import Transcription, Word

    result = Transcription("HI", (Word(0.5, float("nan"), "HI", float("inf")),), 1.0, {"alpha": float("-inf")})
    data = json.loads(render(result, "json", "a.wav"))
    assert data["words"][0] == {"start": 0.5, "end": None, "word": "HI", "probability": None}
    assert data["options"] == {"alpha": None} and data["source"] == "a.wav"
    assert json.loads(to_json_line(result)) == {k: v for k, v in data.items() if k != "source"}
    for fmt in ("srt", "vtt"):
        with pytest.raises(InvalidOptionError, match="subtitle times must be finite"):
            render(result, fmt)


def test_standard_input_is_one_encoded_file(tone_model_dir, audio_dir, tmp_path):
    import subprocess
    import sys

    def run(*args, data):
        return subprocess.run([sys.executable, "-m", "w2v2_onnx", "transcribe", *args, "--model", str(tone_model_dir)],
                              input=data, capture_output=True, timeout=120)

    flac = (audio_dir / "sub" / "two.flac").read_bytes()
    done = run("-", data=flac)
    assert done.returncode == 0 and done.stdout.decode() == "TWO WORDS\n", done.stderr
    done = run("-", "--format", "json", data=flac)
    record = json.loads(done.stdout)
    assert record["source"] == "<stdin>" and record["text"] == "TWO WORDS"
    done = run("-", "--output-dir", str(tmp_path / "out"), data=flac)
    assert done.returncode == 0 and (tmp_path / "out" / "stdin.txt").read_text() == "TWO WORDS\n"
    done = run("-", data=b"")
    assert done.returncode == 1 and "error: <stdin>: audio bytes are empty" in done.stderr.decode()
    done = run("-", str(audio_dir / "one.wav"), data=flac)
    assert done.returncode == 2 and "- (standard input) must be the only input" in done.stderr.decode()
