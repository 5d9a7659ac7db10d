"""Every error w2v2-onnx raises, in one place.

Each error derives from :class:`W2V2OnnxError` and, where one fits, from the matching built-in
(``FileNotFoundError``, ``ValueError``, ``RuntimeError``, ``ImportError``), so callers can catch
either the package's errors or the usual Python ones. Messages name the bad value and what is allowed.
"""

from __future__ import annotations


class W2V2OnnxError(Exception):
    """Base class of every error raised by w2v2-onnx."""


# --- audio input -----------------------------------------------------------------------------------


class AudioError(W2V2OnnxError):
    """Base class of errors about the audio given to the recognizer."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """An audio path does not exist or is not a file."""

    def __init__(self, path: object, reason: str = "not found") -> None:
        super().__init__(f"audio file {reason}: {shorten_path(path)} (give an existing file, bytes, a binary "
                         f"file object or a numpy array)")
        self.path = path


def shorten_path(path: object, limit: int = 200) -> str:
    """``path`` as text for a message, its middle elided past ``limit`` characters (a name may be any length)."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]} ({len(text)} characters)"


class AudioDecodeError(AudioError, ValueError):
    """Audio bytes or a file could not be decoded: unknown format, corrupt or truncated."""


class AudioValueError(AudioError, ValueError):
    """Audio samples are not usable: NaN or infinite values, unsupported dtype."""


class AudioShapeError(AudioError, ValueError):
    """An audio array has a shape other than (samples,) or (samples, channels)."""


class SampleRateError(AudioError, ValueError):
    """A sample rate is missing, not a positive integer, or out of the supported range."""


# --- model directory and runtime -------------------------------------------------------------------


class ModelError(W2V2OnnxError):
    """Base class of errors about a model directory or ONNX file."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model directory, its config or an ONNX file does not exist."""


class ModelDirectoryError(ModelError, ValueError):
    """A model directory is malformed: bad config, corrupt ONNX, vocabulary not matching the logits."""


class PrecisionNotAvailableError(ModelError, ValueError):
    """The requested precision has no ONNX file in the model directory."""


class DeviceNotAvailableError(W2V2OnnxError, RuntimeError):
    """The requested device (e.g. CUDA) has no working ONNX Runtime execution provider."""


class InferenceError(W2V2OnnxError, RuntimeError):
    """ONNX Runtime failed while running a model on valid input (a real runtime fault)."""


class InvalidOptionError(W2V2OnnxError, ValueError):
    """An option passed to the API or CLI has a value outside what is allowed."""


class MissingDependencyError(W2V2OnnxError, ImportError):
    """An optional dependency is not installed; the message gives the pip command that adds it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the package {package!r}, which is not installed: "
                         f"pip install 'w2v2-onnx[{extra}]'")
        self.package = package
        self.extra = extra


# --- decoding and language models ------------------------------------------------------------------


class DecoderError(W2V2OnnxError, ValueError):
    """A decoder was asked for something it cannot do (bad logits shape, bad beam settings)."""


class LanguageModelError(W2V2OnnxError, ValueError):
    """A language model file is missing, unreadable or malformed."""


# --- export stage -----------------------------------------------------------------------------------


class ExportError(W2V2OnnxError, RuntimeError):
    """The export stage could not turn a checkpoint into a model directory."""


class UnsupportedModelError(ExportError, ValueError):
    """A checkpoint's architecture is not one the export stage supports."""


class ValidationError(ExportError):
    """An exported model failed validation: a parity or accuracy threshold was exceeded."""


# --- fine-tuning stage ------------------------------------------------------------------------------


class DataError(W2V2OnnxError, ValueError):
    """A training manifest or dataset is malformed (the message names the file and row)."""
