"""Manifests: formats, bad rows reported with file and row, group splits without leaks."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from w2v2_onnx.errors import DataError
from w2v2_onnx_finetune.data import load_source
from w2v2_onnx_finetune.manifest import read_manifest
from w2v2_onnx_finetune.sources import parse_source
from w2v2_onnx_finetune.splits import split_by_group


def _wav(path, seconds: float = 0.5, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def test_tsv_bad_rows_named_with_row_numbers(tmp_path, caplog) -> None:
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav")
    (tmp_path / "manifest.tsv").write_text(
        "path\ttranscript\n"
        "a.wav\thello there\n"  # row 2: fine
        "missing.wav\tanything\n"  # row 3: no audio
        "b.wav\t...\n"  # row 4: empty after normalisation
        "b.wav\tok\n",  # row 5: fine
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(tmp_path)
    assert [u.text for u in manifest.utterances] == ["HELLO THERE", "OK"]
    assert [u.row for u in manifest.utterances] == [2, 5]
    assert [(b.row, b.reason.split(":")[0]) for b in manifest.bad_rows] == [
        (3, "audio file not found"), (4, "empty transcript (raw")]
    assert "manifest.tsv:3" in caplog.text and "manifest.tsv:4" in caplog.text


def test_corrupt_audio_is_reported_with_row(tmp_path, caplog) -> None:
    _wav(tmp_path / "good.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wav file")
    (tmp_path / "m.csv").write_text("path,transcript\ngood.wav,yes\nbad.wav,no\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        data = load_source(parse_source(f"{tmp_path / 'm.csv'}:role=train"))
    assert len(data.train) == 1 and data.train[0].text == "YES"
    assert len(data.bad_rows) == 1 and data.bad_rows[0].row == 3
    assert "corrupt audio" in data.bad_rows[0].reason
    assert "m.csv:3" in caplog.text


def test_jsonl_and_resampling(tmp_path) -> None:
    _wav(tmp_path / "x.wav", seconds=1.0, rate=8000)
    lines = [json.dumps({"path": "x.wav", "transcript": "Nine", "speaker": "s1"})]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_source(parse_source(f"{tmp_path / 'm.jsonl'}:role=train"))
    assert data.train[0].text == "NINE"
    assert len(data.train[0].audio) == 16000  # 1 s at 8 kHz becomes 1 s at 16 kHz


def test_malformed_manifests_raise_with_location(tmp_path) -> None:
    (tmp_path / "m.tsv").write_text("file\ttext\na.wav\thi\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m\.tsv:2: missing column"):
        read_manifest(tmp_path / "m.tsv")
    (tmp_path / "j.jsonl").write_text('{"path": "a.wav", "transcript": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.jsonl:2: not valid JSON"):
        read_manifest(tmp_path / "j.jsonl", check_audio=False)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="unknown manifest type"):
        (tmp_path / "m.txt").write_text("x")
        read_manifest(tmp_path / "m.txt")


def test_parse_source_options_and_errors() -> None:
    spec = parse_source("../shared/data/fsdd:group=speaker,hold_out=theo+lucas,limit=10,repeat=2")
    assert (spec.name, spec.group, spec.hold_out, spec.limit, spec.repeat) == (
        "fsdd", "speaker", ("theo", "lucas"), 10, 2)
    assert parse_source("/data/cathy/manifest.tsv").name == "cathy"
    with pytest.raises(DataError, match="bad option"):
        parse_source("x:colour=blue")
    with pytest.raises(DataError, match="role"):
        parse_source("x:role=test")


def test_group_split_never_leaks_and_is_seeded(tmp_path) -> None:
    rows = [f"u{i}.wav\tword\tp{i % 7}" for i in range(42)]
    (tmp_path / "m.tsv").write_text("path\ttranscript\tprompt_id\n" + "\n".join(rows) + "\n")
    manifest = read_manifest(tmp_path / "m.tsv", group_column="prompt_id", check_audio=False)
    train, held = split_by_group(manifest.utterances, eval_fraction=0.3, hold_out=["p0"], seed=3)
    train_groups, held_groups = {u.group for u in train}, {u.group for u in held}
    assert not train_groups & held_groups
    assert "p0" in held_groups and len(held_groups) == 1 + 2  # p0 plus round(0.3 * 6)
    assert len(train) + len(held) == 42
    again = split_by_group(manifest.utterances, eval_fraction=0.3, hold_out=["p0"], seed=3)
    assert [u.row for u in again[1]] == [u.row for u in held]
    held_sets = {frozenset(u.group for u in split_by_group(manifest.utterances, eval_fraction=0.3,
                                                            seed=s)[1]) for s in range(10)}
    assert len(held_sets) > 1  # the seed changes which groups are held out
    with pytest.raises(DataError, match="not found"):
        split_by_group(manifest.utterances, hold_out=["nobody"])


def test_dev_part_is_disjoint_and_matches_a_wider_eval_split(tmp_path) -> None:
    rows = [f"u{i}.wav\tword\tp{i % 20}" for i in range(60)]
    (tmp_path / "m.tsv").write_text("path\ttranscript\tprompt_id\n" + "\n".join(rows) + "\n")
    utterances = read_manifest(tmp_path / "m.tsv", group_column="prompt_id", check_audio=False).utterances
    train, test = split_by_group(utterances, eval_fraction=0.1, dev_fraction=0.2, seed=1)
    train_dev, dev = split_by_group(utterances, eval_fraction=0.1, dev_fraction=0.2, seed=1, part="dev")
    groups = [{u.group for u in part} for part in (train, test, dev)]
    assert [len(g) for g in groups] == [14, 2, 4]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert [u.row for u in train_dev] == [u.row for u in train]
    # The test part is the eval=0.1 split's; training is exactly that of eval=0.3.
    assert [u.row for u in test] == [u.row for u in split_by_group(utterances, eval_fraction=0.1, seed=1)[1]]
    assert [u.row for u in train] == [u.row for u in split_by_group(utterances, eval_fraction=0.3, seed=1)[0]]
    assert parse_source("x:eval=0.1,dev=0.2,part=dev").part == "dev"
    with pytest.raises(DataError, match="part"):
        parse_source("x:part=test")
    with pytest.raises(DataError, match="sum to less than 1"):
        split_by_group(utterances, eval_fraction=0.5, dev_fraction=0.5)


def test_datasets_save_to_disk_source(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    t = np.arange(8000) / 8000
    rows = {
        "audio": [{"array": (0.2 * np.sin(2 * np.pi * 200 * t)).tolist(), "sampling_rate": 8000}] * 3,
        "text": ["Hello there", "", "it's me"],
        "speaker": ["a", "b", "b"],
    }
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "ds"))
    data = load_source(parse_source(f"{tmp_path / 'ds'}:group=speaker,hold_out=b"))
    assert [e.text for e in data.train] == ["HELLO THERE"]
    assert [e.text for e in data.eval] == ["IT'S ME"]
    assert len(data.train[0].audio) == 16000  # resampled from 8 kHz
    assert [(b.row, b.reason) for b in data.bad_rows] == [(1, "empty transcript")]


def test_training_part_transcripts_leave_out_held_out_text(tmp_path) -> None:
    from w2v2_onnx_finetune.transcripts import main, part_transcripts

    names = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
    rows = [f"u{i}.wav\tprompt {names[i % 10]}\tp{i % 10}" for i in range(30)]
    for i in range(30):
        (tmp_path / f"u{i}.wav").write_bytes(b"")  # rows are not decoded, only their files must exist
    (tmp_path / "m.tsv").write_text("path\ttranscript\tprompt_id\n" + "\n".join(rows) + "\n")
    spec = f"{tmp_path / 'm.tsv'}:group=prompt_id,eval=0.2,dev=0.1"
    train = part_transcripts([spec], seed=0)
    held = part_transcripts([spec], seed=0, part="held-out")
    dev = part_transcripts([spec + ",part=dev"], seed=0, part="held-out")
    assert len(train) == 21 and len(held) == 6 and len(dev) == 3
    assert not set(train) & (set(held) | set(dev))
    out = tmp_path / "train.txt"
    assert main(["--data", spec, "-o", str(out)]) == 0
    assert out.read_text().splitlines() == train


def test_too_short_and_truncated_audio_are_bad_rows(tmp_path) -> None:
    _wav(tmp_path / "good.wav")
    _wav(tmp_path / "short.wav", seconds=0.01)
    _wav(tmp_path / "full.wav", seconds=1.0)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # the header still declares 1 s
    (tmp_path / "m.tsv").write_text("path\ttranscript\ngood.wav\tyes\nshort.wav\tno\ncut.wav\tcut\n",
                                    encoding="utf-8")
    source = load_source(parse_source(f"{tmp_path / 'm.tsv'}:role=train"))
    assert [e.text for e in source.train] == ["YES"]
    reasons = {b.row: b.reason for b in source.bad_rows}
    assert "shorter than 0.1 s" in reasons[3] and "truncated" in reasons[4]


def test_non_utf8_manifest_and_unknown_manifest_suffix(tmp_path) -> None:
    _wav(tmp_path / "a.wav")
    (tmp_path / "latin1.tsv").write_bytes("path\ttranscript\na.wav\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_manifest(tmp_path / "latin1.tsv")
    (tmp_path / "list.txt").write_text("path\ttranscript\na.wav\tyes\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown manifest type '.txt'"):
        load_source(parse_source(str(tmp_path / "list.txt")))


@pytest.mark.parametrize("location", ["{tmp}/gone", "{tmp}/gone.tsv", "./gone", "../gone/data", "a/b/c",
                                      "{tmp}/" + "z" * 5000])  # a name too long: Python 3.11's pathlib raises
def test_a_missing_local_source_is_named_not_sent_to_the_hub(tmp_path, monkeypatch, location: str) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_source(location.format(tmp=tmp_path) + ":role=train")
    with pytest.raises(DataError, match="no such file or folder"):
        load_source(spec)


@pytest.mark.parametrize("spec, match", [
    ("x.tsv:eval=0.3,eval=0.6", "'eval' is given twice"),
    ("x.tsv:role=train,eval=0.5", r"\['eval'\] split a source, but role=train"),
    ("x.tsv:role=eval,hold_out=a", "role=eval uses all its rows"),
    ("x.tsv:eval=0.3,part=dev", "part=dev needs dev=FRACTION"),
])
def test_source_specs_that_would_silently_do_something_else(spec: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_source(spec)
