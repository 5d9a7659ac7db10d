"""The runtime on real exported graphs (tiny random wav2vec2 models of both normalization styles)."""

import json

import numpy as np
import pytest

from w2v2_onnx import Transcriber

LENGTHS = (400, 401, 3000, 12345, 16000, 40000)


@pytest.fixture(params=["group", "layer"])
def exported(request, group_norm_model, layer_norm_model):
    return group_norm_model if request.param == "group" else layer_norm_model


def _audio(seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


def test_batched_equals_single(exported):
    model = Transcriber(exported, device="cpu", precision="fp32")
    audios = _audio()
    singles = [model.transcribe(a, batch_size=1) for a in audios]
    assert any(s.text for s in singles), "random model should emit something"
    for batch_size in (2, len(audios)):
        batched = model.transcribe(audios, batch_size=batch_size)
        assert [b.text for b in batched] == [s.text for s in singles]
        assert [b.words for b in batched] == [s.words for s in singles]


def test_frames_and_word_times_follow_the_conv_geometry(exported):
    config = json.loads((exported / "w2v2_onnx.json").read_text())
    assert config["frame_step"] == 320 and config["receptive_field"] == 400
    model = Transcriber(exported, device="cpu", precision="fp32")
    log_probs, lengths = model.model.run(np.zeros((2, 16000), np.float32), np.array([16000, 8000]))
    assert lengths.tolist() == [49, 24]  # (n - 400) // 320 + 1
    assert np.allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)
    result = model.transcribe(_audio(3)[-1])
    for word in result.words:
        assert 0 <= word.start < word.end <= result.duration + 0.02
        assert round(word.start / 0.02, 6).is_integer()


def test_silence_and_shortest_input(exported):
    model = Transcriber(exported, device="cpu", precision="fp32")
    assert model.transcribe(np.zeros(0, np.float32)).text == ""
    assert isinstance(model.transcribe(np.zeros(100, np.float32)).text, str)
