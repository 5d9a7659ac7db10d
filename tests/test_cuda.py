"""CUDA execution: skipped unless onnxruntime-gpu has a working CUDA provider."""

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
