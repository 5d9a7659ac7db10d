"""w2v2-onnx: fast, small, trustworthy Wav2Vec2 CTC speech recognition on ONNX Runtime."""

__version__ = "0.1.0"
