"""ONNX Runtime sessions: device and provider choice, thread control, IO binding on CUDA."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from w2v2_onnx.checks import MAX_THREADS
from w2v2_onnx.errors import DeviceNotAvailableError, InferenceError, InvalidOptionError, ModelDirectoryError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
INPUT_NAMES = ("input_values", "input_lengths")
OUTPUT_NAMES = ("log_probs", "output_lengths")
# cuDNN's EXHAUSTIVE search reruns for every new input length and HEURISTIC fails on the grouped
# positional conv (see reference/anchors.md); DEFAULT is the safe choice for variable-length audio.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "DEFAULT"}
#: ONNX Runtime session option: flush-to-zero and denormals-are-zero on the intra-op threads.
DENORMAL_AS_ZERO = "session.set_denormal_as_zero"


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask and cgroup quota, not the host's core count.

    ONNX Runtime sizes its default pool to the host, which oversubscribes containers.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


_cuda_libraries_loaded = False


def preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries that onnxruntime-gpu needs, once, before the first CUDA session.

    onnxruntime-gpu finds them in the ``nvidia-*`` pip packages only through ``onnxruntime.preload_dlls()``
    (ONNX Runtime 1.21+); without it a CUDA session fails unless the libraries are on the loader path or
    torch was imported first. Failures are left to the session, which then reports what is missing.
    """
    global _cuda_libraries_loaded
    # torch, once imported, has loaded its own CUDA and cuDNN; loading the nvidia packages' copies as well can
    # mix two cuDNN versions in one process (seen: torch 2.11's 9.19 against the package's 9.14).
    if _cuda_libraries_loaded or not hasattr(ort, "preload_dlls") or "torch" in sys.modules:
        return
    _cuda_libraries_loaded = True
    try:
        ort.preload_dlls()
    except Exception as exc:  # a missing library is reported by the session that needs it
        logger.debug("onnxruntime.preload_dlls() failed: %s", exc)


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to ``cpu`` or ``cuda``; ``cuda`` must really be available.

    Raises:
        InvalidOptionError: an unknown device name.
        DeviceNotAvailableError: CUDA asked for but ONNX Runtime has no CUDA provider.
    """
    if device not in DEVICES:
        raise InvalidOptionError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = ort.get_available_providers()
    if device == "auto":
        return "cuda" if CUDA in available else "cpu"
    if device == "cuda" and CUDA not in available:
        raise DeviceNotAvailableError(
            f"device='cuda' needs ONNX Runtime's {CUDA}, but the available providers are {available}; "
            f"install onnxruntime-gpu (pip install 'w2v2-onnx[gpu]') with matching CUDA and cuDNN, "
            f"or use device='cpu'")
    return device


def provider_names(providers: Sequence[Any]) -> list[str]:
    """The names in an explicit provider list (names or ``(name, options)`` pairs), checked.

    Raises:
        InvalidOptionError: not a non-empty list of names or (name, options dict) pairs.
        DeviceNotAvailableError: a provider this ONNX Runtime build does not have.
    """
    if isinstance(providers, str | bytes) or not isinstance(providers, Sequence) or not providers:
        raise InvalidOptionError(f"providers must be a non-empty list of ONNX Runtime provider names or "
                                 f"(name, options) pairs, e.g. ['CPUExecutionProvider'], got {providers!r}")
    names = []
    for entry in providers:
        name = entry[0] if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], dict) else entry
        if not isinstance(name, str):
            raise InvalidOptionError(f"providers entries must be names or (name, options dict) pairs, got {entry!r}")
        names.append(name)
    available = ort.get_available_providers()
    missing = [name for name in names if name not in available]
    if missing:
        raise DeviceNotAvailableError(f"ONNX Runtime provider(s) {missing} are not available here; "
                                      f"available: {available}")
    return names


class OnnxModel:
    """One ONNX Runtime session over a w2v2-onnx graph, run on padded batches of raw audio."""

    def __init__(
        self,
        path: Path,
        *,
        device: str,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
    ) -> None:
        """Create the session.

        Args:
            path: the ``.onnx`` file.
            device: ``cpu`` or ``cuda`` (already resolved).
            threads: intra-op threads for the CPU provider (default: the CPUs this process may use).
            providers: explicit ONNX Runtime providers, overriding the device's default.

        Raises:
            DeviceNotAvailableError: CUDA requested and the session did not get the CUDA provider.
            ModelDirectoryError: the file is not a valid ONNX model or not a w2v2-onnx graph.
        """
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or not 1 <= threads <= MAX_THREADS):
            raise InvalidOptionError(f"threads must be an integer from 1 to {MAX_THREADS} or None, got {threads!r}")
        requested = None if providers is None else provider_names(providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Trained attention puts many probabilities below 1.2e-38; as denormals they make x86 matmuls crawl
        # (the bundled model ran 3.4x slower). Flushing them to zero changes no result that matters.
        options.add_session_config_entry(DENORMAL_AS_ZERO, "1")
        if providers is None:
            providers = [(CUDA, CUDA_OPTIONS)] if device == "cuda" else [CPU]
        if device == "cuda":
            preload_cuda_libraries()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as exc:  # ORT's Fail / InvalidProtobuf / NoSuchFile carry no common base class
            if device == "cuda" and "CUDA" in str(exc):
                raise DeviceNotAvailableError(f"could not create a CUDA session: {exc}") from exc
            raise ModelDirectoryError(f"{path} is not a loadable ONNX model: {exc}") from exc
        self.providers = self.session.get_providers()
        if requested is not None and self.providers[0] != requested[0]:
            raise DeviceNotAvailableError(
                f"ONNX Runtime could not start {requested[0]} (the session got {self.providers})")
        if device == "cuda" and self.providers[0] != CUDA:
            raise DeviceNotAvailableError(
                f"ONNX Runtime did not give the session the CUDA provider (it got {self.providers}); "
                f"check the CUDA and cuDNN libraries that onnxruntime-gpu needs")
        self.device = device
        self.path = path
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if set(INPUT_NAMES) - set(inputs) or set(OUTPUT_NAMES) - set(outputs):
            raise ModelDirectoryError(
                f"{path} is not a w2v2-onnx graph: inputs {inputs}, outputs {outputs}; expected inputs "
                f"{list(INPUT_NAMES)} and outputs {list(OUTPUT_NAMES)} (see docs/model-directory.md)")
        shape = next(o.shape for o in self.session.get_outputs() if o.name == "log_probs")
        self.vocab_size: int | None = shape[-1] if shape and isinstance(shape[-1], int) else None

    def run(self, batch: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run a right-padded ``[batch, samples]`` float32 batch; return log-probs and valid frame counts."""
        feeds = {"input_values": np.ascontiguousarray(batch, dtype=np.float32),
                 "input_lengths": np.ascontiguousarray(lengths, dtype=np.int64)}
        try:
            if self.device == "cuda":
                log_probs, out_lengths = self._run_io_binding(feeds)
            else:
                log_probs, out_lengths = self.session.run(list(OUTPUT_NAMES), feeds)
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime failed on a batch of shape {batch.shape}: {exc}") from exc
        for row, frames in enumerate(np.asarray(out_lengths).reshape(-1)):
            valid = log_probs[row, :int(frames)]
            if np.isnan(valid).any() or np.isposinf(valid).any():
                raise InferenceError(
                    f"the model gave NaN or +inf log-probabilities for a batch of shape {batch.shape} "
                    f"({Path(self.path).name}); with fp16 this is usually an overflow: try precision='fp32'")
        return log_probs, out_lengths

    def _run_io_binding(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        for name in OUTPUT_NAMES:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        log_probs, out_lengths = binding.copy_outputs_to_cpu()
        return log_probs, out_lengths
