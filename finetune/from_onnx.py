"""Recover a trainable Hugging Face checkpoint from an exported w2v2-onnx model directory.

A model directory holds only inference graphs. When the checkpoint it was exported from is gone (a model
shipped to a user, or our own bundled model after the machine that trained it was lost), training can still
continue from the graph: every weight of a ``*ForCTC`` model is in it, as an fp32 initializer or as a
per-channel int8 one with its scale and zero point.

``python -m w2v2_onnx_finetune.from_onnx MODEL_DIR OUT_DIR --config scratch:small-fb`` reads the directory's
most precise ONNX file that maps back (fp32, else fp16, else int8), dequantizes int8 weights
(``(q - zero_point) * scale``), names every weight after the module whose node reads it, undoes the export's
rewrites (the conv front-end as channels-last matmuls, the weight-normed positional conv folded into one
weight), saves the checkpoint with our processor, and checks the recovered PyTorch model against the ONNX file
on the same audio.

The architecture's hyper-parameters that no weight shape records (attention heads, activations, norms) come
from ``--config``: a named scratch size, a ``config.json`` or a checkpoint directory. Every recovered tensor
must then fit that architecture exactly, or the recovery fails naming the parameter. What an inference
graph does not hold is new: the SpecAugment mask embedding (``masked_spec_embed``, used only in training)
is initialised as in a new model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2v2_onnx.errors import MissingDependencyError, ModelDirectoryError, UnsupportedModelError, W2V2OnnxError

#: The export wraps the Hugging Face model as ``self.model``: initializer names carry this prefix.
WRAPPER_PREFIX = "model."
#: Files tried in this order: the most precise first.
PRECISION_ORDER = ("fp32", "fp16", "int8")
#: The export's channels-last front-end (export/conv_matmul.py) names its tensors so.
_FRONT_END = "wav2vec2.feature_extractor."
#: Parameters an inference graph does not hold.
TRAINING_ONLY = ("wav2vec2.masked_spec_embed",)


@dataclass
class RecoveryReport:
    """What :func:`recover_checkpoint` read, wrote and measured."""

    model_dir: str
    onnx_file: str
    precision: str
    checkpoint: str
    parameters: int
    recovered_tensors: int
    new_tensors: list[str] = field(default_factory=list)
    check_seconds: float = 0.0
    max_abs_log_prob_diff: float = 0.0
    greedy_frame_agreement: float = 0.0


def recover_checkpoint(model_dir: str | Path, out_dir: str | Path, config: str, *, precision: str | None = None,
                       check_seconds: float = 4.0, seed: int = 0) -> RecoveryReport:
    """Write a Hugging Face ``Wav2Vec2ForCTC`` checkpoint holding the weights of an exported model.

    Args:
        model_dir: a w2v2-onnx model directory (``w2v2_onnx.json`` and its ONNX files).
        out_dir: the checkpoint directory to write (``config.json``, ``model.safetensors``, the processor).
        config: the architecture: ``scratch:SIZE`` (finetune/model.py's sizes), a ``config.json`` file or a
            checkpoint directory.
        precision: the file to read (``fp32``, ``fp16``, ``int8``); None tries the directory's files from the
            most precise and takes the first that maps back completely (an fp32 file written from the graph
            that ONNX Runtime's optimizer fused has lost its layer norms' names; int8 is quantized from the
            unfused graph).
        check_seconds: length of the seeded speech-like input on which the recovered model is compared with
            the ONNX file (log-probabilities and greedy frames); 0 skips the check.
        seed: seed of that input.

    Returns:
        The :class:`RecoveryReport`, also written to ``OUT_DIR/recovery.json``.

    Raises:
        MissingDependencyError: the ``onnx`` package (the ``export`` extra) is not installed.
        ModelNotFoundError, ModelDirectoryError: ``model_dir`` is not a readable model directory.
        UnsupportedModelError: not a wav2vec2 model or not our vocabulary, a weight cannot be mapped back (a
            graph fused by an optimizer), or the recovered tensors do not fit ``config``'s architecture.
    """
    import torch
    from transformers import Wav2Vec2ForCTC

    try:
        import onnx  # noqa: F401  (read by _recover_from; checked here, before any work)
    except ImportError as exc:
        raise MissingDependencyError("onnx", "export", "recovering a checkpoint from ONNX files") from exc

    from w2v2_onnx.model_dir import load_model_config
    from w2v2_onnx_finetune.vocab import VOCAB_TOKENS, build_processor

    model_config = load_model_config(model_dir)
    if model_config.model_type != "wav2vec2":
        raise UnsupportedModelError(
            f"{model_dir}: a {model_config.model_type} model; only wav2vec2 models can be recovered for training")
    if tuple(model_config.vocabulary.tokens) != VOCAB_TOKENS:
        raise UnsupportedModelError(
            f"{model_dir}: its vocabulary ({len(model_config.vocabulary.tokens)} tokens) is not the fine-tuning "
            f"stage's {len(VOCAB_TOKENS)}-character one; only our own models can be recovered for training")
    hf_config = _architecture(config)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(hf_config)
    state = model.state_dict()
    candidates = [precision] if precision else [p for p in PRECISION_ORDER if p in model_config.files]
    if precision and precision not in model_config.files:
        raise ModelDirectoryError(f"{model_dir}: no {precision} file; it has {', '.join(model_config.files)}")
    failures = []
    for candidate in candidates:
        onnx_path = model_config.files[candidate]
        try:
            recovered = _recover_from(onnx_path, state, hf_config, config)
            precision = candidate
            break
        except UnsupportedModelError as error:  # e.g. a graph fused by ONNX Runtime's optimizer
            failures.append(f"{onnx_path.name}: {error}")
    else:
        raise UnsupportedModelError(
            f"{model_dir}: no ONNX file maps back to the architecture ({'; '.join(failures)}); a graph fused by "
            f"ONNX Runtime's optimizer has lost its layer norms' names: give an int8 file or an fp32 export "
            f"made with --no-optimize")
    for name, array in recovered.items():
        state[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    model.load_state_dict(state)
    model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    build_processor(out, sampling_rate=model_config.sample_rate)
    report = RecoveryReport(
        model_dir=str(model_dir), onnx_file=str(onnx_path), precision=precision, checkpoint=str(out),
        parameters=sum(p.numel() for p in model.parameters()), recovered_tensors=len(recovered),
        new_tensors=[name for name in state if name not in recovered])
    if check_seconds > 0:
        report.check_seconds = check_seconds
        report.max_abs_log_prob_diff, report.greedy_frame_agreement = compare_with_onnx(
            model, onnx_path, model_config, check_seconds, seed)
    (out / "recovery.json").write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")
    return report


def _recover_from(onnx_path: Path, state: dict[str, Any], hf_config: Any, config: str) -> dict[str, np.ndarray]:
    """The parameters of ``state`` read from one ONNX file, checked complete and of the right shapes."""
    import onnx

    recovered = map_to_state_dict(graph_weights(onnx.load(str(onnx_path)).graph), state, hf_config)
    missing = [name for name in state if name not in recovered and name not in TRAINING_ONLY]
    if missing:
        raise UnsupportedModelError(
            f"no weight found for {len(missing)} parameter(s) of the architecture, e.g. {', '.join(missing[:3])}")
    for name, array in recovered.items():
        if tuple(state[name].shape) != array.shape:
            raise UnsupportedModelError(
                f"{name} has shape {array.shape} in the graph, {tuple(state[name].shape)} in the architecture "
                f"given by {config!r}")
    return recovered


def graph_weights(graph: Any) -> dict[str, np.ndarray]:
    """Every weight of ``graph`` under the Hugging Face name of the parameter it came from, as float32.

    int8 weights are dequantized (``(q - zero_point) * scale``; per channel, and for static QDQ graphs along the
    axis of the DequantizeLinear node over them). Names come from two places: initializers the
    exporter kept named (``model.X`` is parameter ``X``), and the node that reads each weight, named after its
    module (``/model/wav2vec2/encoder/layers.0/attention/q_proj/MatMul`` reads ``...q_proj.weight``, stored
    ``[in, out]`` and transposed back). The nodes win: the exporter stores equal tensors once (every fresh layer
    norm's ones), under one parameter's name or behind Identity nodes.
    """
    from onnx import numpy_helper

    raw = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    values: dict[str, np.ndarray] = {}  # by initializer name, quantized ones dequantized
    for name, array in raw.items():
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            scale, zero_point = raw.get(base + "_scale"), raw.get(base + "_zero_point")
            if scale is None or zero_point is None:
                continue  # its scale has another name: the DequantizeLinear node over it names it (below)
            # per-channel over the output columns of a MatMulInteger weight [in, out] (QDQ nodes below say theirs)
            axis = array.ndim - 1 if np.size(scale) in (1, array.shape[-1]) else 0
            values[name] = values[base] = _dequantize(array, scale, zero_point, axis=axis)
        elif np.issubdtype(array.dtype, np.floating) and not any(
                name.endswith(suffix) and name[: -len(suffix)] + "_quantized" in raw
                for suffix in ("_scale", "_zero_point")):
            values[name] = array.astype(np.float32)

    for node in graph.node:
        # The exporter gives equal tensors one initializer, and the other parameters' names Identity nodes over it.
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        # Static (QDQ) int8: a DequantizeLinear node over each weight, quantized along its own axis (Conv: 0).
        elif node.op_type == "DequantizeLinear" and node.input[0] in raw and len(node.input) >= 2:
            axis = next((attr.i for attr in node.attribute if attr.name == "axis"), 1)
            zero_point = raw.get(node.input[2]) if len(node.input) > 2 else None
            values[node.output[0]] = _dequantize(raw[node.input[0]], raw[node.input[1]], zero_point, axis=axis)
    weights = {name[len(WRAPPER_PREFIX):]: array for name, array in values.items()
               if name.startswith(WRAPPER_PREFIX) and not name.endswith("_quantized")}
    linear_modules: set[str] = set()
    nodes = [(node, _module_of(node.name)) for node in graph.node]
    for node, module in nodes:
        inputs = [values.get(name) for name in node.input]
        if module is None or module == _FRONT_END.rstrip("."):
            continue  # the rewritten front-end's own matmuls: its tensors keep their names (weights.i, biases.i)
        if node.op_type == "LayerNormalization" and len(inputs) >= 3 and inputs[1] is not None:
            weights[module + ".weight"] = inputs[1]
            if inputs[2] is not None:
                weights[module + ".bias"] = inputs[2]
        elif node.op_type in ("MatMul", "MatMulInteger") and len(inputs) >= 2 and inputs[1] is not None:
            weights[module + ".weight"] = inputs[1].T
            linear_modules.add(module)
        elif node.op_type == "Conv" and len(inputs) >= 2 and inputs[1] is not None:
            weights[module + ".weight"] = inputs[1]
            if len(inputs) >= 3 and inputs[2] is not None:
                weights[module + ".bias"] = inputs[2]
    for node, module in nodes:  # a linear module's bias: the 1-D initializer its Add reads
        if node.op_type == "Add" and module in linear_modules:
            out_features = weights[module + ".weight"].shape[0]
            for name in node.input:
                array = values.get(name)
                if array is not None and array.shape == (out_features,):
                    weights[module + ".bias"] = array
    return weights


def _dequantize(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, *, axis: int) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32, the scale and zero point per-tensor or along ``axis``."""
    def along_axis(values: np.ndarray) -> np.ndarray:
        shape = [1] * quantized.ndim
        if np.size(values) > 1:
            shape[axis] = np.size(values)
        return np.asarray(values, np.float32).reshape(shape)

    offset = 0.0 if zero_point is None else along_axis(zero_point)
    return (quantized.astype(np.float32) - offset) * along_axis(scale)


def _module_of(node_name: str) -> str | None:
    """``/model/wav2vec2/encoder/layers.0/attention/q_proj/MatMul_quant`` -> ``wav2vec2.encoder...q_proj``."""
    parts = node_name.strip("/").split("/")
    if len(parts) < 3 or parts[0] != WRAPPER_PREFIX.rstrip("."):
        return None
    return ".".join(parts[1:-1])


def map_to_state_dict(weights: dict[str, np.ndarray], state: dict[str, Any], config: Any) -> dict[str, np.ndarray]:
    """Rename :func:`graph_weights`' names to ``state``'s parameters, undoing the export's rewrites: the
    channels-last front-end (``weights.i`` ``[k * in, out]``, row ``tap * in + channel``, back to conv
    ``[out, in, k]``) and the positional conv's folded weight norm."""
    recovered: dict[str, np.ndarray] = {}
    kernels = list(config.conv_kernel)
    pos_conv = "wav2vec2.encoder.pos_conv_embed.conv."
    for key, array in weights.items():
        if key.startswith(tuple(_FRONT_END + kind for kind in ("weights.", "biases.", "norms."))):
            kind, index, *rest = key[len(_FRONT_END):].split(".")
            layer = f"{_FRONT_END}conv_layers.{index}."
            if kind == "weights":
                kernel = kernels[int(index)]
                rows, out_channels = array.shape
                array = array.reshape(kernel, rows // kernel, out_channels).transpose(2, 1, 0)
                key = layer + "conv.weight"
            elif kind == "biases":
                if array.size == 0:
                    continue
                key = layer + "conv.bias"
            else:
                key = layer + "layer_norm." + ".".join(rest)
        elif key == pos_conv + "weight":
            recovered.update(_weight_norm_parts(array, state))
            continue
        recovered[key] = array
    return {key: array for key, array in recovered.items() if key in state}


def _weight_norm_parts(weight: np.ndarray, state: dict[str, Any]) -> dict[str, np.ndarray]:
    """``weight`` as the positional conv's parameters: weight-normed (g over dim 2, v) or plain."""
    prefix = "wav2vec2.encoder.pos_conv_embed.conv."
    norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(0, 1), keepdims=True)).astype(np.float32)
    for g, v in ((prefix + "parametrizations.weight.original0", prefix + "parametrizations.weight.original1"),
                 (prefix + "weight_g", prefix + "weight_v")):
        if g in state and v in state:
            return {g: norms, v: weight}
    return {prefix + "weight": weight}


def compare_with_onnx(model: Any, onnx_path: Path, model_config: Any, seconds: float,
                      seed: int) -> tuple[float, float]:
    """Largest log-probability difference and greedy frame agreement of ``model`` against the ONNX file, on the
    export stage's seeded speech-like audio (``seconds`` long), as its parity check runs the two."""
    from w2v2_onnx_export.calibration import synthetic_audio
    from w2v2_onnx_export.validate import make_session, run_session, torch_reference

    audio = synthetic_audio(1, sample_rate=model_config.sample_rate, seconds=seconds, seed=seed)[0]
    theirs = run_session(make_session(onnx_path), [audio])[0]
    mine = torch_reference(model, audio, model_config.do_normalize)
    frames = min(len(mine), len(theirs))
    mine, theirs = mine[:frames], theirs[:frames]
    return float(np.abs(mine - theirs).max()), float((mine.argmax(-1) == theirs.argmax(-1)).mean())


def _architecture(config: str) -> Any:
    """The Hugging Face config named by ``--config``: ``scratch:SIZE``, a ``config.json`` or a directory holding one."""
    from transformers import AutoConfig

    from w2v2_onnx_finetune.model import scratch_config

    if config.startswith("scratch:"):
        return scratch_config(config.split(":", 1)[1])
    path = Path(config)
    directory = path.parent if path.name == "config.json" else path
    if not (directory / "config.json").is_file():
        raise UnsupportedModelError(
            f"--config {config!r}: give scratch:SIZE, a config.json file or a checkpoint directory that holds one")
    return AutoConfig.from_pretrained(str(directory))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m w2v2_onnx_finetune.from_onnx MODEL_DIR OUT_DIR --config ...``; exit 1 on a typed error."""
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune.from_onnx",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="w2v2-onnx model directory (w2v2_onnx/models/default: the bundled one)")
    parser.add_argument("out_dir", help="checkpoint directory to write")
    parser.add_argument("--config", required=True,
                        help="the architecture: scratch:SIZE, a config.json or a checkpoint directory")
    parser.add_argument("--precision", choices=PRECISION_ORDER, default=None,
                        help="the ONNX file to read (default: the most precise one that maps back)")
    parser.add_argument("--check-seconds", type=float, default=4.0,
                        help="compare the recovered model with the ONNX file on this much audio (0: skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = recover_checkpoint(args.model_dir, args.out_dir, args.config, precision=args.precision,
                                    check_seconds=args.check_seconds)
    except W2V2OnnxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
