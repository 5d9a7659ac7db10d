"""``export_model``: checkpoint -> model directory (fp32, fp16, int8), validated and reported."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import ExportError, InvalidOptionError
from w2v2_onnx_export import contract
from w2v2_onnx_export.report import ExportReport, op_histogram
from w2v2_onnx_export.validate import DEFAULT_SECONDS, Thresholds

if TYPE_CHECKING:
    from torch import nn

    from w2v2_onnx_export.checkpoint import LoadedCheckpoint

log = logging.getLogger(__name__)


INT8_PIPELINE_METHODS = ("auto", "dynamic", "dynamic-conv", "static")
#: fp16 front-ends: ``auto`` = the conv front-end as matmuls where it can be rewritten (1.57x the plain graph at
#: 16 x 30 s on an H100, docs/runtime.md "On CUDA"), else convolutions; ``conv`` = convolutions.
FP16_FRONT_ENDS = ("auto", "conv")


#: Opsets the TorchScript exporter is used with here (17 is the default; 14 is the first with the ops needed).
OPSETS = range(14, 21)
#: The longest fp32 parity input (seconds): the PyTorch reference runs it whole.
MAX_VALIDATION_SECONDS = 120.0


def _check_options(opset: object, validation_seconds: object, calibration_items: object,
                   thresholds: object, int8_method: str, wanted: list[str], fp16_front_end: str = "auto") -> None:
    """Refuse option values before anything slow starts (a bad one used to fail deep inside, or exhaust memory)."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise InvalidOptionError(f"opset must be an integer from {OPSETS.start} to {OPSETS.stop - 1}, got {opset!r}")
    if isinstance(validation_seconds, str | bytes) or not isinstance(validation_seconds, Sequence) or not all(
            is_finite_number(v) and 0 < v <= MAX_VALIDATION_SECONDS for v in validation_seconds):
        raise InvalidOptionError(f"validation_seconds must be a list of lengths above 0 and at most "
                                 f"{MAX_VALIDATION_SECONDS:g} s, got {validation_seconds!r}")
    if isinstance(calibration_items, bool) or not isinstance(calibration_items, int) or calibration_items < 1:
        raise InvalidOptionError(f"calibration_items must be a positive integer, got {calibration_items!r}")
    for field in dataclasses.fields(thresholds):
        value = getattr(thresholds, field.name)
        if not is_finite_number(value) or value < 0:
            raise InvalidOptionError(f"threshold {field.name} must be a finite number >= 0, got {value!r}")
    if int8_method != "auto" and "int8" not in wanted:
        raise InvalidOptionError(f"int8_method {int8_method!r} applies to int8 only; add int8 to the precisions "
                                 f"(they are {wanted})")
    if fp16_front_end not in FP16_FRONT_ENDS:
        raise InvalidOptionError(f"fp16_front_end {fp16_front_end!r}: choose one of {FP16_FRONT_ENDS}")
    if fp16_front_end != "auto" and "fp16" not in wanted:
        raise InvalidOptionError(f"fp16_front_end {fp16_front_end!r} applies to fp16 only; add fp16 to the "
                                 f"precisions (they are {wanted})")


def _windows_pair(windows: object) -> tuple[float, float] | None:
    """``windows`` as ``(chunk_length, chunk_context)``; its shape is checked before the checkpoint loads, its
    values by the runtime's window planner once the model's geometry is known (:func:`_check_windows`)."""
    if windows is None:
        return None
    if isinstance(windows, str | bytes) or not isinstance(windows, Sequence) or len(windows) != 2:
        raise InvalidOptionError(f"windows must be (chunk_length, chunk_context) in seconds, got {windows!r}")
    return windows[0], windows[1]


def _check_windows(config: dict, windows: tuple[float, float]) -> None:
    """Refuse ``windows`` unless the runtime's window planner accepts it for the model of ``config`` (so the
    directory it is written to loads)."""
    from w2v2_onnx.model_dir import parse_config
    from w2v2_onnx.windows import make_plan

    try:
        make_plan(parse_config(config, "the exported config", {}), *windows)
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"windows {windows!r}: {exc}") from exc


def _check_precisions(precisions: Sequence[str]) -> list[str]:
    if isinstance(precisions, str) or not isinstance(precisions, Sequence) or not all(
            isinstance(p, str) for p in precisions):
        raise InvalidOptionError(f"precisions must be a list of names from {contract.PRECISIONS}, got {precisions!r}")
    chosen = [p.strip() for p in precisions if p.strip()]
    bad = [p for p in chosen if p not in contract.PRECISIONS]
    if bad or not chosen:
        raise InvalidOptionError(
            f"precisions {list(precisions)!r}: choose one or more of {contract.PRECISIONS}"
        )
    return list(dict.fromkeys(chosen))


def export_model(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    precisions: Sequence[str] = ("fp32",),
    calibration: str | Path | None = None,
    opset: int = 17,
    optimize: bool = True,
    validate: bool = True,
    thresholds: Thresholds | None = None,
    validation_seconds: Sequence[float] = DEFAULT_SECONDS,
    int8_method: str = "auto",
    calibration_items: int = 16,
    windows: Sequence[float] | None = None,
    fp16_front_end: str = "auto",
) -> ExportReport:
    """Export a Hugging Face ``*ForCTC`` checkpoint to a w2v2-onnx model directory.

    Args:
        checkpoint: local checkpoint directory or hub id (loaded with ``AutoModelForCTC``).
        out_dir: the model directory to write (created; existing model files are replaced).
        precisions: any of ``fp32``, ``fp16``, ``int8``; fp32 is always built (the others derive from it)
            but only written to the directory when asked for.
        calibration: folder of audio files or TSV manifest with a ``path`` column, used for int8
            calibration and fp16/int8 validation; None uses synthetic speech-like audio.
        opset: ONNX opset of the torch.onnx (TorchScript) export.
        optimize: run ONNX Runtime's transformer optimizer (with Attention fusion) on the fp32 graph; fp32
            and fp16 are written from the optimized graph, int8 is quantized from the graph as exported.
            Neutral on CPU, the fused fp16 graph is what GPUs want (see docs/export.md).
        validate: compare fp32 with PyTorch and fp16/int8 with fp32, raising past ``thresholds``.
        thresholds: validation limits; defaults to :class:`Thresholds()`.
        validation_seconds: lengths (besides the shortest valid input) of the fp32 parity check.
        int8_method: ``auto`` (the default: ``dynamic-conv`` where the conv front-end can be rewritten,
            else ``dynamic``), ``dynamic-conv`` (per-channel int8 MatMuls, with the conv front-end after its
            first layer rewritten as channels-last int8 matmuls: 37x real time against 20x for ``dynamic`` on a
            30 s input of the base architecture, 0.79 GB peak on a 60-minute file, same held-out WER on our
            trained model), ``dynamic`` (int8 MatMuls only, conv front-end in fp32) or ``static`` (QDQ, Conv
            + MatMul, per-channel, calibrated); see docs/export.md.
        calibration_items: clips of calibration audio used at most.
        fp16_front_end: ``auto`` (the default: with ``optimize``, the conv front-end as channels-last matmuls
            where it can be rewritten, its layer norms in fp16 too: 38 ms against 60 ms for the plain graph at
            16 x 30 s on an H100, same accuracy; see docs/runtime.md, "On CUDA") or ``conv`` (the optimized fp32
            graph converted as it is).
        windows: ``(chunk_length, chunk_context)`` in seconds, written to ``w2v2_onnx.json`` as the model's
            own window defaults for long inputs (docs/model-directory.md, ``windows``); None writes none, and
            the runtime uses its 20 s / 2 s. Checked by the runtime's window planner before the export runs.

    Returns:
        The :class:`ExportReport`, also written as ``export_report.json``.

    Raises:
        UnsupportedModelError: the architecture is not supported.
        ExportError: loading, exporting or converting failed.
        ValidationError: a parity or accuracy threshold was exceeded (files stay on disk for inspection).
        InvalidOptionError: a bad option value.
    """
    from w2v2_onnx_export.calibration import load_calibration_audio
    from w2v2_onnx_export.checkpoint import load_checkpoint
    from w2v2_onnx_export.onnx_export import export_onnx
    from w2v2_onnx_export.validate import check_cer, check_fp32, validate_against_fp32, validate_fp32
    from w2v2_onnx_export.wrapper import CTCExportWrapper

    wanted = _check_precisions(precisions)
    if int8_method not in INT8_PIPELINE_METHODS:
        raise InvalidOptionError(f"int8_method {int8_method!r}: choose one of {INT8_PIPELINE_METHODS}")
    thresholds = thresholds or Thresholds()
    _check_options(opset, validation_seconds, calibration_items, thresholds, int8_method, wanted, fp16_front_end)
    windows = _windows_pair(windows)
    if calibration is not None and not Path(calibration).exists():
        raise ExportError(f"calibration source {calibration} does not exist (give a folder of audio or a "
                          f".tsv/.csv manifest with a 'path' column)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"output {out} exists and is not a directory; give a new or existing directory")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    loaded = load_checkpoint(checkpoint)
    timings["load"] = time.perf_counter() - start
    base_config = contract.build_config(loaded, {}, windows=windows)
    if windows is not None:
        _check_windows(base_config, windows)
    report = ExportReport(out_dir=out, config=base_config, timings_s=timings)

    # Read calibration audio first: a bad path fails before the slow export.
    needs_audio = validate or "int8" in wanted
    audio = (
        load_calibration_audio(calibration, sample_rate=loaded.sample_rate, max_items=calibration_items)
        if needs_audio
        else []
    )
    try:  # only once the checkpoint and calibration load, so a failed export leaves no empty directory behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output directory {out}: {exc.strerror or exc}") from exc

    # The export wrapper patches the model's norms in place: the conv-as-matmul variant needs its own copy.
    rewrite = "int8" in wanted and int8_method in ("auto", "dynamic-conv")
    pristine = copy.deepcopy(loaded.model) if rewrite else None
    fp16_matmuls = "fp16" in wanted and optimize and fp16_front_end == "auto"
    pristine_fp16 = copy.deepcopy(loaded.model) if fp16_matmuls else None
    fp32_path = out / contract.onnx_file_name("fp32")
    with tempfile.TemporaryDirectory(prefix="w2v2_onnx_export_") as tmp:
        # The graph as exported: int8 quantizes it (see docs/export.md), fp32/fp16 may be optimized.
        exported = Path(tmp) / "exported.onnx"
        start = time.perf_counter()
        wrapper = CTCExportWrapper(loaded.model, do_normalize=loaded.do_normalize).eval()
        export_onnx(
            wrapper,
            exported,
            opset=opset,
            receptive_field=base_config["receptive_field"],
            frame_step=base_config["frame_step"],
        )
        timings["export"] = time.perf_counter() - start
        report.node_counts["fp32_exported"] = op_histogram(exported)
        shutil.copyfile(exported, fp32_path)

        if optimize:
            from w2v2_onnx_export.optimize import optimize_fp32

            start = time.perf_counter()
            field, step = base_config["receptive_field"], base_config["frame_step"]
            probe = (field + 5 * step + 3, field + 37 * step + 11)
            report.notes.extend(optimize_fp32(fp32_path, loaded.model.config, probe_lengths=probe))
            timings["optimize"] = time.perf_counter() - start

        files = {"fp32": fp32_path}
        if "fp16" in wanted:
            from w2v2_onnx_export.fp16 import FP32_OPS, LAYER_NORM_OPS, convert_fp16

            start = time.perf_counter()
            files["fp16"] = out / contract.onnx_file_name("fp16")
            source, fp32_ops = fp32_path, FP32_OPS
            if pristine_fp16 is not None:
                rewritten = _export_conv_as_matmuls(pristine_fp16, loaded, "auto", Path(tmp), opset, base_config,
                                                    report, for_cpu=False)
                if rewritten is not None:
                    source = rewritten[0]
                    notes = optimize_fp32(source, loaded.model.config, probe_lengths=probe)
                    report.notes.extend(f"fp16: {note}" for note in notes)
                    # the layer norms' own kernels compute in fp32 on CUDA; as measured: fp16 in and out
                    fp32_ops = tuple(op for op in FP32_OPS if op not in LAYER_NORM_OPS)
            convert_fp16(source, files["fp16"], fp32_ops=fp32_ops)
            timings["fp16"] = time.perf_counter() - start
        if "int8" in wanted:
            from w2v2_onnx_export.quantize import quantize_int8

            start = time.perf_counter()
            files["int8"] = out / contract.onnx_file_name("int8")
            source, fp32_weight = exported, None
            if pristine is not None:
                rewritten = _export_conv_as_matmuls(pristine, loaded, int8_method, Path(tmp), opset, base_config,
                                                    report)
                if rewritten is not None:
                    source, fp32_weight = rewritten
            method = "static" if int8_method == "static" else "dynamic"
            report.notes.extend(
                quantize_int8(source, files["int8"], audio, method=method, fp32_weight_shape=fp32_weight))
            from w2v2_onnx_export.attention import add_unmasked_attention

            unmasked = add_unmasked_attention(files["int8"])
            if unmasked:
                report.notes.append(f"int8: {unmasked} MultiHeadAttention node(s) skip the key-padding mask when "
                                    f"it keeps every key (ONNX Runtime's CPU flash-attention kernel)")
            timings["int8"] = time.perf_counter() - start

    kept = {p: files[p] for p in contract.PRECISIONS if p in files and p in wanted}
    config = contract.build_config(loaded, {p: f.name for p, f in kept.items()}, windows=windows)
    report.config = config
    for precision, path in kept.items():
        contract.set_metadata(path, config, precision)
        report.files[precision] = path
        report.sizes_bytes[precision] = path.stat().st_size
        report.node_counts[precision] = op_histogram(path)
    contract.write_directory_files(out, config)

    try:
        if validate:
            start = time.perf_counter()
            report.parity["fp32"] = validate_fp32(loaded.model, fp32_path, config, audio, validation_seconds)
            check_fp32(report.parity["fp32"], thresholds)
            limits = {"fp16": thresholds.fp16_max_cer, "int8": thresholds.int8_max_cer}
            for precision in ("fp16", "int8"):
                if precision in files:
                    report.parity[precision] = validate_against_fp32(
                        files[precision], fp32_path, config, audio
                    )
                    check_cer(precision, report.parity[precision], limits[precision])
            timings["validate"] = time.perf_counter() - start
    finally:
        if "fp32" not in wanted:
            fp32_path.unlink(missing_ok=True)
        report.write(out / contract.REPORT_NAME)
    return report


def _export_conv_as_matmuls(
    model: nn.Module,
    loaded: LoadedCheckpoint,
    int8_method: str,
    tmp: Path,
    opset: int,
    base_config: dict,
    report: ExportReport,
    *,
    for_cpu: bool = True,
) -> tuple[Path, tuple[int, int]] | None:
    """Export ``model`` with its conv front-end as channels-last matmuls; return the graph and the shape of
    the weight that stays fp32, or None when ``auto`` finds a front-end it cannot rewrite.

    ``for_cpu`` adds the CPU levers of the int8 graph: the leading conv layers in cache-sized spans and
    attention as ONNX Runtime's ``MultiHeadAttention``. Without them the graph is the plain rewrite, which
    the optimizer and the fp16 conversion handle: the fp16 export's front-end (``fp16_front_end='auto'``)."""
    from w2v2_onnx_export.attention import fused_attention
    from w2v2_onnx_export.conv_matmul import rewrite_conv_front_end
    from w2v2_onnx_export.onnx_export import export_onnx
    from w2v2_onnx_export.wrapper import CTCExportWrapper

    precision = "int8" if for_cpu else "fp16"
    model.eval()
    # The wrapper first: it installs the masked GroupNorm that the rewrite carries over.
    wrapper = CTCExportWrapper(model, do_normalize=loaded.do_normalize).eval()
    try:
        encoder = rewrite_conv_front_end(model, **({} if for_cpu else {"blocks": 1}))
    except ValueError as exc:
        if int8_method == "dynamic-conv":
            raise ExportError(f"int8_method='dynamic-conv' cannot rewrite this front-end: {exc}; "
                              f"use int8_method='dynamic'") from exc
        report.notes.append(f"{precision}: conv front-end left {'in fp32' if for_cpu else 'as convolutions'} ({exc})")
        return None
    path = tmp / "exported_conv_matmul.onnx"
    with fused_attention(model) if for_cpu else contextlib.nullcontext(False) as fused:
        export_onnx(wrapper, path, opset=opset, receptive_field=base_config["receptive_field"],
                    frame_step=base_config["frame_step"])
    if fused:
        report.notes.append("int8: attention exported as ONNX Runtime's MultiHeadAttention (2-D key-padding mask)")
    report.notes.append(
        f"{precision}: {len(encoder.kernels)} conv layers rewritten as channels-last matmuls"
        + (f" before quantization (the first, weight {list(encoder.first_weight_shape)}, stays fp32)"
           if for_cpu else ""))
    return path, encoder.first_weight_shape
