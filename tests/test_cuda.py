"""CUDA execution: skipped unless onnxruntime-gpu has a working CUDA provider."""

import numpy as np
import onnxruntime as ort
import pytest
import tone_model as tm

from w2v2_onnx import Transcriber

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                       reason="needs onnxruntime-gpu with the CUDA provider"),
]


def test_cuda_matches_cpu_with_io_binding(tone_model_dir):
    texts = ["HELLO WORLD", "A", "CUDA IS FAST"]
    audios = [tm.synthesize(t) for t in texts]
    gpu = Transcriber(tone_model_dir, device="cuda")
    assert gpu.device == "cuda" and gpu.model.providers[0] == "CUDAExecutionProvider"
    cpu = Transcriber(tone_model_dir, device="cpu")
    gpu_results = gpu.transcribe(audios)
    assert [r.text for r in gpu_results] == texts
    assert [r.words for r in gpu_results] == [r.words for r in cpu.transcribe(audios)]


def test_auto_picks_cuda(tone_model_dir):
    assert Transcriber(tone_model_dir, device="auto").device == "cuda"


@pytest.fixture(scope="module")
def tiny_fp16_model(tmp_path_factory):
    """A tiny group-norm model with fp32, fp16 and the fp16 variant whose layer norms run in fp16."""
    from w2v2_onnx_export import export_model
    from w2v2_onnx_export.fp16 import FP32_OPS, LAYER_NORM_OPS, convert_fp16
    from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

    root = tmp_path_factory.mktemp("cuda")
    conv = dict(STANDARD_CONV, conv_dim=(32,) * 7)
    checkpoint = make_tiny_checkpoint(root / "checkpoint", seed=3, **conv)
    out = root / "model"
    export_model(checkpoint, out, precisions=("fp32", "fp16"), validate=False)
    lean = tuple(op for op in FP32_OPS if op not in LAYER_NORM_OPS)
    convert_fp16(out / "model.fp32.onnx", root / "fp16-ln16.onnx", fp32_ops=lean)
    return out, root / "fp16-ln16.onnx"


def _speech(seconds, seed):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_log_probs_match_cpu_fp32(tiny_fp16_model, precision):
    model_dir, _ = tiny_fp16_model
    audio = [_speech(s, i) for i, s in enumerate((0.5, 3.0, 31.0))]
    cpu = Transcriber(model_dir, device="cpu", precision="fp32")
    gpu = Transcriber(model_dir, device="cuda", precision=precision)
    assert gpu.model.providers[0] == "CUDAExecutionProvider"
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    for clip in audio:
        want, got = cpu.log_probs(clip), gpu.log_probs(clip)
        assert got.shape == want.shape and np.isfinite(got).all()
        assert np.abs(got - want).max() < tolerance


def test_cuda_batching_does_not_change_results(tone_model_dir):
    texts = ["ONE", "A LONGER SENTENCE HERE", "TWO WORDS", "BATCH"]
    audios = [tm.synthesize(t) for t in texts]
    gpu = Transcriber(tone_model_dir, device="cuda")
    assert [r.text for r in gpu.transcribe(audios, batch_size=1)] == texts
    assert [r.text for r in gpu.transcribe(audios, batch_size=16)] == texts


def test_cuda_fp16_padded_batch_matches_each_alone(tiny_fp16_model):
    """fp16 kernels differ by batch shape, so compare log-probabilities, not argmax on random weights."""
    from w2v2_onnx.session import OnnxModel

    model_dir, _ = tiny_fp16_model
    model = OnnxModel(model_dir / "model.fp16.onnx", device="cuda")
    clips = [_speech(s, 30 + i) for i, s in enumerate((1.0, 6.5, 3.2))]
    batch = np.zeros((3, max(c.size for c in clips)), np.float32)
    for row, clip in enumerate(clips):
        batch[row, :clip.size] = clip
    together, frames = model.run(batch, np.array([c.size for c in clips]))
    for row, clip in enumerate(clips):
        alone, alone_frames = model.run(clip[None], np.array([clip.size]))
        assert frames[row] == alone_frames[0]
        assert np.abs(together[row, :frames[row]] - alone[0, :frames[row]]).max() < 5e-2


def test_fp16_layer_norm_variant_runs_on_cuda(tiny_fp16_model):
    """The lever measured by benchmarks/cuda_figures.py: layer norms in fp16 stay close to fp32."""
    from w2v2_onnx.session import OnnxModel

    model_dir, lean_path = tiny_fp16_model
    fp32 = OnnxModel(model_dir / "model.fp32.onnx", device="cpu")
    lean = OnnxModel(lean_path, device="cuda")
    batch = np.stack([_speech(4.0, 20), _speech(4.0, 21)])
    lengths = np.array([64000, 40000])
    want, want_n = fp32.run(batch, lengths)
    got, got_n = lean.run(batch, lengths)
    assert (got_n == want_n).all()
    for row, n in enumerate(want_n):
        assert np.abs(got[row, :n] - want[row, :n]).max() < 5e-2


def test_bundled_int8_model_runs_on_cuda_like_the_cpu():
    """The default model's int8 graph (int8 MatMuls, ONNX Runtime's MultiHeadAttention with a key-padding mask)
    on the CUDA provider, in a padded batch, against the CPU one clip at a time."""
    audio = [_speech(s, 10 + i) for i, s in enumerate((1.0, 4.0, 7.5))]
    cpu = Transcriber(device="cpu")
    gpu = Transcriber(device="cuda")
    assert gpu.model.providers[0] == "CUDAExecutionProvider"
    for clip, got in zip(audio, gpu.log_probs(audio, batch_size=3), strict=True):
        want = cpu.log_probs(clip)
        assert got.shape == want.shape and np.isfinite(got).all()
        assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.9  # int8 activations quantize per batch


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_exported_graph_captures_as_a_cuda_graph(tiny_fp16_model, precision):
    """Every node of an fp32/fp16 export runs on CUDA (the padding mask's bool Tile, which ONNX Runtime runs only
    on the CPU, is dropped by the export), so with the dimensions fixed at load a CUDA graph captures the run;
    a new batch copied into the captured buffers gives the dynamic session's log-probabilities."""
    model_dir, _ = tiny_fp16_model
    path = str(model_dir / f"model.{precision}.onnx")
    batch = np.stack([_speech(3.0, 40), _speech(3.0, 41)])
    lengths = np.array([48000, 30000])
    options = ort.SessionOptions()
    options.add_free_dimension_override_by_name("batch", 2)
    options.add_free_dimension_override_by_name("samples", 48000)
    ort.preload_dlls()
    captured = ort.InferenceSession(path, options, providers=[("CUDAExecutionProvider", {"enable_cuda_graph": "1"})])
    dynamic = ort.InferenceSession(path, providers=["CUDAExecutionProvider"])
    x = ort.OrtValue.ortvalue_from_numpy(np.zeros_like(batch), "cuda", 0)
    n = ort.OrtValue.ortvalue_from_numpy(np.full(2, 48000, np.int64), "cuda", 0)
    want, want_n = dynamic.run(None, {"input_values": batch, "input_lengths": lengths})
    out = ort.OrtValue.ortvalue_from_shape_and_type(list(want.shape), want.dtype, "cuda", 0)
    out_n = ort.OrtValue.ortvalue_from_shape_and_type([2], np.int64, "cuda", 0)
    binding = captured.io_binding()
    binding.bind_ortvalue_input("input_values", x)
    binding.bind_ortvalue_input("input_lengths", n)
    binding.bind_ortvalue_output("log_probs", out)
    binding.bind_ortvalue_output("output_lengths", out_n)
    for _ in range(3):  # warm-up runs, then the capture
        captured.run_with_iobinding(binding)
    x.update_inplace(batch)
    n.update_inplace(lengths)
    captured.run_with_iobinding(binding)
    assert (out_n.numpy() == want_n).all()
    got = out.numpy()
    tolerance = 1e-3 if precision == "fp32" else 5e-2  # the two sessions may pick different fp16 kernels
    for row, frames in enumerate(want_n):
        assert np.abs(got[row, :frames] - want[row, :frames]).max() < tolerance
