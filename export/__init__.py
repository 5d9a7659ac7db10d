"""The export stage of w2v2-onnx: Hugging Face CTC checkpoint -> ONNX model directory.

Importing this package is cheap: torch and transformers load only when :func:`export_model` runs.
"""

from __future__ import annotations

from w2v2_onnx_export.pipeline import export_model
from w2v2_onnx_export.report import ExportReport
from w2v2_onnx_export.validate import Thresholds

__all__ = ["ExportReport", "Thresholds", "export_model"]
