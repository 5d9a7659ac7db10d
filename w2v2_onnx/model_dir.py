"""Read the model directory written by the export stage (see docs/model-directory.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from w2v2_onnx.checks import is_finite_number, path_exists
from w2v2_onnx.errors import (
    InvalidOptionError,
    ModelDirectoryError,
    ModelNotFoundError,
    PrecisionNotAvailableError,
    shorten_path,
)
from w2v2_onnx.vocabulary import Vocabulary

CONFIG_NAME = "w2v2_onnx.json"
METADATA_KEY = "w2v2_onnx"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_PRECISION_ORDER = {"cpu": ("int8", "fp32", "fp16"), "cuda": ("fp16", "fp32", "int8")}
BUNDLED_MODEL_DIR = Path(__file__).parent / "models" / "default"


@dataclass(frozen=True)
class ModelLanguageModel:
    """The n-gram language model a model directory ships for beam search, with the weights tuned for it.

    Attributes:
        path: the ARPA (``.arpa``, ``.arpa.gz``) or KenLM binary file inside the model directory.
        alpha: language model weight tuned for this model (None: the decoder's default).
        beta: word insertion bonus tuned for this model (None: the decoder's default).
    """

    path: Path
    alpha: float | None = None
    beta: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The facts the runtime needs about a model, read from ``w2v2_onnx.json`` or ONNX metadata."""

    sample_rate: int
    vocabulary: Vocabulary
    conv_kernel: tuple[int, ...]
    conv_stride: tuple[int, ...]
    files: dict[str, Path]
    model_type: str = "wav2vec2"
    do_normalize: bool = True
    language_model: ModelLanguageModel | None = None
    windows: tuple[float, float] | None = None  # the model's own (chunk_length, chunk_context) defaults, seconds
    trim_silence: bool = False  # the model's own default for Transcriber.transcribe(trim_silence=None)
    split_at_pauses: float | None = None  # the model's own default for transcribe(split_at_pauses=None)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def frame_step(self) -> int:
        """Samples between consecutive output frames (product of the conv strides)."""
        step = 1
        for s in self.conv_stride:
            step *= s
        return step

    @property
    def receptive_field(self) -> int:
        """Samples one output frame sees; inputs shorter than this give no frame."""
        field_ = 1
        for k, s in zip(reversed(self.conv_kernel), reversed(self.conv_stride), strict=True):
            field_ = (field_ - 1) * s + k
        return field_

    @property
    def frame_duration(self) -> float:
        """Seconds between consecutive output frames."""
        return self.frame_step / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        """Output frames the model gives for ``num_samples`` input samples."""
        n = num_samples
        for k, s in zip(self.conv_kernel, self.conv_stride, strict=True):
            if n < k:
                return 0
            n = (n - k) // s + 1
        return n

    def pick_precision(self, precision: str | None, device: str) -> tuple[str, Path]:
        """Return the precision and ONNX file to load: the one asked for, or the device's best available."""
        if precision is not None:
            if precision not in PRECISIONS:
                raise PrecisionNotAvailableError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
            if precision not in self.files:
                raise PrecisionNotAvailableError(
                    f"precision {precision!r} has no ONNX file in this model; available: {', '.join(self.files)}")
            return precision, self.files[precision]
        for candidate in DEFAULT_PRECISION_ORDER[device]:
            if candidate in self.files:
                return candidate, self.files[candidate]
        raise ModelDirectoryError("model lists no ONNX file for any precision (fp32, fp16, int8)")


def _require(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in raw:
        raise ModelDirectoryError(f"{where} has no {key!r} entry (see docs/model-directory.md)")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ModelDirectoryError(f"{where}: {key!r} has the wrong type {type(value).__name__}: {value!r}")
    return value


def parse_config(raw: dict[str, Any], where: str, files: dict[str, Path]) -> ModelConfig:
    """Validate a config dict (from the JSON file or ONNX metadata) and build a :class:`ModelConfig`."""
    if raw.get("format") != "w2v2-onnx" or raw.get("format_version") != FORMAT_VERSION:
        raise ModelDirectoryError(
            f"{where} is not a w2v2-onnx format {FORMAT_VERSION} config (format={raw.get('format')!r}, "
            f"format_version={raw.get('format_version')!r}); re-export the model with this version")
    tokens = _require(raw, "vocabulary", list, where)
    special = raw.get("special_tokens", [])
    if not isinstance(special, list) or not all(isinstance(t, str) for t in special):
        raise ModelDirectoryError(f"{where}: 'special_tokens' must be a list of token strings, got {special!r}")
    delimiter = raw.get("word_delimiter")
    if delimiter is not None and not isinstance(delimiter, str):
        raise ModelDirectoryError(f"{where}: 'word_delimiter' must be a token string or null, got {delimiter!r}")
    vocab = Vocabulary.from_tokens(
        tokens,
        blank_id=_require(raw, "blank_id", int, where),
        word_delimiter=delimiter,
        special_tokens=special,
    )
    kernel = tuple(_require(raw, "conv_kernel", list, where))
    stride = tuple(_require(raw, "conv_stride", list, where))
    if not kernel or len(kernel) != len(stride) or not all(isinstance(v, int) and v > 0 for v in kernel + stride):
        raise ModelDirectoryError(f"{where}: conv_kernel {list(kernel)} and conv_stride {list(stride)} must be "
                                  f"equally long lists of positive integers")
    rate = _require(raw, "sample_rate", int, where)
    if not 1_000 <= rate <= 768_000:
        raise ModelDirectoryError(f"{where}: sample_rate must be between 1000 and 768000 Hz (16000 for "
                                  f"wav2vec2), got {rate}")
    return ModelConfig(
        sample_rate=rate, vocabulary=vocab, conv_kernel=kernel, conv_stride=stride, files=files,
        model_type=str(raw.get("model_type", "wav2vec2")), do_normalize=bool(raw.get("do_normalize", True)),
        raw=raw)


def load_model_config(model: str | os.PathLike) -> ModelConfig:
    """Read a model directory, or a single ``.onnx`` file carrying the config in its metadata.

    Raises:
        ModelNotFoundError: the path does not exist, or the directory has no config or listed file.
        ModelDirectoryError: the config is malformed or the ONNX file carries no w2v2-onnx metadata.
    """
    path = Path(model)
    if not path_exists(path):
        raise ModelNotFoundError(f"model not found: {shorten_path(path)} (give a model directory written by "
                                 f"'w2v2-onnx export', or a .onnx file from one)")
    if path.is_file():
        return _config_from_onnx(path)
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise ModelNotFoundError(f"{path} is not a w2v2-onnx model directory: it has no {CONFIG_NAME} "
                                 f"(export one with 'w2v2-onnx export CHECKPOINT {path}')")
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirectoryError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelDirectoryError(f"{config_path} must hold a JSON object")
    listed = _require(raw, "files", dict, str(config_path))
    files: dict[str, Path] = {}
    for precision, name in listed.items():
        if precision not in PRECISIONS:
            raise ModelDirectoryError(f"{config_path}: unknown precision {precision!r} in 'files'; "
                                      f"allowed: {', '.join(PRECISIONS)}")
        file_path = path / str(name)
        if not file_path.is_file():
            raise ModelNotFoundError(f"{config_path} lists {precision} file {name!r}, which is missing")
        files[precision] = file_path
    if not files:
        raise ModelDirectoryError(f"{config_path} lists no ONNX file in 'files'")
    config = parse_config(raw, str(config_path), files)
    if "language_model" in raw:
        config = replace(config, language_model=_language_model(raw["language_model"], path, config_path))
    if "windows" in raw:
        config = replace(config, windows=_windows(raw["windows"], config, config_path))
    if "trim_silence" in raw:
        if not isinstance(raw["trim_silence"], bool):
            raise ModelDirectoryError(f"{config_path}: 'trim_silence' must be true or false, "
                                      f"got {raw['trim_silence']!r}")
        config = replace(config, trim_silence=raw["trim_silence"])
    if raw.get("split_at_pauses") is not None:
        from w2v2_onnx.audio import checked_pause

        try:
            config = replace(config, split_at_pauses=checked_pause(raw["split_at_pauses"], "'split_at_pauses'"))
        except InvalidOptionError as exc:
            raise ModelDirectoryError(f"{config_path}: {exc}") from exc
    return config


def _windows(entry: Any, config: ModelConfig, config_path: Path) -> tuple[float, float]:
    """The ``windows`` entry: the model's own default window length and context in seconds, checked by the
    window planner itself (so every setting it accepts here runs)."""
    from w2v2_onnx.windows import make_plan  # windows.py imports this module

    where = f"{config_path}: 'windows'"
    if not isinstance(entry, dict) or set(entry) != {"chunk_length", "chunk_context"}:
        raise ModelDirectoryError(f"{where} must be an object with exactly 'chunk_length' and 'chunk_context' "
                                  f"(seconds), got {entry!r}")
    length, context = entry["chunk_length"], entry["chunk_context"]
    try:
        make_plan(config, length, context)
    except InvalidOptionError as exc:
        raise ModelDirectoryError(f"{where}: {exc}") from exc
    return float(length), float(context)


def _language_model(entry: Any, directory: Path, config_path: Path) -> ModelLanguageModel:
    """The ``language_model`` entry of a model directory's config, checked (see docs/model-directory.md)."""
    where = f"{config_path}: 'language_model'"
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ModelDirectoryError(f"{where} must be an object with a 'path' string (and optional 'alpha', "
                                  f"'beta' numbers), got {entry!r}")
    if Path(entry["path"]).is_absolute() or ".." in Path(entry["path"]).parts:
        raise ModelDirectoryError(f"{where}: path {entry['path']!r} must name a file inside the model directory")
    lm_path = directory / entry["path"]
    if not lm_path.is_file():
        raise ModelNotFoundError(f"{where} names {entry['path']!r}, which is missing")
    weights = {}
    for key in ("alpha", "beta"):
        value = entry.get(key)
        if value is not None and not is_finite_number(value):
            raise ModelDirectoryError(f"{where}: {key!r} must be a finite number or null, got {value!r}")
        weights[key] = None if value is None else float(value)
    return ModelLanguageModel(lm_path, **weights)


def set_language_model(model_dir: str | os.PathLike, lm: str | os.PathLike | None, *,
                       alpha: float | None = None, beta: float | None = None) -> ModelConfig:
    """Give a model directory its own language model (or take it away), as ``w2v2-onnx add-lm`` does.

    The LM file is checked by loading it, copied into the directory (unless it is there already) and named in
    ``w2v2_onnx.json`` with ``alpha`` and ``beta``; ``lm=None`` removes the entry (the file stays).

    Args:
        model_dir: a model directory written by ``w2v2-onnx export``.
        lm: an ARPA, gzipped ARPA or KenLM binary file; None to remove the entry.
        alpha, beta: the weights tuned for this model (None: the decoder's defaults).

    Returns:
        The directory's config as the runtime now reads it.

    Raises:
        ModelNotFoundError, ModelDirectoryError: not a model directory, or a missing LM file.
        LanguageModelError: the file is not a loadable language model.
        InvalidOptionError: a weight that is not a finite number.
    """
    import shutil

    from w2v2_onnx.lm import load_ngram_model

    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelNotFoundError(f"model directory not found: {directory}")
    load_model_config(directory)  # a valid model directory first
    config_path = directory / CONFIG_NAME
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    if lm is None:
        raw.pop("language_model", None)
    else:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if value is not None and not is_finite_number(value):
                raise InvalidOptionError(f"{name} must be a finite number or None, got {value!r}")
        source = Path(lm)
        if not source.is_file():
            raise ModelNotFoundError(f"language model file not found: {source}")
        load_ngram_model(source)  # refuse a file the decoder could not load
        target = directory / source.name
        if not (target.exists() and target.samefile(source)):
            shutil.copyfile(source, target)
        raw["language_model"] = {"path": source.name, "alpha": alpha, "beta": beta}
    temporary = config_path.with_name(config_path.name + ".tmp")
    temporary.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(config_path)
    return load_model_config(directory)


def _config_from_onnx(path: Path) -> ModelConfig:
    import onnxruntime as ort  # metadata without loading the graph into an optimizer twice is not offered

    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        meta = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
        raise ModelDirectoryError(f"{path} is not a readable ONNX file: {exc}") from exc
    text = meta.custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ModelDirectoryError(f"{path} carries no {METADATA_KEY!r} metadata: it was not written by "
                                  f"'w2v2-onnx export'")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelDirectoryError(f"{path}: metadata {METADATA_KEY!r} is not valid JSON: {exc}") from exc
    precision = raw.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ModelDirectoryError(f"{path}: metadata precision {precision!r} is not one of {PRECISIONS}")
    return parse_config(raw, str(path), {precision: path})


def resolve_model(model: str | os.PathLike | None) -> Path:
    """Turn the ``model`` argument into a local path: ``None`` is the bundled model; a hub id is downloaded.

    Raises:
        ModelNotFoundError: no bundled model, or a hub id that cannot be fetched.
    """
    if model is None:
        if not (BUNDLED_MODEL_DIR / CONFIG_NAME).is_file():
            raise ModelNotFoundError("this installation has no bundled default model; pass a model directory "
                                     "written by 'w2v2-onnx export' (Transcriber('path/to/model'))")
        return BUNDLED_MODEL_DIR
    if not isinstance(model, str | os.PathLike):
        raise ModelNotFoundError(f"model must be a model directory, an .onnx file, a hub id or None (the bundled "
                                 f"model), got {type(model).__name__}: {model!r}")
    path = Path(model)
    text = str(model)
    if path_exists(path) or not _looks_like_hub_id(text):
        return path
    return _download_from_hub(text)


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts) and not text.endswith(".onnx")


def _download_from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelNotFoundError(f"model {repo_id!r} is not a local path; to fetch it from the Hugging Face hub "
                                 f"install huggingface_hub (pip install huggingface_hub)") from exc
    try:
        return Path(snapshot_download(repo_id, allow_patterns=[CONFIG_NAME, "*.onnx", "*.json"]))
    except Exception as exc:  # network errors, missing repos, auth: all mean "not found" to the caller
        reason = " ".join(str(exc).split())  # huggingface_hub's messages span lines; ours is one
        raise ModelNotFoundError(f"model {repo_id!r} is neither a local path nor downloadable from the "
                                 f"Hugging Face hub: {reason}") from exc
