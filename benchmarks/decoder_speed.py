"""Decode time and accuracy of CTC decoders on realistic synthetic log-probabilities.

Compares, on the same inputs (peaky CTC posteriors spelling held-out sentences, with character confusions;
see ``ctc_synth.py``): greedy, w2v2-onnx beam search without and with an n-gram LM (KenLM and pure-Python
backends), flashlight-text (torchaudio's decoder) when installed, and pyctcdecode 0.5.0 run in a separate
numpy<2 environment (``--pyctc-python``). Prints the machine and versions and writes JSON.

    # LM from the sentences not used as test text
    tail -n +10001 ../shared/data/text/sentences.txt > /tmp/lm_train.txt
    w2v2-onnx build-lm /tmp/lm_train.txt -o /tmp/lm3 --order 3
    python benchmarks/decoder_speed.py --lm /tmp/lm3.arpa --pyctc-python /work/venv-pyctc/bin/python
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ctc_synth import VOCAB_TOKENS, sentences_for_frames, synth_with_alignment, true_word_spans  # noqa: E402

from w2v2_onnx import beam_search  # noqa: E402
from w2v2_onnx.beam import BeamSearchDecoder  # noqa: E402
from w2v2_onnx.greedy import greedy_decode  # noqa: E402
from w2v2_onnx.lm_tune import edit_distance  # noqa: E402
from w2v2_onnx.vocabulary import Vocabulary  # noqa: E402

FRAME_S = 0.02


def error_rates(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus WER and CER."""
    words = sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True))
    chars = sum(edit_distance(list(h), list(r)) for h, r in zip(hyps, refs, strict=True))
    return {"wer": words / sum(len(r.split()) for r in refs), "cer": chars / sum(len(r) for r in refs)}


def timed(decode: Callable[[np.ndarray], str], inputs: list[np.ndarray], repeats: int) -> tuple[list, list]:
    """Best-of-``repeats`` seconds per input and the transcripts."""
    texts, seconds = [], []
    for lp in inputs:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            text = decode(lp)
            best = min(best, time.perf_counter() - start)
        texts.append(text)
        seconds.append(best)
    return texts, seconds


def span_accuracy(texts: list[str], spans: list[list], refs: list[str], truths: list[list]) -> str:
    """Share of correctly recognised words (paired by position) whose frame span equals the true one."""
    exact = words = 0
    for text, hyp_spans, ref, truth in zip(texts, spans, refs, truths, strict=True):
        if not len(text.split()) == len(ref.split()) == len(truth):  # unpaired, or text cut at --frames
            continue
        for hyp, want, span, true_span in zip(text.split(), ref.split(), hyp_spans, truth, strict=True):
            if hyp == want:
                words += 1
                exact += tuple(span) == tuple(true_span)
    return f"{exact}/{words}"


def versions() -> dict[str, str]:
    """Versions of the packages involved."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "kenlm", "flashlight-text", "w2v2-onnx"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_pyctcdecode(python: str, inputs: list[np.ndarray], lm: str | None, beam_width: int,
                    repeats: int, *, alpha: float = 0.5, beta: float = 1.5, labels: list[str] | None = None) -> dict:
    """Decode with pyctcdecode in its own interpreter; returns its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        npz, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(npz, **{f"lp{i}": lp for i, lp in enumerate(inputs)})
        cmd = [python, str(Path(__file__).parent / "pyctcdecode_reference.py"), str(npz), str(out),
               "--beam-width", str(beam_width), "--repeats", str(repeats), "--alpha", str(alpha),
               "--beta", str(beta)] + (["--lm", lm] if lm else [])
        if lm and Path(lm + ".unigrams.txt").exists():  # a KenLM binary's word list (w2v2-onnx build-lm writes it)
            cmd += ["--unigrams", lm + ".unigrams.txt"]
        if labels is not None:
            (Path(tmp) / "labels.json").write_text(json.dumps(labels))
            cmd += ["--labels", str(Path(tmp) / "labels.json")]
        subprocess.run(cmd, check=True, capture_output=True)
        return json.loads(out.read_text())


def main() -> None:
    """Run every available decoder on the same inputs and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", help="ARPA file (a KenLM binary next to it as .bin is used for flashlight)")
    parser.add_argument("--text", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
                                              / "sentences.txt"))
    parser.add_argument("--heldout-lines", type=int, default=10000, help="test text comes from these lines")
    parser.add_argument("--inputs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--confusion", type=float, default=0.1, help="share of characters confused")
    parser.add_argument("--peak", type=float, default=9.0, help="logit margin of the spoken token")
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pyctc-python", help="interpreter of a numpy<2 venv with pyctcdecode and kenlm")
    parser.add_argument("--acoustic-model", type=Path, default=None,
                        help="model directory whose int8 acoustic time on the same audio length is timed in the "
                             "same run, to report each decoder's time as a share of it")
    parser.add_argument("--threads", type=int, default=2, help="threads of the acoustic model")
    parser.add_argument("--out", default="decoder_speed.json")
    args = parser.parse_args()

    sentences = Path(args.text).read_text(encoding="utf-8").splitlines()[: args.heldout_lines]
    rng = np.random.default_rng(args.seed)
    refs, inputs, truths = [], [], []
    for _ in range(args.inputs):
        text = sentences_for_frames(sentences, rng, args.frames)
        refs.append(text)
        lp, targets = synth_with_alignment(text, rng, confusion=args.confusion, peak=args.peak,
                                           frames=args.frames)
        inputs.append(lp)
        truths.append(true_word_spans(targets))
    vocab = Vocabulary.from_tokens(VOCAB_TOKENS, special_tokens=["<s>", "</s>", "<unk>"])
    audio_s = args.frames * FRAME_S
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count()}, "versions": versions(),
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "systems": {}}
    print(json.dumps({k: report[k] for k in ("machine", "versions")}, indent=1))

    def record(name: str, texts: list[str], seconds: list[float], load_s: float = 0.0) -> None:
        entry = {"load_s": round(load_s, 3), "seconds_mean": float(np.mean(seconds)),
                 "seconds_per_30s_audio": float(np.mean(seconds)) * 30.0 / audio_s,
                 **error_rates(texts, refs), "texts": texts}
        report["systems"][name] = entry
        print(f"{name:34s} {entry['seconds_per_30s_audio']:7.3f} s/30s  WER {entry['wer']:.3f}  "
              f"CER {entry['cer']:.3f}  load {load_s:.2f} s")

    record("greedy", *timed(lambda lp: greedy_decode(lp, vocab, FRAME_S).text, inputs, args.repeats))
    ours = BeamSearchDecoder(vocab, beam_width=args.beam_width)
    record("w2v2-onnx beam", *timed(lambda lp: ours.decode(lp, FRAME_S).text, inputs, args.repeats))
    backends = ["python"]
    try:
        import kenlm  # noqa: F401

        backends.insert(0, "kenlm")
    except ImportError:
        pass
    lm_decoders = {}
    if args.lm:
        for backend in backends:
            start = time.perf_counter()
            dec = lm_decoders[backend] = BeamSearchDecoder(vocab, lm=args.lm, beam_width=args.beam_width,
                                                           lm_backend=backend)
            load = time.perf_counter() - start
            record(f"w2v2-onnx beam+LM ({backend})",
                   *timed(lambda lp, d=dec: d.decode(lp, FRAME_S).text, inputs, args.repeats), load)
    report["versions"]["w2v2_onnx_frame_loop"] = "C" if beam_search._native is not None else "Python"
    if beam_search._native is not None:  # the same search with the pure-Python frame loop
        native = beam_search._native
        beam_search._native = None
        try:
            loops = [("w2v2-onnx beam", ours)]
            loops += [(f"w2v2-onnx beam+LM ({backends[0]})", lm_decoders[backends[0]])] if lm_decoders else []
            for name, dec in loops:
                record(f"{name}, Python loop", *timed(lambda lp, d=dec: d.decode(lp, FRAME_S).text, inputs,
                                                      args.repeats))
                same = sum(a == b for a, b in zip(report["systems"][name]["texts"],
                                                  report["systems"][f"{name}, Python loop"]["texts"], strict=True))
                report["systems"][f"{name}, Python loop"]["identical_to_c_loop"] = f"{same}/{len(inputs)}"
                print(f"{'':34s} transcripts identical to the C loop's: {same}/{len(inputs)}")
        finally:
            beam_search._native = native
    try:
        from flashlight_adapter import FlashlightDecoder

        from w2v2_onnx.lm_arpa import read_arpa_unigrams
    except ImportError:
        FlashlightDecoder = None  # noqa: N806
    if FlashlightDecoder is not None:
        fl = FlashlightDecoder(VOCAB_TOKENS, beam_size=args.beam_width)
        record("flashlight-text lexicon-free", *timed(fl.decode, inputs, args.repeats))
        if args.lm:
            binary = Path(args.lm).with_suffix(".bin")
            start = time.perf_counter()
            fl = FlashlightDecoder(VOCAB_TOKENS, lm=str(binary if binary.is_file() else args.lm),
                                   unigrams=read_arpa_unigrams(args.lm), beam_size=args.beam_width)
            load = time.perf_counter() - start
            record("flashlight-text lexicon+LM", *timed(fl.decode, inputs, args.repeats), load)
    if args.pyctc_python:
        for lm in [None, args.lm] if args.lm else [None]:
            name = "pyctcdecode" + ("+LM" if lm else "")
            ref = run_pyctcdecode(args.pyctc_python, inputs, lm, args.beam_width, args.repeats)
            report["versions"]["pyctcdecode_env"] = ref["info"]
            record(name, [r["text"] for r in ref["results"]], [r["seconds"] for r in ref["results"]])
            mine = report["systems"]["w2v2-onnx beam" + (f"+LM ({backends[0]})" if lm else "")]["texts"]
            same = sum(a == r["text"] for a, r in zip(mine, ref["results"], strict=True))
            report["systems"][name]["identical_to_w2v2_onnx"] = f"{same}/{len(mine)}"
            print(f"{'':34s} w2v2-onnx transcripts identical to {name}: {same}/{len(mine)}")
            # word spans against the true alignment: pyctcdecode's and ours
            ours = BeamSearchDecoder(vocab, lm=lm, beam_width=args.beam_width)
            our_results = [ours.decode(lp, 1.0, max_segment_seconds=None) for lp in inputs]  # frame indices
            our_spans = [[(int(w.start), int(w.end)) for w in d.words] for d in our_results]
            theirs = span_accuracy([r["text"] for r in ref["results"]],
                                   [r["word_frames"] for r in ref["results"]], refs, truths)
            exact = span_accuracy([d.text for d in our_results], our_spans, refs, truths)
            report["systems"][name]["word_spans_exact"] = theirs
            report["systems"][name]["w2v2_onnx_word_spans_exact"] = exact
            print(f"{'':34s} word spans equal to the true alignment: {name} {theirs}, w2v2-onnx {exact}")
    if args.acoustic_model:
        acoustic = time_acoustic(args.acoustic_model, audio_s, args.threads, args.repeats)
        report["acoustic"] = {"model": str(args.acoustic_model), "threads": args.threads, **acoustic}
        for name, entry in report["systems"].items():
            entry["over_acoustic"] = entry["seconds_per_30s_audio"] / acoustic["seconds_per_30s_audio"]
            print(f"{name:34s} {entry['over_acoustic']:6.3f} x the int8 acoustic model's time")
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


def time_acoustic(model_dir: Path, seconds: float, threads: int, repeats: int) -> dict[str, float]:
    """The runtime's int8 time (``Transcriber.transcribe``, greedy) on ``seconds`` of speech-like audio."""
    from runtime_figures import interleaved_times, speech_like

    from w2v2_onnx import Transcriber

    model = Transcriber(model_dir, device="cpu", precision="int8", threads=threads)
    audio = speech_like(seconds)
    times = interleaved_times({"int8": lambda: model.transcribe(audio)}, max(3, repeats))["int8"]
    median = float(np.median(times))
    print(f"{'int8 acoustic model':34s} {median * 30.0 / seconds:7.3f} s/30s  ({seconds / median:.1f}x real time)")
    return {"seconds_per_30s_audio": median * 30.0 / seconds, "rtfx": seconds / median}


if __name__ == "__main__":
    main()
