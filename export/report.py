"""What an export measured, returned by :func:`w2v2_onnx_export.export_model` and written as JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ExportReport:
    """Figures of one export.

    Attributes:
        out_dir: the model directory written.
        config: the ``w2v2_onnx.json`` content.
        files: precision -> ONNX file path.
        sizes_bytes: precision -> file size.
        node_counts: precision -> {op type: count}; ``fp32_unoptimized`` before the optimizer.
        parity: precision -> validation figures (see ``validate.py``); empty when not validated.
        timings_s: stage -> seconds (load, export, optimize, fp16, int8, validate).
        notes: free-text remarks (e.g. what the optimizer fused).
    """

    out_dir: Path
    config: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    sizes_bytes: dict[str, int] = field(default_factory=dict)
    node_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (paths as strings)."""
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        data["files"] = {k: str(v) for k, v in self.files.items()}
        return data

    def write(self, path: Path) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def op_histogram(onnx_path: Path) -> dict[str, int]:
    """Op type -> node count, most frequent first; nodes of subgraphs (both branches of an ``If``) count too."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    counts: Counter[str] = Counter()
    graphs = [model.graph]
    while graphs:
        for node in graphs.pop().node:
            counts[node.op_type] += 1
            graphs.extend(attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH)
            graphs.extend(g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPHS for g in attr.graphs)
    return dict(counts.most_common())
