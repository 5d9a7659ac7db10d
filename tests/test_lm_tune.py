"""Alpha/beta grid search on a small dev set: the LM weight that helps is found, the CLI runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.lm_tune import grid_search, main, word_error_rate
from w2v2_onnx.vocabulary import Vocabulary

DATA = Path(__file__).parent / "data"
TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
          "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
LM = DATA / "lmplz_tiny_corpus_o3.arpa"


@pytest.fixture(scope="module")
def dev() -> tuple[list[np.ndarray], list[str]]:
    data = np.load(DATA / "pyctcdecode_parity_inputs.npz")
    refs = (DATA / "pyctcdecode_parity_references.txt").read_text().splitlines()
    return [data[f"lp{i}"] for i in range(len(refs))], refs


def test_word_error_rate() -> None:
    assert word_error_rate(["A B C", "X"], ["A C", "X Y"]) == pytest.approx(2 / 4)
    with pytest.raises(InvalidOptionError):
        word_error_rate(["A"], [])


def test_grid_search_prefers_using_the_lm(dev: tuple[list[np.ndarray], list[str]]) -> None:
    log_probs, refs = dev
    decoder = BeamSearchDecoder(Vocabulary.from_tokens(TOKENS, special_tokens=TOKENS[1:4]), lm=LM,
                                lm_backend="python", beam_width=32)
    points = grid_search(decoder, log_probs, refs, 0.02, alphas=[0.0, 0.5], betas=[0.0, 1.5])
    by_setting = {(p.alpha, p.beta): p.wer for p in points}
    assert len(points) == 4 and points[0].wer == min(by_setting.values())
    assert points[0].alpha == 0.5
    assert by_setting[(0.5, 1.5)] < by_setting[(0.0, 0.0)]
    with pytest.raises(InvalidOptionError):
        grid_search(decoder.replace(), log_probs, refs, 0.02, alphas=[])


def test_tuning_command(dev: tuple[list[np.ndarray], list[str]], tmp_path: Path,
                        capsys: pytest.CaptureFixture) -> None:
    log_probs, refs = dev
    np.savez(tmp_path / "dev.npz", **{f"utt{i}": lp for i, lp in enumerate(log_probs)})
    rows = "".join(f"utt{i}\t{r}\n" for i, r in enumerate(refs))
    (tmp_path / "dev.tsv").write_text("id\ttranscript\n" + rows)
    model = tmp_path / "model"
    model.mkdir()
    config = {"vocabulary": TOKENS, "blank_id": 0, "word_delimiter": "|", "special_tokens": TOKENS[:4]}
    (model / "w2v2_onnx.json").write_text(json.dumps(config))
    status = main(["--log-probs", str(tmp_path / "dev.npz"), "--references", str(tmp_path / "dev.tsv"),
                   "--model-dir", str(model), "--lm", str(LM), "--alphas", "0", "0.5", "--betas", "1.5",
                   "--beam-width", "16", "--out", str(tmp_path / "grid.json")])
    assert status == 0
    assert "best: alpha=0.5 beta=1.5" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "grid.json").read_text())) == 2


def test_tuning_command_runs_the_model_on_audio(tone_model_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    import soundfile as sf
    import tone_model as tm

    sentences = ["THE CAT SAW A BIRD", "MY FRIEND FOUND IT AGAIN", "HE HEARD THE BALL IN THE PARK"]
    for i, text in enumerate(sentences):
        sf.write(tmp_path / f"u{i}.flac", tm.synthesize(text), tm.RATE)
    rows = "".join(f"u{i}.flac\t{t}\n" for i, t in enumerate(sentences))
    (tmp_path / "dev.tsv").write_text("path\ttranscript\n" + rows)
    status = main(["--references", str(tmp_path / "dev.tsv"), "--model-dir", str(tone_model_dir),
                   "--lm", str(LM), "--alphas", "0", "0.5", "--betas", "0", "1", "--beam-width", "8"])
    assert status == 0
    out = capsys.readouterr().out
    assert "best: alpha=0.0 beta=0.0 WER=0.0000 on 3 utterances" in out  # the tone model spells them exactly
    (tmp_path / "bad.tsv").write_text("id\ttranscript\nu0\tTHE CAT\n")
    with pytest.raises(InvalidOptionError, match="path"):
        main(["--references", str(tmp_path / "bad.tsv"), "--model-dir", str(tone_model_dir), "--lm", str(LM)])
