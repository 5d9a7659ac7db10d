"""A tiny model trains a few steps on tiny generated data; its loss goes down; the checkpoint is whole."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from tone_corpus import utterance, write_tone_corpus

from w2v2_onnx_finetune import cli
from w2v2_onnx_finetune.batching import CTCCollator, SpeechDataset, normalize_audio
from w2v2_onnx_finetune.data import Example

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tiny_corpus"))


def test_collator_pads_audio_and_labels() -> None:
    rng = np.random.default_rng(1)
    examples = [Example(rng.standard_normal(800).astype(np.float32), "AB", "x:1"),
                Example(rng.standard_normal(500).astype(np.float32), "A B C", "x:2")]
    dataset = SpeechDataset(examples)
    batch = CTCCollator(return_attention_mask=True)([dataset[0], dataset[1]])
    assert batch["input_values"].shape == (2, 800)
    assert batch["attention_mask"][1].sum().item() == 500
    assert torch.all(batch["input_values"][1, 500:] == 0)
    assert batch["labels"].tolist()[0][2:] == [-100, -100, -100]
    assert abs(float(normalize_audio(examples[0].audio).std()) - 1.0) < 1e-3
    assert "attention_mask" not in CTCCollator(return_attention_mask=False)([dataset[0]])


def test_tiny_model_trains_and_loss_goes_down(tiny_corpus, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    status = cli.main([
        "--data", f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3", "--output-dir", str(out),
        "--start", "scratch:tiny", "--max-steps", "30", "--batch-size", "4", "--learning-rate", "3e-3",
        "--warmup", "5", "--logging-steps", "5", "--eval-steps", "15", "--threads", "2",
        "--mask-time-prob", "0", "--log-level", "WARNING",
    ])
    assert status == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) >= 6
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2]), losses
    evals = [r for r in records if "eval_tiny_wer" in r]
    assert evals and all(0.0 <= r["eval_tiny_cer"] for r in evals)

    final = out / "checkpoint"
    for name in ("config.json", "vocab.json", "tokenizer_config.json", "training.json"):
        assert (final / name).is_file(), name
    from transformers import AutoModelForCTC, Wav2Vec2Processor

    processor = Wav2Vec2Processor.from_pretrained(str(final))
    model = AutoModelForCTC.from_pretrained(str(final))
    assert model.config.vocab_size == len(processor.tokenizer) == 30
    facts = json.loads((final / "training.json").read_text())
    assert facts["seed"] == 0 and facts["global_step"] == 30
    data = json.loads((out / "data.json").read_text())
    assert data[0]["eval"] == 8 and data[0]["train"] == 24  # speaker spk3 held out whole
    printed = json.loads(capsys.readouterr().out)
    assert printed["checkpoint"].endswith("checkpoint")

    # held-out scoring rebuilds the same split from the same spec and seed: only spk3's 8 rows
    from w2v2_onnx_finetune import evaluate

    assert evaluate.main(["--checkpoint", str(final), "--data",
                          f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3",
                          "--json", str(tmp_path / "eval.json")]) == 0
    scores = json.loads((tmp_path / "eval.json").read_text())["tiny"]
    assert scores["count"] == 8 and 0.0 <= scores["cer"] and 0.0 <= scores["exact"] <= 1.0
    assert {e["id"].split(":")[0] for e in scores["examples"]} == {"manifest.tsv"}


def test_batched_transcription_matches_single() -> None:
    from w2v2_onnx_finetune.evaluate import transcribe
    from w2v2_onnx_finetune.model import build_model

    torch.manual_seed(0)
    model = build_model("scratch:tiny").eval()
    rng = np.random.default_rng(2)
    examples = [Example(utterance(t, rng), t, str(i)) for i, t in enumerate(["A B C A", "B", "C A B"])]
    batched = transcribe(model, examples, batch_size=3)
    single = [transcribe(model, [e], batch_size=1)[0] for e in examples]
    assert batched == single


def test_speed_perturbation_is_seeded_per_draw_and_stays_in_range() -> None:
    from w2v2_onnx_finetune.augment import SpeedPerturbation

    rng = np.random.default_rng(2)
    examples = [Example(rng.standard_normal(16000).astype(np.float32), "A B", f"x:{i}") for i in range(3)]
    plain = SpeechDataset(examples)
    assert np.array_equal(plain[0]["input_values"], normalize_audio(examples[0].audio))
    speed = SpeedPerturbation(1.0, 0.9, 1.1)
    one, two = SpeechDataset(examples, speed=speed, seed=5), SpeechDataset(examples, speed=speed, seed=5)
    first = [len(one[i]["input_values"]) for i in range(3)]
    assert first == [len(two[i]["input_values"]) for i in range(3)]  # same seed, same draws
    assert all(16000 / 1.1 - 2 <= n <= 16000 / 0.9 + 2 for n in first) and len(set(first)) > 1
    second_epoch = [len(one[i]["input_values"]) for i in range(3)]
    assert second_epoch != first  # another draw of the same examples gets other speeds
    assert one[0]["labels"] == plain[0]["labels"]
    never = SpeechDataset(examples, speed=SpeedPerturbation(0.0), seed=5)
    assert np.array_equal(never[1]["input_values"], plain[1]["input_values"])


def test_silence_padding_adds_seeded_margins_and_keeps_the_speech() -> None:
    from w2v2_onnx_finetune.augment import SilencePadding, SpeedPerturbation

    rng = np.random.default_rng(3)
    examples = [Example((0.5 * rng.standard_normal(8000)).astype(np.float32), "A B", f"x:{i}") for i in range(4)]
    padding = SilencePadding(1.0, max_seconds=1.0)
    padded = [padding.apply(e.audio, np.random.default_rng((7, i))) for i, e in enumerate(examples)]
    for example, audio in zip(examples, padded, strict=True):
        assert 8000 <= audio.size <= 8000 + 2 * 16000 and audio.dtype == np.float32
        start = int(np.flatnonzero(np.isin(audio, example.audio[:1]))[0])  # the speech is there, unchanged
        assert np.array_equal(audio[start:start + 8000], example.audio)
        margins = np.concatenate([audio[:start], audio[start + 8000:]])
        assert np.abs(margins).max(initial=0.0) < np.abs(example.audio).max() * 10 ** (-35 / 20) * 6  # <= -35 dB
    assert len({a.size for a in padded}) > 1  # margins of other lengths each time
    one = SpeechDataset(examples, padding=padding, seed=5)
    two = SpeechDataset(examples, padding=padding, seed=5)
    assert [len(one[i]["input_values"]) for i in range(4)] == [len(two[i]["input_values"]) for i in range(4)]
    assert one[0]["labels"] == SpeechDataset(examples)[0]["labels"]
    never = SpeechDataset(examples, padding=SilencePadding(0.0), seed=5)
    assert np.array_equal(never[1]["input_values"], normalize_audio(examples[1].audio))
    # speed perturbation alone draws exactly as before padding existed
    speed = SpeedPerturbation(1.0)
    alone = SpeechDataset(examples, speed=speed, seed=5)[2]["input_values"]
    expected = normalize_audio(speed.apply(examples[2].audio, np.random.default_rng((5, 2, 0))))
    assert np.array_equal(alone, expected)


@pytest.mark.parametrize(("flags", "message"), [
    (["--pad-silence", "2"], "--pad-silence must be a probability from 0 to 1"),
    (["--speed-perturb", "1.5"], "--speed-perturb must be a probability from 0 to 1"),
    (["--speed-perturb", "nan"], "--speed-perturb must be a probability from 0 to 1"),
    (["--speed-range", "1.2", "0.9"], "--speed-range must be two speed factors"),
    (["--speed-range", "0.1", "1.0"], "--speed-range must be two speed factors"),
])
def test_bad_speed_perturbation_settings_are_refused(flags: list[str], message: str, tmp_path, capsys) -> None:
    from w2v2_onnx_finetune.cli import main

    assert main(["--data", "x.tsv", "--output-dir", str(tmp_path / "run"), *flags]) == 1
    assert message in capsys.readouterr().err


def test_regularisation_settings_reach_the_model_from_scratch_and_from_a_checkpoint(tmp_path) -> None:
    from w2v2_onnx.errors import InvalidOptionError
    from w2v2_onnx_finetune.cli import add_arguments
    from w2v2_onnx_finetune.model import REGULARISATION, build_model
    from w2v2_onnx_finetune.train import TrainConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "x.tsv", "--output-dir", "o", "--layerdrop", "0.1",
                              "--mask-feature-prob", "0.2", "--mask-feature-length", "8", "--hidden-dropout", "0.15"])
    overrides = {name: getattr(args, name) for name in REGULARISATION if getattr(args, name) is not None}
    assert overrides == {"layerdrop": 0.1, "mask_feature_prob": 0.2, "mask_feature_length": 8,
                         "hidden_dropout": 0.15}
    scratch = build_model("scratch:tiny", **overrides)
    assert (scratch.config.layerdrop, scratch.config.mask_feature_prob, scratch.config.mask_feature_length,
            scratch.config.hidden_dropout) == (0.1, 0.2, 8, 0.15)
    scratch.save_pretrained(tmp_path / "ckpt")
    again = build_model(str(tmp_path / "ckpt"), layerdrop=0.3)
    assert again.config.layerdrop == 0.3 and again.config.mask_feature_prob == 0.2  # others kept
    with pytest.raises(InvalidOptionError, match="'vocab_size' cannot be overridden"):
        TrainConfig(output_dir=str(tmp_path / "run"), sources=[], start="scratch:tiny",
                    model_overrides={"vocab_size": 3}).check()


def test_mask_spans_longer_than_their_axis_are_refused_before_training(tiny_corpus, tmp_path, capsys) -> None:
    common = ["--data", f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3", "--start", "scratch:tiny",
              "--max-steps", "2", "--batch-size", "4", "--log-level", "WARNING"]
    assert cli.main([*common, "--output-dir", str(tmp_path / "a"), "--mask-feature-prob", "0.1",
                     "--mask-feature-length", "64"]) == 1
    assert "--mask-feature-length 64 is longer than the model's 32 feature channels" in capsys.readouterr().err
    assert cli.main([*common, "--output-dir", str(tmp_path / "b"), "--mask-time-prob", "0.1",
                     "--mask-time-length", "5000"]) == 1
    err = capsys.readouterr().err
    assert "--mask-time-length 5000 is longer than the longest training example" in err and "Traceback" not in err


def test_continue_from_own_checkpoint_and_resume(tiny_corpus, tmp_path) -> None:
    first = tmp_path / "first"
    common = ["--data", f"{tiny_corpus}:role=train", "--batch-size", "4", "--threads", "2",
              "--log-level", "WARNING", "--save-total-limit", "3"]
    assert cli.main(common + ["--output-dir", str(first), "--start", "scratch:tiny", "--max-steps", "4",
                              "--eval-steps", "2"]) == 0
    assert (first / "checkpoint-4").is_dir()
    # resume the same run to more steps
    assert cli.main(common + ["--output-dir", str(first), "--start", "scratch:tiny", "--max-steps", "6",
                              "--eval-steps", "2", "--resume"]) == 0
    assert json.loads((first / "checkpoint" / "training.json").read_text())["global_step"] == 6
    # continue fine-tuning from our own checkpoint (the feature encoder stays trainable), speed-perturbed
    second = tmp_path / "second"
    assert cli.main(common + ["--output-dir", str(second), "--start", str(first / "checkpoint"),
                              "--max-steps", "2", "--eval-steps", "2", "--speed-perturb", "0.5",
                              "--pad-silence", "0.5"]) == 0
    assert (second / "checkpoint" / "config.json").is_file()
    facts = json.loads((second / "checkpoint" / "training.json").read_text())
    assert facts["config"]["speed_perturb"] == 0.5 and facts["config"]["speed_range"] == [0.9, 1.1]
    assert facts["config"]["pad_silence"] == 0.5


def test_bad_start_reports_error(tiny_corpus, tmp_path, capsys) -> None:
    status = cli.main(["--data", f"{tiny_corpus}:role=train", "--output-dir", str(tmp_path / "x"),
                       "--start", "scratch:huge", "--max-steps", "1"])
    assert status == 1
    assert "huge" in capsys.readouterr().err


def test_time_budget_stops_and_saves(tiny_corpus, tmp_path) -> None:
    out = tmp_path / "budget"
    # a budget of 0.01 s is spent by the first step: training stops there, evaluated and saved
    assert cli.main(["--data", f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3", "--output-dir",
                     str(out), "--start", "scratch:tiny", "--max-steps", "50", "--batch-size", "4",
                     "--scheduler", "time-linear", "--max-wall-minutes", "0.0002", "--threads", "2",
                     "--log-level", "WARNING"]) == 0
    facts = json.loads((out / "checkpoint" / "training.json").read_text())
    assert facts["global_step"] == 1
    assert (out / "checkpoint-1").is_dir()
    assert any("eval_tiny_wer" in line for line in (out / "metrics.jsonl").read_text().splitlines())
    # time-linear without a budget is refused
    assert cli.main(["--data", f"{tiny_corpus}:role=train", "--output-dir", str(tmp_path / "x"),
                     "--start", "scratch:tiny", "--scheduler", "time-linear"]) == 1


def test_filterbank_front_end_picks_out_frequencies() -> None:
    import torch

    from w2v2_onnx_finetune.model import build_model, output_frames

    model = build_model("scratch:small-fb")
    assert output_frames(model.config, 16000) == 48  # frame step 320 like wav2vec2, receptive field 720
    assert output_frames(model.config, 720) == 1 and output_frames(model.config, 719) == 0
    conv = model.wav2vec2.feature_extractor.conv_layers[0].conv
    t = torch.arange(400) / 16000
    bands = []
    for hz in (150.0, 500.0, 1500.0, 4000.0, 7000.0):
        with torch.no_grad():
            response = conv(torch.sin(2 * torch.pi * hz * t)[None, None])[0, :, 0] - conv.bias
        energy = response.reshape(-1, 4).square().sum(1)  # four phases per band
        bands.append(int(energy.argmax()))
        assert energy.max() > 10 * energy.median()  # selective: one region of bands answers
    assert bands == sorted(bands) and len(set(bands)) == len(bands)
    assert bands[0] < 8 and bands[-1] > 56  # low and high tones land at the ends of the 64 mel bands


def test_training_curves_plot(tmp_path) -> None:
    from w2v2_onnx.errors import DataError
    from w2v2_onnx_finetune.plot import main as plot_main
    from w2v2_onnx_finetune.plot import read_curves, read_stages

    records = [{"event": "log", "step": s, "wall_s": 6.0 * s, "loss": 3.0 - s / 100} for s in range(10, 110, 10)]
    records += [{"event": "log", "step": 50, "eval_cathy_wer": 0.9, "eval_cathy_cer": 0.5},
                {"event": "log", "step": 100, "eval_cathy_wer": 0.7, "eval_cathy_cer": 0.3}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    loss, evals = read_curves(path)
    assert loss[0] == (10, 1.0, 2.9) and evals == {"cathy": [(50, 0.9, 0.5), (100, 0.7, 0.3)]}
    assert plot_main([str(path), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no training loss"):
        read_curves(tmp_path / "empty.jsonl")
    # a second stage (continued training) follows on from the first: steps 100 + 10.., minutes 10 + 1..
    loss, evals, starts = read_stages([path, path])
    assert starts == [100] and loss[10] == (110, 11.0, 2.9) and evals["cathy"][-1] == (200, 0.7, 0.3)
    assert plot_main([str(path), str(path), "-o", str(tmp_path / "stages.png")]) == 0
    # a diverged interval (NaN gradient norm; the Trainer then logs a loss of 0.0) is left out of the curve
    diverged = records[:3] + [{"event": "log", "step": 40, "loss": 2.5, "grad_norm": float("nan")},
                              {"event": "log", "step": 50, "loss": 0.0, "grad_norm": float("nan")}]
    path.write_text("".join(json.dumps(r) + "\n" for r in diverged))
    assert [step for step, _, _ in read_curves(path)[0]] == [10, 20, 30]


def test_split_seed_keeps_the_held_out_rows_whatever_the_training_seed(tiny_corpus, tmp_path) -> None:
    from w2v2_onnx_finetune.sources import parse_source
    from w2v2_onnx_finetune.train import TrainConfig, load_data

    spec = [parse_source(f"{tiny_corpus}:eval=0.25")]

    def held_out(**seeds: int) -> list[str]:
        _, _, summaries = load_data(TrainConfig(output_dir=tmp_path, sources=spec, **seeds))
        return summaries[0]["eval_ids"]

    first_run = held_out(seed=0)
    assert held_out(seed=7, split_seed=0) == first_run
    assert any(held_out(seed=s) != first_run for s in range(1, 6))  # without it, the seed redraws the split


def test_optimizer_skips_steps_with_non_finite_gradients():
    import torch

    from w2v2_onnx_finetune.trainer import skip_non_finite_steps

    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    skipped = skip_non_finite_steps(optimizer)
    before = [p.detach().clone() for p in layer.parameters()]
    layer(torch.tensor([[1.0, float("nan"), 0.0]])).sum().backward()
    optimizer.step()
    assert skipped == [1]
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))
    optimizer.zero_grad()
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    assert skipped == [1]
    after = list(layer.parameters())
    assert all(torch.isfinite(p).all() and not torch.equal(a, p) for a, p in zip(before, after, strict=True))


def _recipe(name: str):
    """Import recipes/NAME.py (a script folder, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unpack_checkpoint_rebuilds_fp32_weights_from_parts(tmp_path) -> None:
    """recipes/unpack_checkpoint.py joins gpu_train.sh's checkpoint.tar.part-* and restores fp32 weights."""
    import io
    import tarfile

    import torch
    from safetensors.torch import load_file, save_file

    module = _recipe("unpack_checkpoint")

    source = tmp_path / "checkpoint-fp16"
    source.mkdir()
    weights = {"w": torch.randn(64, 64).half(), "steps": torch.arange(3)}
    save_file(weights, str(source / "model.safetensors"))
    (source / "config.json").write_text('{"model_type": "wav2vec2"}')
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(source, arcname="checkpoint-fp16")
    data = buffer.getvalue()
    parts = tmp_path / "parts"
    parts.mkdir()
    for index, start in enumerate(range(0, len(data), 5000)):   # split into parts like `split -b`
        (parts / f"checkpoint.tar.part-a{chr(97 + index)}").write_bytes(data[start:start + 5000])
    assert len(list(parts.iterdir())) > 1

    target = module.unpack(parts, tmp_path / "run")
    restored = load_file(str(target / "model.safetensors"))
    assert restored["w"].dtype == torch.float32 and torch.equal(restored["w"], weights["w"].float())
    assert torch.equal(restored["steps"], weights["steps"])
    assert (target / "config.json").read_text() == '{"model_type": "wav2vec2"}'
    with pytest.raises(SystemExit, match="exists"):
        module.unpack(parts, tmp_path / "run")


def test_training_skips_steps_whose_loss_is_nan_and_keeps_finite_weights(tiny_corpus, tmp_path,
                                                                           monkeypatch) -> None:
    """Two batches give a NaN loss (as an overflow would): their steps are skipped, training goes on."""
    import functools

    import torch
    from safetensors.torch import load_file
    from transformers import Wav2Vec2ForCTC

    original = Wav2Vec2ForCTC.forward
    calls = [0]

    @functools.wraps(original)  # the Trainer finds the label names in forward's signature
    def forward(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        if self.training:
            calls[0] += 1
            if calls[0] in (3, 4):
                output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(Wav2Vec2ForCTC, "forward", forward)
    out = tmp_path / "run"
    assert cli.main(["--data", f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3", "--output-dir", str(out),
                     "--start", "scratch:tiny", "--max-steps", "8", "--batch-size", "4", "--learning-rate", "3e-3",
                     "--warmup", "2", "--logging-steps", "2", "--eval-steps", "100", "--threads", "2",
                     "--mask-time-prob", "0", "--log-level", "WARNING", "--best-metric", "none"]) == 0
    facts = json.loads((out / "checkpoint" / "training.json").read_text())
    assert facts["skipped_steps"] == [3, 4] and facts["global_step"] == 8
    weights = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_loader_workers_are_stopped_when_training_returns(tiny_corpus, tmp_path, monkeypatch) -> None:
    """Persistent workers of the training and evaluation loaders end with the run, not at interpreter exit
    (where PyTorch waits up to 5 s per worker with pinned memory)."""
    import multiprocessing

    from w2v2_onnx_finetune.trainer import CTCTrainer

    # keep the trainer (and so its loaders) alive after the run, as reference cycles did on the GPU machine
    trainers = []
    original_init = CTCTrainer.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        trainers.append(self)

    monkeypatch.setattr(CTCTrainer, "__init__", recording_init)
    out = tmp_path / "workers"
    before = {child.pid for child in multiprocessing.active_children()}
    assert cli.main(["--data", f"{tiny_corpus}:name=tiny,group=speaker,hold_out=spk3", "--output-dir",
                     str(out), "--start", "scratch:tiny", "--max-steps", "4", "--batch-size", "4",
                     "--eval-steps", "2", "--num-workers", "2", "--threads", "2",
                     "--log-level", "WARNING"]) == 0
    left = [child for child in multiprocessing.active_children() if child.pid not in before]
    assert len(trainers) == 1 and left == []
    assert json.loads((out / "checkpoint" / "training.json").read_text())["global_step"] == 4


def test_time_budget_ends_at_its_deadline_however_late_training_begins() -> None:
    """The budget is a deadline fixed when the run has loaded its data: the Trainer's own start-up counts."""
    import time
    from types import SimpleNamespace

    from w2v2_onnx_finetune.callbacks import TimeBudgetCallback

    def control() -> SimpleNamespace:
        return SimpleNamespace(should_training_stop=False, should_evaluate=False, should_save=False)

    args, state = SimpleNamespace(eval_strategy="steps"), SimpleNamespace(global_step=3)
    passed = TimeBudgetCallback(time.time() - 0.5)  # the deadline passed while the Trainer was starting
    passed.on_train_begin(args, state, control())
    stopped = passed.on_step_end(args, state, control())
    assert stopped.should_training_stop and stopped.should_evaluate and stopped.should_save
    ahead = TimeBudgetCallback(time.time() + 60)
    ahead.on_train_begin(args, state, control())
    assert not ahead.on_step_end(args, state, control()).should_training_stop
    no_eval = passed.on_step_end(SimpleNamespace(eval_strategy="no"), state, control())
    assert no_eval.should_training_stop and not no_eval.should_evaluate


def test_average_checkpoints_means_float_weights_and_refuses_other_architectures(tmp_path) -> None:
    """recipes/average_checkpoints.py: float tensors averaged, equal integer tensors kept, configs that differ
    only in training settings accepted; other shapes, names or architecture settings refused by name."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    module = _recipe("average_checkpoints")

    def checkpoint(name: str, weight: torch.Tensor, config: dict, steps: torch.Tensor | None = None) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        steps = torch.arange(3) if steps is None else steps
        save_file({"w": weight, "steps": steps}, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps(config))
        (directory / "vocab.json").write_text('{"A": 0}')
        return directory

    base = {"model_type": "wav2vec2", "hidden_size": 4, "mask_time_prob": 0.05}
    first = checkpoint("a", torch.zeros(2, 4), base)
    second = checkpoint("b", torch.full((2, 4), 3.0), {**base, "mask_time_prob": 0.1, "use_cache": False})
    module.average(tmp_path / "avg", [first, second])
    averaged = load_file(str(tmp_path / "avg" / "model.safetensors"))
    assert torch.equal(averaged["w"], torch.full((2, 4), 1.5)) and torch.equal(averaged["steps"], torch.arange(3))
    assert (tmp_path / "avg" / "vocab.json").read_text() == '{"A": 0}'
    assert json.loads((tmp_path / "avg" / "averaged_from.json").read_text()) == [str(first), str(second)]

    wider = checkpoint("c", torch.zeros(2, 5), base)
    with pytest.raises(SystemExit, match="shapes differ"):
        module.average(tmp_path / "bad1", [first, wider])
    other_size = checkpoint("d", torch.zeros(2, 4), {**base, "hidden_size": 8})
    with pytest.raises(SystemExit, match="config.json differs .* in hidden_size"):
        module.average(tmp_path / "bad2", [first, other_size])
    other_steps = checkpoint("e", torch.zeros(2, 4), base, steps=torch.arange(1, 4))
    with pytest.raises(SystemExit, match="integer tensor steps"):
        module.average(tmp_path / "bad3", [first, other_steps])
    with pytest.raises(SystemExit, match="at least two"):
        module.average(tmp_path / "bad4", [first])
