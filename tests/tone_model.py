"""A deterministic stand-in acoustic model for known-answer tests of the whole runtime.

Token ``k`` is "spoken" as a pure tone of frequency ``250 + 120 k`` Hz; the ONNX graph is a bank of
Hann-windowed matched filters (a conv with the wav2vec2 frame geometry: 400-sample window, 320-sample step)
whose energies become logits. So ``synthesize(text)`` makes audio that the model must transcribe exactly as
``text``, through the real audio loading, resampling, windowing, batching, ONNX Runtime and decoding code.
Each frame depends only on its own 25 ms of audio, so long-audio stitching must reproduce the single-pass
frames exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VOCAB = ["[PAD]", "[UNK]", "|", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ'"]
WINDOW, STEP, RATE = 400, 320, 16000
TONE_SAMPLES = 4 * STEP  # each character: a 4-frame tone
GAP_SAMPLES = 2 * STEP  # then 2 frames of silence, so repeated letters stay distinct
AMPLITUDE = 0.5


def frequency(token_id: int) -> float:
    return 250.0 + 120.0 * token_id


def synthesize(text: str, sample_rate: int = RATE, lead: float = 0.1) -> np.ndarray:
    """Audio whose transcript under the tone model is ``text`` (upper-case letters, apostrophes, spaces)."""
    tone = int(TONE_SAMPLES * sample_rate / RATE)
    gap = int(GAP_SAMPLES * sample_rate / RATE)
    pieces = [np.zeros(int(lead * sample_rate), dtype=np.float32)]
    t = np.arange(tone) / sample_rate
    for char in text:
        token = VOCAB.index("|" if char == " " else char)
        pieces.append((AMPLITUDE * np.sin(2 * np.pi * frequency(token) * t)).astype(np.float32))
        pieces.append(np.zeros(gap, dtype=np.float32))
    pieces.append(np.zeros(int(lead * sample_rate), dtype=np.float32))
    return np.concatenate(pieces)


def char_start_seconds(text: str, index: int, lead: float = 0.1) -> float:
    """Start time of character ``index`` of ``text`` in :func:`synthesize`'s audio."""
    return lead + index * (TONE_SAMPLES + GAP_SAMPLES) / RATE


def config(files: dict[str, str]) -> dict:
    """The model directory config of the tone model (docs/model-directory.md)."""
    return {
        "format": "w2v2-onnx", "format_version": 1, "model_type": "tone-test", "architecture": "ToneBank",
        "sample_rate": RATE, "do_normalize": False, "feat_extract_norm": "layer",
        "conv_kernel": [WINDOW], "conv_stride": [STEP], "frame_step": STEP, "receptive_field": WINDOW,
        "vocabulary": VOCAB, "blank_id": 0, "word_delimiter": "|", "unk_token": "[UNK]",
        "special_tokens": ["[PAD]", "[UNK]"], "files": files, "source": {"checkpoint": "tests/tone_model.py"},
    }


def build_graph(vocab_size: int = len(VOCAB)):
    """The tone model as an ONNX ModelProto (vocab_size other than len(VOCAB) makes a mismatched model)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = np.arange(WINDOW) / RATE
    hann = np.hanning(WINDOW)
    filters = np.zeros((2 * vocab_size, 1, WINDOW), dtype=np.float32)
    for k in range(1, vocab_size):
        filters[2 * k, 0] = hann * np.cos(2 * np.pi * frequency(k) * n)
        filters[2 * k + 1, 0] = hann * np.sin(2 * np.pi * frequency(k) * n)
    matched_energy = (AMPLITUDE * hann.sum() / 2) ** 2
    bias = np.zeros((vocab_size, 1), dtype=np.float32)
    bias[0] = 5.0  # the blank wins on silence and on frames straddling two tones
    inits = [
        numpy_helper.from_array(filters, "filters"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([0, vocab_size, 2, -1], dtype=np.int64), "shape4"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(10.0 / matched_energy, dtype=np.float32), "gain"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array(WINDOW, dtype=np.int64), "window"),
        numpy_helper.from_array(np.array(STEP, dtype=np.int64), "step"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["input_values", "axis1"], ["x3"]),
        helper.make_node("Conv", ["x3", "filters"], ["conv"], strides=[STEP]),
        helper.make_node("Mul", ["conv", "conv"], ["squared"]),
        helper.make_node("Reshape", ["squared", "shape4"], ["pairs"]),
        helper.make_node("ReduceSum", ["pairs", "axis2"], ["energy"], keepdims=0),
        helper.make_node("Mul", ["energy", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logits"]),
        helper.make_node("Transpose", ["logits"], ["logits_t"], perm=[0, 2, 1]),
        helper.make_node("LogSoftmax", ["logits_t"], ["log_probs"], axis=-1),
        helper.make_node("Sub", ["input_lengths", "window"], ["rest"]),
        helper.make_node("Div", ["rest", "step"], ["steps"]),
        helper.make_node("Add", ["steps", "one"], ["output_lengths"]),
    ]
    graph = helper.make_graph(
        nodes, "tone_model",
        [helper.make_tensor_value_info("input_values", TensorProto.FLOAT, ["batch", "samples"]),
         helper.make_tensor_value_info("input_lengths", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "frames", vocab_size]),
         helper.make_tensor_value_info("output_lengths", TensorProto.INT64, ["batch"])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_tone_model(out_dir: Path, *, vocab_size: int = len(VOCAB), with_metadata: bool = True) -> Path:
    """Write the tone model as a model directory with one fp32 file and return the directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_graph(vocab_size)
    if with_metadata:
        meta = {k: v for k, v in config({}).items() if k != "files"} | {"precision": "fp32"}
        entry = model.metadata_props.add()
        entry.key, entry.value = "w2v2_onnx", json.dumps(meta)
    (out_dir / "model.fp32.onnx").write_bytes(model.SerializeToString())
    (out_dir / "w2v2_onnx.json").write_text(json.dumps(config({"fp32": "model.fp32.onnx"}), indent=2))
    return out_dir


def copy_with_language_model(model: Path, work: Path, entry: dict | None = None) -> Path:
    """Give a (copied) tone model directory a small bigram LM over a few words, named in its config as
    ``entry`` (default: ``lm.arpa`` with alpha 0.3 and beta 1.5)."""
    from w2v2_onnx.lm_build import build_lm

    text = work / "lm.txt"
    text.write_text("HELLO WORLD IT'S A TEST\nA TEST OF THE WORLD\nHELLO THERE\n" * 3)
    build_lm([text], model / "lm", order=2, estimator="python", binary=False)
    config = json.loads((model / "w2v2_onnx.json").read_text())
    entry = {"path": "lm.arpa", "alpha": 0.3, "beta": 1.5} if entry is None else entry
    (model / "w2v2_onnx.json").write_text(json.dumps(config | {"language_model": entry}))
    return model


def copy_with_config(model: Path, target: Path, **entries: object) -> Path:
    """A copy of a tone model directory at ``target`` whose ``w2v2_onnx.json`` has ``entries`` added."""
    import shutil

    shutil.copytree(model, target)
    config = json.loads((target / "w2v2_onnx.json").read_text())
    (target / "w2v2_onnx.json").write_text(json.dumps(config | entries))
    return target
