"""CUDA library preloading: once, before the first CUDA session, and never over torch's own libraries."""

import sys

import pytest

import w2v2_onnx.session as session


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(session.ort, "preload_dlls", lambda *a, **k: made.append(1), raising=False)
    monkeypatch.setattr(session, "_cuda_libraries_loaded", False)
    return made


def test_preloads_once_without_torch(calls, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    session.preload_cuda_libraries()
    session.preload_cuda_libraries()
    assert calls == [1]


def test_leaves_torchs_libraries_alone(calls, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", object())
    session.preload_cuda_libraries()
    assert calls == []


def test_a_failing_preload_is_left_to_the_session(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(session.ort, "preload_dlls", broken, raising=False)
    monkeypatch.setattr(session, "_cuda_libraries_loaded", False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    session.preload_cuda_libraries()  # logs, does not raise: the CUDA session reports what is missing
