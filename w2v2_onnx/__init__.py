"""w2v2-onnx: fast, small, trustworthy Wav2Vec2 CTC speech recognition on ONNX Runtime.

>>> import w2v2_onnx
>>> w2v2_onnx.transcribe("speech.wav").text
"""

from w2v2_onnx.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioShapeError,
    AudioValueError,
    DecoderError,
    DeviceNotAvailableError,
    InferenceError,
    InvalidOptionError,
    LanguageModelError,
    MissingDependencyError,
    ModelDirectoryError,
    ModelError,
    ModelNotFoundError,
    PrecisionNotAvailableError,
    SampleRateError,
    W2V2OnnxError,
)
from w2v2_onnx.results import PhraseMatch, Transcription, Utterance, Word
from w2v2_onnx.streaming import TranscriptionStream
from w2v2_onnx.transcriber import Transcriber, match_phrases, transcribe

__version__ = "0.1.0"

__all__ = [
    "AudioDecodeError", "AudioError", "AudioFileNotFoundError", "AudioShapeError", "AudioValueError",
    "DecoderError", "DeviceNotAvailableError", "InferenceError", "InvalidOptionError", "LanguageModelError",
    "MissingDependencyError", "ModelDirectoryError", "ModelError", "ModelNotFoundError", "PhraseMatch",
    "PrecisionNotAvailableError", "SampleRateError", "Transcriber", "Transcription", "TranscriptionStream",
    "Utterance", "W2V2OnnxError", "Word",
    "__version__", "match_phrases", "transcribe",
]
