"""Recovering a trainable checkpoint from an exported model directory (w2v2_onnx_finetune.from_onnx)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from w2v2_onnx.errors import ModelNotFoundError, UnsupportedModelError  # noqa: E402
from w2v2_onnx_finetune.from_onnx import main, recover_checkpoint  # noqa: E402

TRAINING_ONLY = "wav2vec2.masked_spec_embed"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A fresh tiny model with the bundled model's filterbank front-end, its checkpoint and two exports:
    fp32 + int8 without ONNX Runtime's fusions, and the default (fused) fp32 alone."""
    from transformers import Wav2Vec2ForCTC

    from w2v2_onnx_export import export_model
    from w2v2_onnx_finetune.model import init_filterbank, scratch_config
    from w2v2_onnx_finetune.vocab import build_processor

    root = tmp_path_factory.mktemp("from_onnx")
    torch.manual_seed(0)
    # Fresh layer norms are all ones and zeros: the exporter stores such equal tensors once, under one
    # parameter's name, which is what the recovery must see through.
    model = Wav2Vec2ForCTC(scratch_config("tiny", conv_dim=(16, 16), conv_kernel=(400, 3), conv_stride=(160, 2)))
    init_filterbank(model.wav2vec2.feature_extractor.conv_layers[0].conv, sample_rate=16000)
    checkpoint = root / "checkpoint"
    model.save_pretrained(checkpoint)
    build_processor(checkpoint)
    unfused = root / "unfused"
    export_model(checkpoint, unfused, precisions=("fp32", "int8"), optimize=False, validation_seconds=(1.0,))
    fused = root / "fused"
    export_model(checkpoint, fused, precisions=("fp32",), validation_seconds=(1.0,))
    return checkpoint, unfused, fused


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from transformers import Wav2Vec2ForCTC

    return Wav2Vec2ForCTC.from_pretrained(path).state_dict()


def _logits(path: Path, audio: np.ndarray) -> np.ndarray:
    from transformers import Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(path).eval()
    with torch.no_grad():
        return model(torch.from_numpy(audio[None, :])).logits[0].numpy()


def test_fp32_export_gives_back_the_exact_model(exported, tmp_path) -> None:
    checkpoint, unfused, _ = exported
    report = recover_checkpoint(unfused, tmp_path / "rec", str(checkpoint), precision="fp32")
    assert report.precision == "fp32" and report.new_tensors == [TRAINING_ONLY]
    original, recovered = _weights(checkpoint), _weights(tmp_path / "rec")
    assert original.keys() == recovered.keys()
    pos_conv = "wav2vec2.encoder.pos_conv_embed.conv."
    for name in original:
        if name != TRAINING_ONLY and not name.startswith(pos_conv):  # weight norm: compared by outputs below
            torch.testing.assert_close(recovered[name], original[name], rtol=0, atol=1e-6, msg=name)
    audio = np.random.default_rng(1).standard_normal(24000).astype(np.float32)
    np.testing.assert_allclose(_logits(tmp_path / "rec", audio), _logits(checkpoint, audio), atol=1e-4)
    assert report.greedy_frame_agreement == 1.0 and report.max_abs_log_prob_diff < 1e-3
    assert (tmp_path / "rec" / "vocab.json").is_file() and (tmp_path / "rec" / "recovery.json").is_file()


def test_int8_export_gives_back_weights_within_quantization_error(exported, tmp_path) -> None:
    checkpoint, unfused, _ = exported
    report = recover_checkpoint(unfused, tmp_path / "rec", str(checkpoint), precision="int8")
    original, recovered = _weights(checkpoint), _weights(tmp_path / "rec")
    for name in original:
        if name == TRAINING_ONLY:
            continue
        scale = float(original[name].abs().max()) or 1.0
        # per-channel int8: at most half a step, 1/254 of a channel's largest weight
        assert float((recovered[name] - original[name]).abs().max()) / scale < 0.01, name
    assert report.greedy_frame_agreement > 0.9 and report.max_abs_log_prob_diff < 0.1


@pytest.mark.parametrize("method", ["dynamic", "static"])
def test_every_int8_method_maps_back(exported, tmp_path, method) -> None:
    """``dynamic`` (MatMulInteger, conv front-end in fp32) and ``static`` (QDQ: DequantizeLinear nodes over
    weights quantized along their own axis, conv weights and int32 biases included)."""
    from w2v2_onnx_export import export_model

    checkpoint = exported[0]
    export_model(checkpoint, tmp_path / "model", precisions=("int8",), int8_method=method, validate=False)
    recover_checkpoint(tmp_path / "model", tmp_path / "rec", str(checkpoint), check_seconds=0)
    original, recovered = _weights(checkpoint), _weights(tmp_path / "rec")
    for name in original:
        if name != TRAINING_ONLY:
            scale = float(original[name].abs().max()) or 1.0
            assert float((recovered[name] - original[name]).abs().max()) / scale < 0.01, name


def test_recovered_checkpoint_continues_training(exported, tmp_path) -> None:
    from w2v2_onnx_finetune.model import build_model

    checkpoint, unfused, _ = exported
    recover_checkpoint(unfused, tmp_path / "rec", str(checkpoint), precision="int8", check_seconds=0)
    model = build_model(str(tmp_path / "rec"))
    model.train()
    audio = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 16000)).astype(np.float32))
    loss = model(audio, labels=torch.tensor([[5, 6, 2, 7]])).loss
    loss.backward()
    assert torch.isfinite(loss) and model.lm_head.weight.grad is not None


def test_default_choice_skips_a_fused_graph_for_one_that_maps_back(exported, tmp_path) -> None:
    checkpoint, _, fused = exported
    with pytest.raises(UnsupportedModelError, match="--no-optimize"):
        recover_checkpoint(fused, tmp_path / "rec", str(checkpoint))
    # a directory with a fused fp32 file and an int8 file: the int8 one is read
    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(fused / "model.fp32.onnx", both)
    shutil.copy(exported[1] / "model.int8.onnx", both)
    config = json.loads((fused / "w2v2_onnx.json").read_text())
    config["files"] = {"fp32": "model.fp32.onnx", "int8": "model.int8.onnx"}
    (both / "w2v2_onnx.json").write_text(json.dumps(config))
    assert recover_checkpoint(both, tmp_path / "rec", str(checkpoint), check_seconds=0).precision == "int8"


def test_an_architecture_that_does_not_fit_is_named(exported, tmp_path) -> None:
    _, unfused, _ = exported
    with pytest.raises(UnsupportedModelError, match="no ONNX file maps back"):
        recover_checkpoint(unfused, tmp_path / "rec", "scratch:small-fb")
    with pytest.raises(UnsupportedModelError, match="scratch:SIZE"):
        recover_checkpoint(unfused, tmp_path / "rec", str(tmp_path / "nowhere"))


def test_bad_model_directories_get_typed_errors(layer_norm_model, tmp_path, capsys) -> None:
    with pytest.raises(ModelNotFoundError):
        recover_checkpoint(tmp_path / "missing", tmp_path / "rec", "scratch:tiny")
    with pytest.raises(UnsupportedModelError, match="vocabulary"):  # another project's characters
        recover_checkpoint(layer_norm_model, tmp_path / "rec", "scratch:tiny")
    hubert = tmp_path / "hubert"
    hubert.mkdir()
    config = json.loads((layer_norm_model / "w2v2_onnx.json").read_text())
    (hubert / "w2v2_onnx.json").write_text(json.dumps({**config, "model_type": "hubert"}))
    shutil.copy(layer_norm_model / config["files"]["fp32"], hubert)
    with pytest.raises(UnsupportedModelError, match="only wav2vec2"):
        recover_checkpoint(hubert, tmp_path / "rec", "scratch:tiny")
    assert main([str(tmp_path / "missing"), str(tmp_path / "rec"), "--config", "scratch:tiny"]) == 1
    assert "error: model not found" in capsys.readouterr().err


def test_training_from_a_model_directory_points_to_the_recovery(exported) -> None:
    from w2v2_onnx_finetune.model import build_model

    with pytest.raises(ModelNotFoundError, match="from_onnx"):
        build_model(str(exported[1]))


def test_without_onnx_installed_the_error_names_the_extra(monkeypatch, tmp_path) -> None:
    from w2v2_onnx.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"w2v2-onnx\[export\]"):
        recover_checkpoint(tmp_path / "model", tmp_path / "rec", "scratch:tiny")
