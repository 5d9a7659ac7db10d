"""Accuracy at window joins: long files made of held-out utterances, transcribed with several window settings.

Joins the held-out utterances of a source (in manifest order, with a short pause between) into long files,
transcribes each with every ``chunk_length:chunk_context`` setting and in one pass, and reports WER / CER against
the joined references, and the word edit distance of each setting's transcripts to the single pass's. Needs the
fine-tuning stage (for the seeded held-out split).

    python benchmarks/window_accuracy.py --model-dir w2v2_onnx/models/default \\
        --source "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1" --file-seconds 120 \\
        --out benchmarks/results/window_accuracy_bundled.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from decoder_speed import error_rates  # noqa: E402
from runtime_figures import add_run_arguments, announce_machine, write_json  # noqa: E402
from window_settings import SINGLE_PASS_S, parse_settings  # noqa: E402

from w2v2_onnx.lm_tune import edit_distance  # noqa: E402


def long_files(spec: str, seed: int, file_seconds: float, pause_s: float = 0.3) -> list[tuple[np.ndarray, str]]:
    """The held-out part of ``spec`` joined into files of about ``file_seconds`` (audio, reference text)."""
    from w2v2_onnx.audio import load_audio
    from w2v2_onnx_finetune.data import manifest_parts
    from w2v2_onnx_finetune.sources import parse_source

    _, _, held = manifest_parts(parse_source(spec), seed)
    pause = np.zeros(int(pause_s * 16000), np.float32)
    files, pieces, texts, length = [], [], [], 0
    for utterance in held:
        audio = load_audio(str(utterance.audio_path), 16000)
        pieces += [audio, pause]
        texts.append(utterance.text)
        length += audio.size + pause.size
        if length >= file_seconds * 16000:
            files.append((np.concatenate(pieces), " ".join(texts)))
            pieces, texts, length = [], [], 0
    if pieces:
        files.append((np.concatenate(pieces), " ".join(texts)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("w2v2_onnx/models/default"))
    parser.add_argument("--source", required=True, help="a fine-tuning source spec; its held-out part is used")
    parser.add_argument("--seed", type=int, default=0, help="the training run's split seed")
    parser.add_argument("--file-seconds", type=float, default=120.0)
    parser.add_argument("--settings", default="20:2,20:1,16:1,10:1")
    add_run_arguments(parser, repeats=1)
    args = parser.parse_args()
    import w2v2_onnx

    info = announce_machine()
    model = w2v2_onnx.Transcriber(args.model_dir, device="cpu", precision="int8", threads=args.threads)
    files = long_files(args.source, args.seed, args.file_seconds)
    refs = [text for _, text in files]
    seconds = sum(audio.size for audio, _ in files) / 16000
    print(f"{len(files)} files, {seconds:.0f} s of held-out speech", flush=True)
    settings = [(SINGLE_PASS_S, 2.0)] + parse_settings(args.settings)
    results, single = {}, None
    for length, context in settings:
        name = "single pass" if length == SINGLE_PASS_S else f"{length:g} s windows, {context:g} s context"
        texts = [model.transcribe(audio, decoder="greedy", chunk_length=length, chunk_context=context).text
                 for audio, _ in files]
        single = single or texts
        changed = sum(edit_distance(x.split(), y.split()) for x, y in zip(texts, single, strict=True))
        results[name] = {**error_rates(texts, refs), "word_edits_to_single_pass": changed}
        print(f"{name:<32} WER {results[name]['wer']:.4f} CER {results[name]['cer']:.4f} "
              f"word edits to the single pass {changed}", flush=True)
    report = {"kind": "window_accuracy", "machine": info, "model": str(args.model_dir), "source": args.source,
              "files": len(files), "audio_s": seconds, "results": results}
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
