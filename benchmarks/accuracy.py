"""Accuracy of an exported model on held-out data: WER/CER by precision and decoder, and decode time.

A script, not a test. For each precision it runs the runtime (``Transcriber.log_probs``, one utterance per
call as a user would) over the held-out part of each test source, then decodes the same log-probabilities
greedily, with beam search, and with beam search plus an n-gram LM. The LM weights (alpha, beta) are tuned
by grid search on a separate dev source, never on a test source. Prints a table and writes JSON for
``benchmarks/report.py``.

Sources use the fine-tuning stage's syntax and seeded splits (``w2v2_onnx_finetune.sources``), so the held-out
parts are exactly those the model never trained on::

    python benchmarks/accuracy.py --model-dir MODEL --precisions int8 fp32 --seed 0 \\
        --test "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1" \\
        --test "../shared/data/fsdd:group=speaker,hold_out=theo" \\
        --dev "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1,part=dev" \\
        --lm lm.bin --out benchmarks/results/accuracy_small.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decoder_speed import error_rates, run_pyctcdecode  # noqa: E402
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.beam import BeamSearchDecoder  # noqa: E402
from w2v2_onnx.greedy import greedy_decode  # noqa: E402
from w2v2_onnx.lm_tune import DEFAULT_ALPHAS, DEFAULT_BETAS, grid_search  # noqa: E402
from w2v2_onnx.phrases import phrase_log_likelihoods, spell_phrases  # noqa: E402


def held_out(spec_text: str, seed: int) -> tuple[str, list[tuple[str, str]]]:
    """(name, [(audio path, transcript)]) of a source's held-out part, as the fine-tuning stage splits it."""
    from w2v2_onnx_finetune.data import manifest_parts
    from w2v2_onnx_finetune.sources import parse_source

    spec = parse_source(spec_text)
    if spec.role == "train":
        raise SystemExit(f"{spec_text}: a training-only source has no held-out part")
    rows = manifest_parts(spec, seed)[2]
    name = spec.name if spec.part == "eval" else f"{spec.name}_dev"
    return name, [(str(u.audio_path), u.text) for u in rows]


def seeded_halves(rows: list, seed: int) -> tuple[list, list]:
    """``rows`` shuffled by a seeded permutation and cut in two (the first half one shorter for an odd count): the
    dev and test halves of a held-out set that has no split of its own, such as the keyword recordings."""
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]


def decision_sets(data: str, keywords_unused: str, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """The dev sets the bundling rules decide on: the cathy dev part, and the seeded dev half of the keyword
    recordings training never drew (``keywords_unused``: recipes/keywords_unused.py's manifest), the half
    benchmarks/phrase_rejection.py tunes on."""
    _, cathy = held_out(f"{data}/cathy:group=prompt_id,eval=0.1,dev=0.1,part=dev", seed)
    _, keywords = held_out(f"{keywords_unused}:name=keywords_unused,role=eval", seed)
    return {"cathy_dev": cathy, "keywords_dev_half": seeded_halves(keywords, 0)[0]}


def scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus WER and CER, and the share of utterances exactly right."""
    exact = float(np.mean([h == r for h, r in zip(hypotheses, references, strict=True)]))
    return {**error_rates(hypotheses, references), "exact": exact}


def _input(transcriber: Transcriber, path: str, trim: bool) -> str | np.ndarray:
    """``path``, or with ``trim`` its audio less the leading and trailing silence, cut as
    ``transcribe(trim_silence=True)`` cuts it."""
    if not trim:
        return path
    from w2v2_onnx.audio import load_audio, speech_span

    audio = load_audio(path, transcriber.sample_rate)
    start, end = speech_span(audio, transcriber.sample_rate)
    return audio[start:end]


def acoustic(transcriber: Transcriber, rows: list[tuple[str, str]],
             trim: bool = False) -> tuple[list[np.ndarray], float, float]:
    """Log-probabilities of every row (``trim``: of its audio less leading and trailing silence), the model's
    seconds and the audio seconds."""
    transcriber.log_probs(rows[0][0])  # warm-up
    out, model_s = [], 0.0
    for path, _ in rows:
        audio = _input(transcriber, path, trim)
        start = time.perf_counter()
        out.append(transcriber.log_probs(audio))
        model_s += time.perf_counter() - start
    frames = sum(lp.shape[0] for lp in out)
    return out, model_s, frames * transcriber.config.frame_duration


def decode_all(decode, log_probs: list[np.ndarray]) -> tuple[list[str], float]:
    start = time.perf_counter()
    texts = [decode(lp).text for lp in log_probs]
    return texts, time.perf_counter() - start


def match_scores(log_probs: list[np.ndarray], references: list[str], phrases: list[str], vocab,
                 model_s: float) -> dict:
    """Closed-set recognition among ``phrases``: the share of utterances whose best phrase is the reference."""
    spelled = spell_phrases(phrases, vocab)
    start = time.perf_counter()
    best = [phrases[int(np.argmax(phrase_log_likelihoods(lp, spelled, vocab)))] for lp in log_probs]
    seconds = time.perf_counter() - start
    wrong = [[r, b] for r, b in zip(references, best, strict=True) if r != b]
    return {"exact": round(float(np.mean([b == r for b, r in zip(best, references, strict=True)])), 4),
            "phrases": phrases, "decode_s": round(seconds, 3), "decode_over_acoustic": round(seconds / model_s, 3),
            "errors": wrong[:20], "error_count": len(wrong)}


def pyctcdecode_labels(vocab) -> list[str]:
    """Our vocabulary as pyctcdecode labels: blank '', word delimiter ' ', other specials as '<unk>'-style names."""
    labels = []
    for index, token in enumerate(vocab.tokens):
        if index == vocab.blank_id:
            labels.append("")
        elif index == vocab.delimiter_id:
            labels.append(" ")
        elif index in vocab.special_ids:
            labels.append(f"<{token.strip('[]<>').lower()}>")
        else:
            labels.append(token)
    return labels


def compare_pyctcdecode(args, vocab, log_probs, references, ours, beam_lm) -> dict:
    """pyctcdecode 0.5.0 on the same log-probabilities and settings: WER, seconds, transcripts equal to ours."""
    out = {}
    runs = {"beam": (None, 0.5, 1.5)}
    if beam_lm is not None:
        runs["beam_lm"] = (args.lm, beam_lm.options["alpha"], beam_lm.options["beta"])
    for decoder, (lm, alpha, beta) in runs.items():
        ref = run_pyctcdecode(args.pyctc_python, log_probs, lm, args.beam_width, 1, alpha=alpha, beta=beta,
                              labels=pyctcdecode_labels(vocab))
        texts = [" ".join(r["text"].split()) for r in ref["results"]]
        seconds = sum(r["seconds"] for r in ref["results"])
        mine = ours[decoder]
        out[decoder] = {**{k: round(v, 4) for k, v in scores(texts, references).items()},
                        "decode_s": round(seconds, 3), "ours_decode_s": mine["decode_s"],
                        "speedup_of_ours": round(seconds / max(mine["decode_s"], 1e-9), 2),
                        "same_transcripts": sum(t == h for t, h in zip(texts, mine["texts"], strict=True)),
                        "utterances": len(texts)}
        print(f"pyctcdecode {decoder:8s} WER {out[decoder]['wer']:.3f} decode {seconds:.2f} s (ours "
              f"{mine['decode_s']:.2f} s); same transcript as ours {out[decoder]['same_transcripts']}/{len(texts)}")
    return out


def parallel_decode(decoder: BeamSearchDecoder, log_probs: list[np.ndarray], texts: list[str],
                    frame_duration: float, workers: int, model_s: float) -> dict:
    """Wall time of decoding the set in ``workers`` processes (pool start included), against the model's."""
    start = time.perf_counter()
    parallel = [d.text for d in decoder.decode_batch(log_probs, frame_duration, num_workers=workers)]
    seconds = time.perf_counter() - start
    if parallel != texts:
        raise SystemExit("decoding in worker processes gave other transcripts than in one process")
    print(f"{'':5s} {'':12s} {'':8s} in {workers} processes: decode {seconds:.2f} s "
          f"({seconds / model_s:.2f}x the model's {model_s:.2f} s), same transcripts")
    return {"decode_workers": workers, "decode_parallel_s": round(seconds, 3),
            "decode_parallel_over_acoustic": round(seconds / model_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--precisions", nargs="+", default=["int8", "fp32"])
    parser.add_argument("--test", action="append", required=True, metavar="SOURCE")
    parser.add_argument("--dev", metavar="SOURCE", help="source whose held-out part tunes alpha and beta")
    parser.add_argument("--seed", type=int, default=0, help="the split seed used in training")
    parser.add_argument("--lm", help="ARPA or KenLM binary LM for beam+LM")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    parser.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS))
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--num-workers", type=int, default=0, help="processes for the dev grid search")
    parser.add_argument("--decode-workers", type=int, default=0,
                        help="also time beam decoding of each test set with this many worker processes "
                        "(BeamSearchDecoder.decode_batch), checking that the transcripts are the same")
    parser.add_argument("--pyctc-python", help="interpreter of a numpy<2 venv with pyctcdecode and kenlm: "
                        "decode the first precision's log-probabilities with pyctcdecode too, at the same settings")
    parser.add_argument("--match-max", type=int, default=0, metavar="N",
                        help="also score closed-set recognition (Transcriber.match_phrases) on each set with at "
                        "most N distinct transcripts, choosing among them (e.g. the ten digit words)")
    parser.add_argument("--limit", type=int, default=None, help="first N rows per set (quick runs)")
    parser.add_argument("--trim-silence", action="store_true",
                        help="cut each recording's leading and trailing silence first, as "
                        "transcribe(trim_silence=True) does")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    sets = dict(held_out(spec, args.seed) for spec in args.test)
    if args.limit:
        sets = {name: rows[:args.limit] for name, rows in sets.items()}
    result: dict = {"kind": "accuracy", "machine": machine_info(), "model_dir": args.model_dir,
                    "seed": args.seed, "beam_width": args.beam_width, "lm": args.lm, "trim_silence": args.trim_silence,
                    "sets": {}}
    print(json.dumps(result["machine"]))

    primary = Transcriber(args.model_dir, device="cpu", precision=args.precisions[0], threads=args.threads)
    config = primary.config
    beam = BeamSearchDecoder(config.vocabulary, beam_width=args.beam_width)
    beam_lm = None
    if args.lm:
        beam_lm = BeamSearchDecoder(config.vocabulary, lm=args.lm, beam_width=args.beam_width)
        if args.dev:
            dev_name, dev_rows = held_out(args.dev, args.seed)
            if dev_name in sets or any(p == d for p, _ in dev_rows for rows in sets.values() for d, _ in rows):
                raise SystemExit("the dev set overlaps a test set")
            dev_lp, _, _ = acoustic(primary, dev_rows, args.trim_silence)
            start = time.perf_counter()
            grid = grid_search(beam_lm, dev_lp, [t for _, t in dev_rows], config.frame_duration,
                               alphas=args.alphas, betas=args.betas, num_workers=args.num_workers)
            best = grid[0]
            result["tuning"] = {"dev": dev_name, "utterances": len(dev_rows), "precision": args.precisions[0],
                                "alpha": best.alpha, "beta": best.beta, "dev_wer": best.wer,
                                "greedy_dev_wer": scores([greedy_decode(lp, config.vocabulary, 0.02).text
                                                          for lp in dev_lp], [t for _, t in dev_rows])["wer"],
                                "grid": [vars(p) for p in grid], "seconds": time.perf_counter() - start}
            print(f"tuned on {dev_name} ({len(dev_rows)} utterances): alpha={best.alpha} beta={best.beta} "
                  f"dev WER {best.wer:.3f}")
            beam_lm = beam_lm.replace(alpha=best.alpha, beta=best.beta)
        elif len(args.alphas) == 1 and len(args.betas) == 1:  # weights given, nothing to tune
            beam_lm = beam_lm.replace(alpha=args.alphas[0], beta=args.betas[0])
        elif (args.alphas, args.betas) != (list(DEFAULT_ALPHAS), list(DEFAULT_BETAS)):
            raise SystemExit("several --alphas / --betas need --dev to choose among them; give one of each to use "
                             "those weights")
        result["lm_weights"] = {"alpha": beam_lm.options["alpha"], "beta": beam_lm.options["beta"]}
        print(f"LM weights: alpha {result['lm_weights']['alpha']} beta {result['lm_weights']['beta']}")
    batch_decoders = {"beam": beam} if beam_lm is None else {"beam": beam, "beam_lm": beam_lm}
    decoders = {"greedy": lambda lp: greedy_decode(lp, config.vocabulary, config.frame_duration),
                **{name: (lambda lp, d=d: d.decode(lp, config.frame_duration)) for name, d in batch_decoders.items()}}

    for precision in args.precisions:
        transcriber = primary if precision == args.precisions[0] else Transcriber(
            args.model_dir, device="cpu", precision=precision, threads=args.threads)
        for name, rows in sets.items():
            log_probs, model_s, audio_s = acoustic(transcriber, rows, args.trim_silence)
            references = [t for _, t in rows]
            entry = result["sets"].setdefault(name, {"utterances": len(rows), "audio_s": round(audio_s, 1),
                                                     "results": {}})
            per = entry["results"][precision] = {"acoustic_s": round(model_s, 3),
                                                 "acoustic_rtfx": round(audio_s / model_s, 1)}
            for decoder, decode in decoders.items():
                texts, seconds = decode_all(decode, log_probs)
                per[decoder] = {**{k: round(v, 4) for k, v in scores(texts, references).items()},
                                "decode_s": round(seconds, 3),
                                "decode_over_acoustic": round(seconds / model_s, 3),
                                "examples": [[r, h] for r, h in zip(references[:5], texts[:5], strict=True)],
                                "texts": texts}
                print(f"{precision:5s} {name:12s} {decoder:8s} WER {per[decoder]['wer']:.3f} "
                      f"CER {per[decoder]['cer']:.3f} exact {per[decoder]['exact']:.3f}  decode {seconds:.2f} s "
                      f"({seconds / model_s:.2f}x the model's {model_s:.2f} s)")
                if args.decode_workers > 1 and decoder in batch_decoders:
                    per[decoder].update(parallel_decode(batch_decoders[decoder], log_probs, texts,
                                                        config.frame_duration, args.decode_workers, model_s))
            phrases = sorted(set(references))
            if len(phrases) <= args.match_max:
                per["match"] = match_scores(log_probs, references, phrases, config.vocabulary, model_s)
                print(f"{precision:5s} {name:12s} match    exact {per['match']['exact']:.3f} among "
                      f"{len(phrases)} phrases  decode {per['match']['decode_s']:.2f} s")
            if args.pyctc_python and precision == args.precisions[0]:
                per["pyctcdecode"] = compare_pyctcdecode(args, config.vocabulary, log_probs, references, per,
                                                         beam_lm)
    # The report's summary table: WER of the first test set by precision and decoder.
    for entry in result["sets"].values():  # full transcripts stay out of the JSON (examples are kept)
        for per in entry["results"].values():
            for res in per.values():
                if isinstance(res, dict):
                    res.pop("texts", None)
    first = next(iter(result["sets"].values()))
    result["wer"] = {p: {d: v["wer"] for d, v in per.items() if isinstance(v, dict) and "wer" in v}
                     for p, per in first["results"].items()}
    if args.out:
        write_json(result, args.out)


if __name__ == "__main__":
    main()
