"""Fine-tuning stage of w2v2-onnx: data, vocabulary, model start points and Trainer-based training."""
