"""The Transcriber end to end on the tone model, whose transcripts are known exactly."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tone_model as tm

import w2v2_onnx
from w2v2_onnx import (
    DecoderError,
    DeviceNotAvailableError,
    InvalidOptionError,
    ModelDirectoryError,
    ModelNotFoundError,
    PrecisionNotAvailableError,
    Transcriber,
    Transcription,
    Word,
)

TEXT = "HELLO WORLD IT'S A TEST"


def test_exact_text_and_word_times(tone_transcriber):
    result = tone_transcriber.transcribe(tm.synthesize(TEXT))
    assert isinstance(result, Transcription)
    assert result.text == TEXT
    starts = [0, 6, 12, 17, 19]  # character index of each word's first letter
    assert [w.word for w in result.words] == TEXT.split()
    assert [w.start for w in result.words] == pytest.approx([tm.char_start_seconds(TEXT, i) for i in starts])
    for word in result.words:
        assert isinstance(word, Word) and 0.9 < word.probability <= 1.0 and word.end > word.start
    assert result.duration == pytest.approx(tm.synthesize(TEXT).size / tm.RATE)


def test_results_are_frozen(tone_transcriber):
    result = tone_transcriber.transcribe(tm.synthesize("AB"))
    with pytest.raises(AttributeError):
        result.text = "x"


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_rate_is_resampled(tone_transcriber, rate):
    assert tone_transcriber.transcribe(tm.synthesize(TEXT, rate), sample_rate=rate).text == TEXT


def test_integer_stereo_and_file_inputs(tone_transcriber, tmp_path):
    audio = tm.synthesize(TEXT)
    pcm16 = (audio * 32767).astype(np.int16)
    assert tone_transcriber.transcribe(pcm16).text == TEXT
    assert tone_transcriber.transcribe(np.stack([audio, audio], axis=1)).text == TEXT
    path = tmp_path / "speech.flac"
    sf.write(path, audio, tm.RATE)
    assert tone_transcriber.transcribe(path).text == TEXT
    assert tone_transcriber.transcribe(str(path)).text == TEXT
    assert tone_transcriber.transcribe(path.read_bytes()).text == TEXT
    assert tone_transcriber.transcribe(io.BytesIO(path.read_bytes())).text == TEXT


def test_list_in_list_out_and_batched_equals_single(tone_transcriber):
    texts = ["A", "HELLO THERE", "IT'S", "GOOD MORNING TO YOU ALL", "OK", "ZZ TOP"]
    audios = [tm.synthesize(t) for t in texts]
    singles = [tone_transcriber.transcribe(a, batch_size=1) for a in audios]
    batched = tone_transcriber.transcribe(audios, batch_size=4)
    assert isinstance(batched, list) and [r.text for r in batched] == texts
    assert [r.words for r in batched] == [r.words for r in singles]


def test_empty_and_very_short_audio(tone_transcriber):
    empty = tone_transcriber.transcribe(np.zeros(0, np.float32))
    assert (empty.text, empty.words, empty.duration) == ("", (), 0.0)
    short = tone_transcriber.transcribe(np.zeros(100, np.float32))
    assert short.text == "" and short.duration == pytest.approx(100 / tm.RATE)
    mixed = tone_transcriber.transcribe([np.zeros(0, np.float32), tm.synthesize("AB"), np.zeros(0, np.float32)])
    assert [r.text for r in mixed] == ["", "AB", ""]


@pytest.mark.parametrize("chunk_length,chunk_context", [(2.0, 0.3), (3.1, 0.5), (7.7, 1.0), (20.0, 2.0)])
def test_long_file_joins_lose_and_double_nothing(tone_transcriber, tmp_path, chunk_length, chunk_context):
    clips = ["THE QUICK BROWN FOX", "JUMPS OVER", "A LAZY DOG", "SPEECH TO TEXT", "IS FUN"]
    # a long file made by concatenating known clips (each ends with the word-delimiter tone)
    pieces = [tm.synthesize(c + " ") for c in clips] * 6
    expected = " ".join(clips * 6)
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate(pieces), tm.RATE, subtype="FLOAT")
    whole = tone_transcriber.transcribe(path, chunk_length=10_000.0)
    windowed = tone_transcriber.transcribe(path, chunk_length=chunk_length, chunk_context=chunk_context)
    assert whole.text == expected
    assert windowed.text == expected
    assert windowed.words == whole.words


def test_long_file_with_resampling_and_batches(tone_transcriber, tmp_path):
    text = " ".join(["ONE TWO THREE"] * 12)
    path = tmp_path / "long44k.flac"
    sf.write(path, tm.synthesize(text, 44100), 44100)
    for batch_size in (1, 3):
        result = tone_transcriber.transcribe(path, chunk_length=2.5, chunk_context=0.4, batch_size=batch_size)
        assert result.text == text


def test_log_probs_are_the_frames_transcribe_decodes(tone_transcriber, tmp_path):
    from w2v2_onnx.greedy import greedy_decode

    text = " ".join(["ONE TWO THREE"] * 8)
    path = tmp_path / "long.flac"
    sf.write(path, tm.synthesize(text), tm.RATE)
    config = tone_transcriber.config
    for options in ({}, dict(chunk_length=2.5, chunk_context=0.4, batch_size=3)):
        lp = tone_transcriber.log_probs(path, **options)
        assert lp.dtype == np.float32 and lp.shape == (config.num_frames(tm.synthesize(text).size),
                                                         len(config.vocabulary))
        assert np.allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-4)
        decoded = greedy_decode(lp, config.vocabulary, config.frame_duration)
        assert decoded.text == text == tone_transcriber.transcribe(path, **options).text
    listed = tone_transcriber.log_probs([tm.synthesize("AB"), np.zeros(0, np.float32)])
    assert isinstance(listed, list) and listed[1].shape == (0, len(config.vocabulary))
    with pytest.raises(InvalidOptionError, match="batch_size"):
        tone_transcriber.log_probs(tm.synthesize("AB"), batch_size=0)


def test_word_timestamps_off_and_options_echoed(tone_transcriber):
    result = tone_transcriber.transcribe(tm.synthesize("AB CD"), word_timestamps=False)
    assert result.text == "AB CD" and result.words == ()
    assert result.options["decoder"] == "greedy" and result.options["precision"] == "fp32"


@pytest.mark.parametrize("options,match", [
    ({"decoder": "viterbi"}, "decoder"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"chunk_length": -1.0}, "chunk_length"),
    ({"chunk_length": float("nan")}, "chunk_length"),
    ({"chunk_length": 1.0, "chunk_context": 0.5}, "chunk_length"),
    ({"beam_width": 10}, "beam"),
])
def test_bad_options(tone_transcriber, options, match):
    with pytest.raises(InvalidOptionError, match=match) as info:
        tone_transcriber.transcribe(tm.synthesize("A"), **options)
    assert isinstance(info.value, ValueError)


def test_module_level_transcribe_caches_its_transcriber(tone_model_dir):
    first = w2v2_onnx.transcribe(tm.synthesize("HI"), tone_model_dir, device="cpu")
    cached = w2v2_onnx.transcriber._CACHE[(str(tone_model_dir), "cpu", None, None)]
    second = w2v2_onnx.transcribe(tm.synthesize("YO"), tone_model_dir, device="cpu")
    assert (first.text, second.text) == ("HI", "YO")
    assert w2v2_onnx.transcriber._CACHE[(str(tone_model_dir), "cpu", None, None)] is cached


def test_single_onnx_file_carries_its_config(tone_model_dir):
    model = Transcriber(tone_model_dir / "model.fp32.onnx", device="cpu")
    assert model.transcribe(tm.synthesize(TEXT)).text == TEXT


# --- bad model directories and devices ---------------------------------------------------------------


def test_missing_model(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        Transcriber(tmp_path / "absent")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="w2v2_onnx.json"):
        Transcriber(tmp_path)
    with pytest.raises(ModelNotFoundError, match="characters"):  # a name too long: typed, shortened
        Transcriber(tmp_path / ("m" * 5000))


def _copy_model(tone_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tone_model_dir, target)
    return target


def test_bad_config_files(tone_model_dir, tmp_path):
    model = _copy_model(tone_model_dir, tmp_path)
    config = json.loads((model / "w2v2_onnx.json").read_text())
    (model / "w2v2_onnx.json").write_text("{not json")
    with pytest.raises(ModelDirectoryError, match="not valid JSON"):
        Transcriber(model)
    (model / "w2v2_onnx.json").write_text(json.dumps(config | {"format_version": 99}))
    with pytest.raises(ModelDirectoryError, match="format_version"):
        Transcriber(model)
    (model / "w2v2_onnx.json").write_text(json.dumps(config | {"files": {"fp32": "gone.onnx"}}))
    with pytest.raises(ModelNotFoundError, match="gone.onnx"):
        Transcriber(model)
    (model / "w2v2_onnx.json").write_text(json.dumps({k: v for k, v in config.items() if k != "vocabulary"}))
    with pytest.raises(ModelDirectoryError, match="vocabulary"):
        Transcriber(model)
    for field, value, match in [("special_tokens", 5, "'special_tokens' must be a list of token strings"),
                                ("special_tokens", "[PAD]", "'special_tokens' must be a list of token strings"),
                                ("word_delimiter", 3, "'word_delimiter' must be a token string"),
                                ("sample_rate", 1, "sample_rate must be between 1000 and 768000 Hz")]:
        (model / "w2v2_onnx.json").write_text(json.dumps(config | {field: value}))
        with pytest.raises(ModelDirectoryError, match=match):
            Transcriber(model)


def test_bad_model_argument_threads_and_providers(tone_model_dir):
    with pytest.raises(ModelNotFoundError, match="got int: 5"):
        Transcriber(5)
    for threads in (0, 10**6, 2**31, True):
        with pytest.raises(InvalidOptionError, match="threads must be an integer from 1 to 1024"):
            Transcriber(tone_model_dir, threads=threads)
    with pytest.raises(InvalidOptionError, match="providers must be a non-empty list"):
        Transcriber(tone_model_dir, providers="CPUExecutionProvider")
    with pytest.raises(DeviceNotAvailableError, match="BogusExecutionProvider.*not available"):
        Transcriber(tone_model_dir, providers=["BogusExecutionProvider"])
    assert Transcriber(tone_model_dir, providers=[("CPUExecutionProvider", {})]).device == "cpu"


def test_bad_beam_options_are_typed_errors(tone_transcriber):
    from w2v2_onnx.errors import DecoderError

    for options, match in [({"alpha": float("nan")}, "alpha"), ({"hotwords": "HI"}, "hotwords must be a list"),
                           ({"beam_width": 10**6}, "beam_width"), ({"lm": 5}, "lm must be a path")]:
        with pytest.raises(DecoderError, match=match):
            tone_transcriber.transcribe(tm.synthesize("HI"), decoder="beam", **options)


def test_corrupt_onnx_file(tone_model_dir, tmp_path):
    model = _copy_model(tone_model_dir, tmp_path)
    data = (model / "model.fp32.onnx").read_bytes()
    (model / "model.fp32.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelDirectoryError, match="not a loadable ONNX model"):
        Transcriber(model, device="cpu")


def test_vocabulary_not_matching_logits(tmp_path):
    model = tm.build_tone_model(tmp_path / "mismatch", vocab_size=20)
    with pytest.raises(ModelDirectoryError, match="20 logits"):
        Transcriber(model, device="cpu")


def test_onnx_without_metadata(tmp_path):
    model = tm.build_tone_model(tmp_path / "nometa", with_metadata=False)
    with pytest.raises(ModelDirectoryError, match="metadata"):
        Transcriber(model / "model.fp32.onnx")


def test_precision_not_available(tone_model_dir):
    with pytest.raises(PrecisionNotAvailableError, match="int8"):
        Transcriber(tone_model_dir, device="cpu", precision="int8")
    with pytest.raises(PrecisionNotAvailableError, match="fp64"):
        Transcriber(tone_model_dir, device="cpu", precision="fp64")


def test_device_errors(tone_model_dir):
    import onnxruntime as ort

    with pytest.raises(InvalidOptionError, match="device"):
        Transcriber(tone_model_dir, device="tpu")
    with pytest.raises(InvalidOptionError, match="threads"):
        Transcriber(tone_model_dir, device="cpu", threads=0)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here; the unavailable-device error cannot be provoked")
    with pytest.raises(DeviceNotAvailableError, match="CPUExecutionProvider") as info:
        Transcriber(tone_model_dir, device="cuda")
    assert isinstance(info.value, RuntimeError)


def test_default_model_is_bundled_or_clearly_missing():
    from w2v2_onnx.model_dir import BUNDLED_MODEL_DIR

    if (BUNDLED_MODEL_DIR / "w2v2_onnx.json").exists():
        assert Transcriber(device="cpu").sample_rate > 0
    else:
        with pytest.raises(ModelNotFoundError, match="bundled"):
            Transcriber()


def test_runtime_never_imports_torch_or_transformers(tone_model_dir):
    code = (
        "import sys, numpy as np, w2v2_onnx\n"
        f"sys.path.insert(0, {str(tm.__file__.rsplit('/', 1)[0])!r})\n"
        "import tone_model as tm\n"
        f"r = w2v2_onnx.transcribe(tm.synthesize('OK'), {str(tone_model_dir)!r}, device='cpu')\n"
        "assert r.text == 'OK', r.text\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hub_id_that_cannot_be_fetched_is_a_clear_not_found(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="hub"):
        Transcriber("no-such-org/no-such-model")


def test_beam_decoder_through_the_transcriber(tone_transcriber, tmp_path):
    from w2v2_onnx import DecoderError

    audio = tm.synthesize(TEXT)
    greedy = tone_transcriber.transcribe(audio)
    beam = tone_transcriber.transcribe(audio, decoder="beam", beam_width=8)
    assert beam.text == greedy.text == TEXT
    assert [w.word for w in beam.words] == [w.word for w in greedy.words]
    assert [w.start for w in beam.words] == pytest.approx([w.start for w in greedy.words], abs=0.021)
    assert beam.options["decoder"] == "beam" and beam.options["beam_width"] == 8
    with pytest.raises(DecoderError, match="beam_width"):
        tone_transcriber.transcribe(audio, decoder="beam", beam_width=0)
    lm = tmp_path / "missing.arpa"
    with pytest.raises(w2v2_onnx.LanguageModelError):
        tone_transcriber.transcribe(audio, decoder="beam", lm=lm)


def test_sessions_flush_denormals(tone_transcriber):
    # Trained attention yields probabilities below 1.2e-38; as denormals they slowed the bundled model 3.4x.
    from w2v2_onnx.session import DENORMAL_AS_ZERO

    options = tone_transcriber.model.session.get_session_options()
    assert options.get_session_config_entry(DENORMAL_AS_ZERO) == "1"


def test_check_options_refuses_what_transcribe_would(tone_transcriber):
    tone_transcriber.check_options(decoder="beam", beam_width=4, chunk_length=10.0)
    with pytest.raises(InvalidOptionError, match="unknown transcribe options \\['beamwidth'\\]"):
        tone_transcriber.check_options(beamwidth=4)
    with pytest.raises(InvalidOptionError, match="chunk_length"):
        tone_transcriber.check_options(chunk_length=-1.0)


def test_module_level_cache_keys_local_models_by_absolute_path_and_survives_a_failed_load(
        tone_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tone_model_dir.parent)
    assert w2v2_onnx.transcribe(tm.synthesize("HI"), tone_model_dir.name, device="cpu").text == "HI"
    cached = w2v2_onnx.transcriber._CACHE[(str(tone_model_dir), "cpu", None, None)]
    with pytest.raises(ModelNotFoundError):
        w2v2_onnx.transcribe(tm.synthesize("HI"), tmp_path / "absent", device="cpu")
    assert w2v2_onnx.transcriber._CACHE[(str(tone_model_dir), "cpu", None, None)] is cached
    with pytest.raises(InvalidOptionError, match="threads"):
        w2v2_onnx.transcribe(tm.synthesize("HI"), tone_model_dir, device="cpu", threads=True)


def test_nan_log_probabilities_are_an_inference_error(tone_model_dir, monkeypatch):
    """A model that overflows (say in fp16) must not turn NaN into text or into invalid JSON."""
    from w2v2_onnx.errors import InferenceError

    model = Transcriber(tone_model_dir, device="cpu")
    real_run = model.model.session.run

    def nan_run(names, feeds):
        log_probs, lengths = real_run(names, feeds)
        log_probs[0, 0, 0] = np.nan
        return log_probs, lengths

    monkeypatch.setattr(model.model, "session", type("S", (), {"run": staticmethod(nan_run)})())
    with pytest.raises(InferenceError, match="NaN or \\+inf log-probabilities"):
        model.transcribe(tm.synthesize("HI"))


def _model_with_language_model(tone_model_dir, tmp_path, entry=None):
    return tm.copy_with_language_model(_copy_model(tone_model_dir, tmp_path), tmp_path, entry)


def test_model_directory_language_model_is_the_default_beam_search(tone_model_dir, tmp_path):
    model = _model_with_language_model(tone_model_dir, tmp_path)
    transcriber = Transcriber(model)
    shipped = transcriber.language_model
    assert shipped.path == model / "lm.arpa" and (shipped.alpha, shipped.beta) == (0.3, 1.5)
    audio = tm.synthesize(TEXT)
    default = transcriber.transcribe(audio)
    assert default.text == TEXT
    assert default.options["decoder"] == "beam" and default.options["lm"] == str(model / "lm.arpa")
    assert (default.options["alpha"], default.options["beta"]) == (0.3, 1.5)
    explicit = transcriber.transcribe(audio, decoder="beam", lm=model / "lm.arpa", alpha=0.3, beta=1.5)
    assert explicit.text == default.text and explicit.words == default.words
    own_alpha = transcriber.transcribe(audio, alpha=0.9)
    assert (own_alpha.options["alpha"], own_alpha.options["beta"]) == (0.9, 1.5)
    no_lm = transcriber.transcribe(audio, lm=False)
    assert no_lm.options["decoder"] == "beam" and "lm" not in no_lm.options and "alpha" not in no_lm.options
    greedy = transcriber.transcribe(audio, decoder="greedy")
    assert greedy.options["decoder"] == "greedy" and "lm" not in greedy.options and greedy.text == TEXT
    with pytest.raises(InvalidOptionError, match="lm=True is not an option"):
        transcriber.transcribe(audio, lm=True)
    with pytest.raises(InvalidOptionError, match="apply to decoder='beam' only"):
        transcriber.transcribe(audio, decoder="greedy", alpha=0.5)
    # a model without one decodes greedily by default, as before
    assert Transcriber(tone_model_dir).transcribe(audio).options["decoder"] == "greedy"


def test_bad_language_model_entries(tone_model_dir, tmp_path):
    cases = [({"path": "gone.arpa"}, ModelNotFoundError, "gone.arpa"),
             ({"path": "../lm.arpa"}, ModelDirectoryError, "inside the model directory"),
             ({"path": "lm.arpa", "alpha": "high"}, ModelDirectoryError, "'alpha' must be a finite number"),
             ({"path": "lm.arpa", "beta": float("nan")}, ModelDirectoryError, "'beta' must be a finite number"),
             ("lm.arpa", ModelDirectoryError, "must be an object with a 'path' string")]
    for number, (entry, error, match) in enumerate(cases):
        model = _model_with_language_model(tone_model_dir, tmp_path / str(number), entry)
        with pytest.raises(error, match=match):
            Transcriber(model)


def test_cli_no_lm_and_lm_exclude_each_other(tone_model_dir, tmp_path, capsys):
    from w2v2_onnx.cli import main

    model = _model_with_language_model(tone_model_dir, tmp_path)
    audio = tmp_path / "a.wav"
    sf.write(audio, tm.synthesize(TEXT), tm.RATE)
    assert main(["transcribe", str(audio), "--model", str(model)]) == 0
    assert main(["transcribe", str(audio), "--model", str(model), "--no-lm"]) == 0
    assert capsys.readouterr().out.splitlines() == [TEXT, TEXT]
    with pytest.raises(SystemExit) as exited:
        main(["transcribe", str(audio), "--model", str(model), "--no-lm", "--lm", str(model / "lm.arpa")])
    assert exited.value.code == 2


def test_add_lm_command_gives_a_model_its_language_model_and_takes_it_away(tone_model_dir, tmp_path, capsys):
    from w2v2_onnx.cli import main
    from w2v2_onnx.lm_build import build_lm

    model = _copy_model(tone_model_dir, tmp_path)
    text = tmp_path / "lm.txt"
    text.write_text("HELLO WORLD IT'S A TEST\nA TEST OF THE WORLD\n" * 3)
    lm = build_lm([text], tmp_path / "words", order=2, estimator="python", binary=False)[0]
    assert main(["add-lm", str(model), str(lm), "--alpha", "0.3", "--beta", "1.5"]) == 0
    assert "beam search with it is the default" in capsys.readouterr().out
    transcriber = Transcriber(model)
    assert transcriber.language_model.path == model / "words.arpa" and transcriber.language_model.alpha == 0.3
    result = transcriber.transcribe(tm.synthesize(TEXT))
    assert result.text == TEXT and result.options["decoder"] == "beam" and result.options["beta"] == 1.5
    not_an_lm = tmp_path / "notes.arpa"
    not_an_lm.write_text("these are not n-grams\n")
    for argv, match in [([str(not_an_lm)], "notes.arpa"), ([str(lm), "--alpha", "nan"], "alpha must be a finite"),
                        ([], "either an LM file or --remove"), ([str(tmp_path / "gone.arpa")], "not found")]:
        assert main(["add-lm", str(model), *argv]) == 2
        assert match in capsys.readouterr().err
    assert Transcriber(model).language_model.alpha == 0.3  # a refused call changed nothing
    assert main(["add-lm", str(model), "--remove"]) == 0
    assert Transcriber(model).language_model is None
    assert Transcriber(model).transcribe(tm.synthesize(TEXT)).options["decoder"] == "greedy"


def test_decode_of_log_probs_equals_transcribe(tone_model_dir, tmp_path):
    transcriber = Transcriber(_model_with_language_model(tone_model_dir, tmp_path))
    audio = tm.synthesize("HELLO WORLD")
    frames = transcriber.log_probs(audio)
    for options in ({}, {"decoder": "greedy"}, {"lm": False}, {"decoder": "beam", "alpha": 0.9, "beam_width": 8}):
        expected = transcriber.transcribe(audio, **options)
        decoded = transcriber.decode(frames, **options)
        assert (decoded.text, decoded.words) == (expected.text, expected.words), options
    with pytest.raises(DecoderError, match=r"shape \[frames, 30\]"):
        transcriber.decode(frames[:, :5])
    with pytest.raises(DecoderError, match="float array"):
        transcriber.decode(np.zeros((3, 30), dtype=np.int64), decoder="greedy")
    broken = frames.copy()
    broken[1, 2] = np.nan
    for decoder in ("greedy", "beam"):
        with pytest.raises(DecoderError, match="NaN"):
            transcriber.decode(broken, decoder=decoder)
    with pytest.raises(InvalidOptionError, match="decoder must be one of"):
        transcriber.decode(frames, decoder="viterbi")


def test_model_directory_windows_are_the_default_and_options_override_them(tone_model_dir, tmp_path):
    model = _copy_model(tone_model_dir, tmp_path)
    config = json.loads((model / "w2v2_onnx.json").read_text())
    (model / "w2v2_onnx.json").write_text(json.dumps(config | {"windows": {"chunk_length": 2.5,
                                                                           "chunk_context": 0.4}}))
    transcriber = Transcriber(model)
    audio = tm.synthesize(TEXT + " " + TEXT)  # longer than one 2.5 s window
    own = transcriber.transcribe(audio)
    assert own.text == TEXT + " " + TEXT
    assert (own.options["chunk_length"], own.options["chunk_context"]) == (2.5, 0.4)
    explicit = transcriber.transcribe(audio, chunk_length=2.5, chunk_context=0.4)
    assert explicit.words == own.words
    assert np.array_equal(transcriber.log_probs(audio), transcriber.log_probs(audio, chunk_length=2.5,
                                                                              chunk_context=0.4))
    other = transcriber.transcribe(audio, chunk_length=20.0)
    assert (other.options["chunk_length"], other.options["chunk_context"]) == (20.0, 0.4)
    plain = Transcriber(tone_model_dir).transcribe(audio)
    assert (plain.options["chunk_length"], plain.options["chunk_context"]) == (20.0, 2.0)


@pytest.mark.parametrize("entry", [{"chunk_length": 10}, {"chunk_length": 2.0, "chunk_context": 1.0},
                                   {"chunk_length": "10", "chunk_context": 1}, [10, 1],
                                   {"chunk_length": 0.02, "chunk_context": 0.001}])
def test_bad_model_directory_windows_are_refused(tone_model_dir, tmp_path, entry):
    model = _copy_model(tone_model_dir, tmp_path)
    config = json.loads((model / "w2v2_onnx.json").read_text())
    (model / "w2v2_onnx.json").write_text(json.dumps(config | {"windows": entry}))
    with pytest.raises(ModelDirectoryError, match="'windows'"):
        Transcriber(model)


def test_trim_silence_cuts_the_margins_and_keeps_the_input_times(tone_transcriber):
    padded = tm.synthesize(TEXT, lead=2.0)
    result = tone_transcriber.transcribe(padded, trim_silence=True)
    assert result.text == TEXT and result.options["trim_silence"] is True
    starts = [0, 6, 12, 17, 19]
    assert [w.start for w in result.words] == pytest.approx([tm.char_start_seconds(TEXT, i, lead=2.0) for i in starts])
    assert result.duration == pytest.approx(padded.size / tm.RATE)  # the input's duration, not the trimmed one
    plain = tone_transcriber.transcribe(padded)
    assert [w.start for w in plain.words] == [w.start for w in result.words]
    assert "trim_silence" not in plain.options
    # silence only, and lists of inputs, go through as before
    assert tone_transcriber.transcribe(np.zeros(16000, np.float32), trim_silence=True).text == ""
    many = tone_transcriber.transcribe([padded, tm.synthesize("AB")], trim_silence=True)
    assert [r.text for r in many] == [TEXT, "AB"]
    with pytest.raises(InvalidOptionError, match="trim_silence must be True, False or None"):
        tone_transcriber.transcribe(padded, trim_silence="yes")


def test_speech_span_matches_the_training_trim():
    from w2v2_onnx.audio import speech_span
    from w2v2_onnx_finetune.audio import trim_silence

    rng = np.random.default_rng(0)
    tone = (0.5 * np.sin(np.arange(8000) / 3)).astype(np.float32)
    for lead, noise in ((1.0, 0.0), (0.3, 1e-4), (0.0, 0.0)):
        audio = np.concatenate([np.zeros(int(lead * 16000), np.float32), tone, np.zeros(16000, np.float32)])
        audio = audio + (noise * rng.standard_normal(audio.size)).astype(np.float32)
        start, end = speech_span(audio, 16000)
        np.testing.assert_array_equal(audio[start:end], trim_silence(audio, margin_s=0.2))
        assert start == max(0, int(lead * 16000) - 3200) and end == int(lead * 16000) + 8000 + 3200
    assert speech_span(np.zeros(16000, np.float32), 16000) == (0, 16000)
    assert speech_span(np.ones(100, np.float32), 16000) == (0, 100)


def test_model_directory_can_make_trimming_its_default(tone_model_dir, tmp_path):
    model = tm.copy_with_config(tone_model_dir, tmp_path / "model", trim_silence=True)
    transcriber = Transcriber(model, device="cpu", threads=1)
    padded = tm.synthesize(TEXT, lead=2.0)
    assert transcriber.transcribe(padded).options["trim_silence"] is True
    assert "trim_silence" not in transcriber.transcribe(padded, trim_silence=False).options
    assert "trim_silence" not in transcriber.stream().finish().options  # streams never trim
    bad = tm.copy_with_config(tone_model_dir, tmp_path / "bad", trim_silence="yes")
    with pytest.raises(ModelDirectoryError, match="'trim_silence' must be true or false"):
        Transcriber(bad, device="cpu")


def test_inputs_longer_than_the_trim_limit_are_left_whole(tone_transcriber, monkeypatch):
    import w2v2_onnx.transcriber as transcriber_module

    def not_called(*args, **kwargs):
        raise AssertionError("a long input must not be read whole for trimming")

    monkeypatch.setattr(transcriber_module, "TRIM_MAX_SECONDS", 3.0)
    monkeypatch.setattr(transcriber_module, "speech_span", not_called)
    padded = tm.synthesize("AB", lead=2.0)  # 4.3 s: over the (patched) limit, so nothing is cut
    result = tone_transcriber.transcribe(padded, trim_silence=True)
    assert result.text == "AB"
    assert result.words[0].start == pytest.approx(tone_transcriber.transcribe(padded).words[0].start)


def test_split_at_pauses_transcribes_each_stretch_on_its_own(tone_transcriber):
    first, second = tm.synthesize("HELLO", lead=1.0), tm.synthesize("WORLD", lead=0.5)
    audio = np.concatenate([first, second])  # a 1.5 s pause between the words, no word delimiter tone
    assert tone_transcriber.transcribe(audio).text == "HELLOWORLD"
    result = tone_transcriber.transcribe(audio, split_at_pauses=0.3)
    assert result.text == "HELLO WORLD" and result.options["split_at_pauses"] == 0.3
    expected = [tm.char_start_seconds("HELLO", 0, lead=1.0), first.size / tm.RATE + 0.5]
    assert [w.start for w in result.words] == pytest.approx(expected)
    assert result.duration == pytest.approx(audio.size / tm.RATE)
    assert tone_transcriber.transcribe(audio, split_at_pauses=2.0).text == "HELLOWORLD"  # the pause is shorter
    assert tone_transcriber.transcribe(audio, split_at_pauses=0.3, word_timestamps=False).words == ()
    for bad in (0, -1.0, 20.0, "0.5", True, float("nan")):
        with pytest.raises(InvalidOptionError, match="split_at_pauses must be a number of seconds from 0.05 to 10"):
            tone_transcriber.transcribe(audio, split_at_pauses=bad)


def test_speech_segments_split_at_long_pauses_only():
    from w2v2_onnx.audio import speech_segments, speech_span

    tone = (0.5 * np.sin(np.arange(8000) / 3)).astype(np.float32)
    silence = [np.zeros(int(s * 16000), np.float32) for s in (1.0, 0.6, 0.2, 1.0)]
    audio = np.concatenate([silence[0], tone, silence[1], tone, silence[2], tone, silence[3]])
    # tones at 16000, 33600 and 44800 (8000 samples each); 0.2 s margins, never past the middle of a pause
    assert speech_segments(audio, 16000, 0.5) == [(12800, 27200), (30400, 56000)]
    assert speech_segments(audio, 16000, 0.1) == [(12800, 27200), (30400, 43200), (43200, 56000)]
    assert speech_segments(audio, 16000, 5.0) == [speech_span(audio, 16000)]
    assert speech_segments(np.zeros(16000, np.float32), 16000, 0.5) == [(0, 16000)]


def test_model_directory_can_make_splitting_its_default(tone_model_dir, tmp_path):
    model = tm.copy_with_config(tone_model_dir, tmp_path / "model", split_at_pauses=0.3)
    transcriber = Transcriber(model, device="cpu", threads=1)
    audio = np.concatenate([tm.synthesize("HELLO", lead=1.0), tm.synthesize("WORLD", lead=0.5)])
    assert transcriber.transcribe(audio).text == "HELLO WORLD"
    assert "split_at_pauses" not in transcriber.stream().finish().options
    bad = tm.copy_with_config(tone_model_dir, tmp_path / "bad", split_at_pauses=0)
    with pytest.raises(ModelDirectoryError, match="'split_at_pauses' must be a number of seconds"):
        Transcriber(bad, device="cpu")
