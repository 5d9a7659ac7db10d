"""Turn benchmark JSON files into a markdown report and matplotlib plots.

    python benchmarks/report.py benchmarks/results/*.json --out docs/benchmarks.md --plots benchmarks/results/plots

Understands the JSON written by runtime_figures.py (speed, cold start, length and batch sweeps, memory),
peers_cpu.py (systems side by side), conv_matmul_experiment.py, serve_load.py, denormals.py, decoder_speed.py,
window_settings.py, window_accuracy.py, cuda_figures.py, and accuracy files of the form
``{"kind": "accuracy", "wer": {"fp32": {"greedy": 0.2, "beam": 0.18}, ...}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def kind_of(data: dict) -> str:
    if data.get("kind"):
        return data["kind"]
    if "systems" in data and "settings" in data:
        return "decoder_speed"
    if "speed" in data and "cold_start" in data:
        return "runtime"
    if "rtfx" in data and "parity_vs_fp32" in data:
        return "conv_matmul"
    if "rtfx" in data:
        return "peers"
    if "soak" in data:
        return "serve"
    return "unknown"


def machine_line(data: dict) -> str:
    m = data.get("machine", {})
    parts = [m.get("cpu"), f"{m['cpus_available']} CPUs" if "cpus_available" in m else None,
             f"onnxruntime {m['onnxruntime']}" if "onnxruntime" in m else None, m.get("date")]
    return ", ".join(p for p in parts if p)


def runtime_section(name: str, data: dict, plots: Path | None) -> list[str]:
    lines = [f"### {name}: runtime, {data['arch']} architecture, {data['threads']} threads",
             f"_{machine_line(data)}_", ""]
    if data.get("note"):
        lines += [f"Note: {data['note']}.", ""]
    if data.get("speed"):
        lines += [f"| setup | real-time factor | seconds per {data['seconds']:g} s |", "|---|---|---|"]
        for key, value in data["speed"].items():
            lines.append(f"| {key} | {value['rtfx_median']:.1f}x | {value['median_s']:.2f} |")
        lines.append("")
    if data.get("cold_start"):
        lines += ["| precision | file MB | import s | load s | first call (1 s audio) s | cold start total s |",
                  "|---|---|---|---|---|---|"]
        for precision, cold in data["cold_start"].items():
            lines.append(f"| {precision} | {data['file_mb'].get(precision, '')} | {cold['import_s']:.2f} | "
                         f"{cold['load_s']:.2f} | {cold['first_call_1s_audio_s']:.2f} | {cold['total_s']:.2f} |")
    if data.get("lengths"):
        lines += ["", "| precision | input s | p50 ms | p95 ms | real-time factor |", "|---|---|---|---|---|"]
        for precision, by_length in data["lengths"].items():
            for seconds, row in by_length.items():
                lines.append(f"| {precision} | {seconds} | {1000 * row['p50_s']:.1f} | {1000 * row['p95_s']:.1f} | "
                             f"{row['rtfx']:.1f}x |")
    if data.get("batches"):
        clip = data.get("batch_clip_seconds", 5)
        lines += ["", f"| precision | batch of {clip:g} s clips | seconds per batch | real-time factor |",
                  "|---|---|---|---|"]
        for precision, by_batch in data["batches"].items():
            for size, row in by_batch.items():
                lines.append(f"| {precision} | {size} | {row['median_s']:.2f} | {row['rtfx']:.1f}x |")
    if "memory" in data:
        lines += ["", "| audio | peak RSS MB | RSS after load MB | real-time factor |", "|---|---|---|---|"]
        for duration, mem in data["memory"].items():
            rtfx = f"{mem['rtfx']:.1f}x" if "rtfx" in mem else "(not kept)"
            lines.append(f"| {duration} | {mem['peak_rss_mb']:.0f} | {mem['rss_after_load_mb']:.0f} | {rtfx} |")
    if plots is not None:
        lines += plot_runtime(name, data, plots)
    return lines + [""]


def save_plot(fig, path: Path, alt: str) -> str:
    """Write a figure as PNG, close it, and return its markdown image link."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"![{alt}]({path.as_posix()})"


def plot_runtime(name: str, data: dict, plots: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for key, xlabel, field in (("lengths", "input length (s)", "rtfx"), ("batches", "batch size", "rtfx")):
        if key not in data:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for precision, series in data[key].items():
            xs = [float(x) for x in series]
            ax.plot(xs, [v[field] for v in series.values()], marker="o", label=precision)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("real-time factor (x)")
        ax.set_title(f"{data['arch']}, {data['threads']} threads")
        ax.grid(alpha=0.3)
        ax.legend()
        made.append(save_plot(fig, plots / f"{name}_rtfx_vs_{key}.png", f"real-time factor vs {xlabel}"))
    if "memory" in data:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        minutes = [float(k.removesuffix("min")) for k in data["memory"]]
        ax.plot(minutes, [v["peak_rss_mb"] for v in data["memory"].values()], marker="o", label="peak RSS")
        ax.plot(minutes, [v["rss_after_load_mb"] for v in data["memory"].values()], marker="s",
                label="after model load")
        ax.set_xlabel("audio duration (min)")
        ax.set_ylabel("MB")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        made.append(save_plot(fig, plots / f"{name}_memory_vs_duration.png", "memory vs duration"))
    return ["", *made] if made else []


def peers_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: systems side by side, {data['arch']} architecture, {data['seconds']:g} s input, "
             f"{data['threads']} threads", f"_{machine_line(data)}_", "", "| system | real-time factor |",
             "|---|---|"]
    for system, rtfx in sorted(data["rtfx"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {system} | {rtfx:.1f}x |")
    if "ctranslate2" in data:
        lines += ["", f"CTranslate2: {data['ctranslate2']}"]
    for system, check in data.get("ctranslate2_vs_pytorch_fp32", {}).items():
        lines.append(f"- {system} against PyTorch fp32 on the same input: max |Δ logit| "
                     f"{check['max_abs_logit_diff']:.2g}, greedy frame agreement {check['argmax_agreement']:.3f}")
    return lines + [""]


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    if "rtfx" not in row:
        return "fails: " + row.get("error", "?")[:80].replace("|", "/")
    return f"{row['rtfx']:,.0f}x ({row['p50_ms']:.2f} ms)"


def _grid(label: str, groups: dict[str, dict]) -> list[str]:
    """A markdown table: one row per ``label`` (system or setting), one column per group (input shape)."""
    rows = sorted({key for group in groups.values() for key in group})
    lines = [f"| {label} | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    return lines + [f"| {row} | " + " | ".join(_cell(g.get(row)) for g in groups.values()) + " |" for row in rows]


def cuda_section(name: str, data: dict, plots: Path | None) -> list[str]:
    gpu = data.get("gpu", {})
    title = {"levers": "cuDNN conv search and conv-as-matmuls levers",
             "runtime-path": "runtime steps",
             "attention": "attention-mask, fixed-shape and CUDA-graph levers",
             "capture": "dimensions fixed at load and CUDA graphs"}.get(data.get("round"), "systems")
    lines = [f"### {name}: CUDA, {data['arch']} architecture, {title} side by side (model alone, IO binding)",
             f"_{gpu.get('nvidia_smi', '')}; onnxruntime {data['machine'].get('onnxruntime')}, torch "
             f"{gpu.get('torch')}, cuDNN {gpu.get('cudnn')}; {data['machine'].get('date')}; real-time factor "
             f"(median wall time, {data['repeats']} interleaved rounds)_", ""]
    lines += _grid("system", data.get("side_by_side", {}))
    settings = {k: v for k, v in data.get("provider_settings", {}).items() if isinstance(v, dict) and
                all(isinstance(r, dict) for r in v.values())}
    if settings:
        lines += ["", "Provider settings (fixed shapes):", "", *_grid("setting", settings)]
    if data.get("accuracy_vs_pytorch_fp32"):
        lines += ["", "| system | max abs log-prob difference from PyTorch fp32 | greedy frame agreement |",
                  "|---|---|---|"]
        for system, row in data["accuracy_vs_pytorch_fp32"].items():
            if "error" in row:
                lines.append(f"| {system} | fails: {row['error'][:80]} | |")
            else:
                lines.append(f"| {system} | {row['max_abs_log_prob_diff']:.2g} | {row['greedy_agreement']:.4f} |")
    comparisons = {"Padded row (a 6 s clip in a batch padded to 10 s) against the same clip alone":
                   data.get("padded_row_vs_alone")}
    comparisons.update({f"{shape}, a new batch copied into the fixed buffers, against the dynamic session": checks
                        for shape, checks in data.get("captured_vs_dynamic", {}).items()})
    for title, rows in comparisons.items():
        if not rows:
            continue
        lines += ["", f"{title}:", "", "| system | max abs log-prob difference | greedy frame agreement |",
                  "|---|---|---|"]
        for system, row in rows.items():
            lines.append(f"| {system} | fails |  |" if "error" in row else
                         f"| {system} | {row['max_abs_log_prob_diff']:.2g} | {row['greedy_agreement']:.4f} |")
    for shape, profiles in data.get("kernels", {}).items():
        lines += ["", f"GPU kernel time per run, {shape} (CUPTI through torch.profiler; wall time above):", "",
                  "| system | GPU ms | by kind (ms) |", "|---|---|---|"]
        for system, row in profiles.items():
            if "error" in row:
                lines.append(f"| {system} | fails | |")
                continue
            kinds = ", ".join(f"{kind} {ms:.2f}" for kind, ms in row["by_category_ms"].items() if ms >= 0.05)
            lines.append(f"| {system} | {row['gpu_ms_per_run']:.2f} | {kinds} |")
    for precision, rows in data.get("transcriber", {}).items():
        if "error" in rows:
            lines += ["", f"Transcriber {precision} on CUDA fails: {rows['error'][:200]}"]
            continue
        lines += ["", f"`Transcriber(device='cuda').transcribe`, {precision} graph (host copies, windows, "
                  "greedy decoding):", "", "| input | p50 ms | real-time factor |", "|---|---|---|"]
        for key, row in rows.items():
            if isinstance(row, dict) and "rtfx" in row:
                lines.append(f"| {key} | {row['p50_ms']:.2f} | {row['rtfx']:,.0f}x |")
    for precision, sweep in data.get("sweeps", {}).items():
        lines += ["", f"ORT CUDA {precision}, model alone, by input length and batch size:", "",
                  "| input | p50 ms | p95 ms | real-time factor |", "|---|---|---|---|"]
        for seconds, row in sweep["lengths_batch1"].items():
            lines.append(f"| 1 x {seconds} s | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['rtfx']:,.0f}x |")
        for count, row in sweep["batches_10s"].items():
            lines.append(f"| {count} x 10 s | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['rtfx']:,.0f}x |")
    if data.get("cold_start"):
        lines += ["", "| precision | import s | session s | first call (1 s) s | then 10 s s | cold start s |",
                  "|---|---|---|---|---|---|"]
        for precision, cold in data["cold_start"].items():
            if "error" in cold:
                lines.append(f"| {precision} | fails | | | | |")
                continue
            lines.append(f"| {precision} | {cold['import_s']:.2f} | {cold['load_s']:.2f} | "
                         f"{cold['first_call_1s_audio_s']:.2f} | {cold['second_call_10s_audio_s']:.3f} | "
                         f"{cold['total_s']:.2f} |")
    if plots is not None and data.get("sweeps"):
        lines += plot_cuda(name, data, plots)
    return lines + [""]


def plot_cuda(name: str, data: dict, plots: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for key, xlabel in (("lengths_batch1", "input length (s), batch 1"), ("batches_10s", "batch of 10 s inputs")):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for precision, sweep in data["sweeps"].items():
            xs = [float(x) for x in sweep[key]]
            ax.plot(xs, [v["rtfx"] for v in sweep[key].values()], marker="o", label=f"ORT CUDA {precision}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("real-time factor (x)")
        ax.set_title(f"{data['arch']}, {data.get('gpu', {}).get('nvidia_smi', 'GPU').split(',')[0]}")
        ax.grid(alpha=0.3)
        ax.legend()
        made.append(save_plot(fig, plots / f"{name}_rtfx_vs_{key}.png", f"CUDA real-time factor vs {xlabel}"))
    return ["", *made]


def conv_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: conv front-end as matmuls", f"_{machine_line(data)}_", "",
             "| variant | real-time factor | MB | frame argmax agreement with fp32 |", "|---|---|---|---|"]
    for key, rtfx in data["rtfx"].items():
        lines.append(f"| {key} | {rtfx:.1f}x | {data['file_mb'][key]} | "
                     f"{data['parity_vs_fp32'][key]['frame_argmax_agreement']:.3f} |")
    return lines + [""]


def window_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: long-audio windows, {data['arch']} architecture, {data['precision']}, "
             f"{data['seconds']:g} s input, {data['threads']} threads", f"_{machine_line(data)}_", "",
             "| windows | real-time factor |", "|---|---|"]
    lines += [f"| {setting} | {rtfx:.1f}x |" for setting, rtfx in data["rtfx"].items()]
    return lines + [""]


def ab_window_section(name: str, data: dict) -> list[str]:
    median = data["median_ms"]
    return [f"### {name}: two graphs side by side, one {data['seconds']:g} s window, {data['threads']} threads, "
            f"{data['rounds']} interleaved rounds", f"_{machine_line(data)}_", "",
            "| graph | file | median |", "|---|---|---|",
            f"| before | `{data['before']}` | {median['before']:.0f} ms |",
            f"| after | `{data['after']}` | {median['after']:.0f} ms |", "",
            f"after / before: {data['ratio']:.3f}; on a padded batch of two, max |d log p| "
            f"{data['max_abs_diff']:.3g} and argmax agreement {data['argmax_agreement']:.3f} (random weights).", ""]


def window_accuracy_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: accuracy at window joins ({data['model']}), {data['files']} files, {data['audio_s']:.0f} s "
             f"of held-out speech", f"_{machine_line(data)}_", "",
             "| windows | WER | CER | word edits to the single pass |", "|---|---|---|---|"]
    lines += [f"| {setting} | {row['wer']:.4f} | {row['cer']:.4f} | {row['word_edits_to_single_pass']} |"
              for setting, row in data["results"].items()]
    return lines + [""]


def denormals_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: flushing denormals, trained model ({data['model']}), {data['input_seconds']:g} s of "
             f"speech, {data['threads']} threads", f"_{machine_line(data)}_", "", "| session | real-time factor |",
             "|---|---|"]
    for key, rtfx in data["rtfx"].items():
        lines.append(f"| {key} | {rtfx:.1f}x |")
    lines += ["", f"max |d log p| between the two: {data['max_abs_log_prob_diff']:.1e}; same best path: "
              f"{data['same_best_path']}"]
    return lines + [""]


def decoder_section(name: str, data: dict) -> list[str]:
    settings = data["settings"]
    lines = [f"### {name}: CTC decoders on synthetic posteriors ({settings['inputs']} x {settings['frames']} frames, "
             f"peak {settings['peak']:g}, {settings['confusion']:.0%} of characters confused)", "",
             "| decoder | s per 30 s of audio | WER | CER | share of the int8 acoustic time |", "|---|---|---|---|---|"]
    for system, entry in data["systems"].items():
        share = f"{entry['over_acoustic']:.3f}" if "over_acoustic" in entry else ""
        lines.append(f"| {system} | {entry['seconds_per_30s_audio']:.3f} | {entry['wer']:.3f} | {entry['cer']:.3f} "
                     f"| {share} |")
    if "acoustic" in data:
        acoustic = data["acoustic"]
        lines += ["", f"Acoustic model, timed in the same run: {acoustic['model']}, int8, {acoustic['threads']} "
                  f"threads, {acoustic['seconds_per_30s_audio']:.3f} s per 30 s ({acoustic['rtfx']:.1f}x real time)."]
    return lines + [""]


def beam_loops_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: the beam search's C and Python frame loops ({data['model_dir']}, {data['source']})",
             f"_{machine_line(data)}_", "",
             f"{data['utterances']} utterances, {data['audio_s']:.0f} s of audio; int8 acoustic model "
             f"{data['acoustic_int8_s']:.2f} s.", "",
             "| settings | Python loop s | C loop s | faster | C loop / acoustic time | identical results |",
             "|---|---|---|---|---|---|"]
    for label, entry in data["settings"].items():
        lines.append(f"| {label} | {entry['python_loop_s']:.2f} | {entry['c_loop_s']:.2f} | {entry['speedup']:.1f}x "
                     f"| {entry['c_over_acoustic']:.2f} | {entry['identical']} |")
    return lines + [""]


def serve_section(name: str, data: dict) -> list[str]:
    clip = f"{Path(data['clip_file']).name}, " if data.get("clip_file") else ""
    lines = [f"### {name}: HTTP serving ({data.get('model')}, {clip}{data.get('clip_seconds', 0):.1f} s per request"
             + (f", decoder {data['decoder']}" if data.get("decoder") else "") + ")", "",
             "| concurrency | requests/s | audio real-time factor | p50 ms | p95 ms | p99 ms | statuses |",
             "|---|---|---|---|---|---|---|"]
    for concurrency, load in data["load"].items():
        lines.append(f"| {concurrency} | {load['requests_per_s']:.1f} | {load['audio_rtfx']:.1f}x | "
                     f"{load['p50_ms']:.0f} | {load['p95_ms']:.0f} | {load['p99_ms']:.0f} | {load['statuses']} |")
    soak = data["soak"]
    lines += ["", f"Soak: {soak['requests']} requests, {soak['server_5xx']} server errors, memory (requests, MB): "
              f"{soak['memory_curve_mb']}", "", "| bad input | statuses |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data["bad_input"].items()]
    return lines + [""]


def long_beam_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: beam search over long recordings (bundled model and its LM)", f"_{machine_line(data)}_", "",
             f"Peak memory transcribing {data['minutes']:g} minutes of real speech (a fresh process each):", "",
             "| decoding | peak RSS MB | after load MB | seconds |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['peak_rss_mb']} | {v['rss_after_load_mb']} | {v['transcribe_s']} |"
              for k, v in data["memory"].items()]
    seg = data["segments"]
    lines += ["", f"Held-out cathy prompts joined into one recording ({seg['utterances']} utterances, "
              f"{seg['audio_s'] / 60:.1f} min):", "", "| beam + LM over it as | WER | CER |", "|---|---|---|"]
    lines += [f"| {k} | {v['wer']:.4f} | {v['cer']:.4f} |" for k, v in seg.items() if isinstance(v, dict)]
    return lines + [""]


def stream_latency_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: live transcription (Transcriber.stream), {data['block_s']:g} s blocks as fast as they come",
             f"_{machine_line(data)}_", "",
             "| windows | audio s | first text at s | s between updates | update ms p50 / max | finish ms "
             "| real time | finish = transcribe |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['chunk_length']:g} / {r['chunk_context']:g} s | {r['audio_s']:g} | {r['first_text_at_s']} | "
              f"{r['median_s_between_updates']} | {r['model_call_ms_p50']} / {r['model_call_ms_max']} | "
              f"{r['finish_ms']} | {r['real_time_factor']}x | {'yes' if r['equals_transcribe'] else 'NO'} |"
              for r in data["rows"]]
    return lines + [""]


def pause_cuts_section(name: str, data: dict) -> list[str]:
    cuts = list(data["one_recording_at_a_time"])
    header = " | ".join("one search per 60 s" if c == "None" else f"restart at {c} s pauses" for c in cuts)
    lines = [f"### {name}: beam + LM restarted at pauses ({data['model']}, cathy {data['part']} part)",
             f"_{machine_line(data)}_", "",
             f"WER (CER) of the default beam + LM decoding, alpha {data['lm']['alpha']}, beta {data['lm']['beta']}:",
             "", f"| input | {header} |", "|---" * (1 + len(cuts)) + "|"]
    rows = [(f"recordings joined, {gap} s added between sentences", r) for gap, r in data["joined"].items()]
    rows.append(("one recording at a time", data["one_recording_at_a_time"]))
    if "keywords_half" in data:
        rows.append((f"keyword recordings never trained on, {data['part']} half", data["keywords_half"]))
    lines += [f"| {label} | " + " | ".join(f"{r[c]['wer']:.4f} ({r[c]['cer']:.4f})" for c in cuts) + " |"
              for label, r in rows]
    return lines + [""]


def endpoints_section(name: str, data: dict) -> list[str]:
    lines = [f"### {name}: live endpoints ({data['model']}, cathy {data['part']} part joined, {data['gap_s']:g} s "
             f"added between sentences, windows {data['windows'][0]:g} / {data['windows'][1]:g} s)",
             f"_{machine_line(data)}_", "",
             f"{data['audio_s']:g} s of audio; one recording at a time: WER "
             f"{data['one_recording_at_a_time']['wer']:.4f}. A boundary is found within {data['tolerance_s']:g} s.",
             "",
             "| endpoint_silence | utterances / sentences | boundary recall | boundary precision "
             "| delay median / p90 s | WER utterances | WER finish() | real time |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['endpoint_silence']:g} s | {r['utterances']} / {r['sentences']} | {r['recall']:.3f} | "
              f"{r['precision']:.3f} | {r['delay_s_median']} / {r['delay_s_p90']} | "
              f"{r['utterances_wer_cer']['wer']:.4f} | {r['finish_wer_cer']['wer']:.4f} | {r['real_time']}x |"
              for r in data["settings"]]
    return lines + [""]


def silence_margins_section(name: str, data: dict) -> list[str]:
    trimmed = ", the runtime trimming silence first (`trim_silence=True`)" if data.get("trim_silence") else ""
    lines = [f"### {name}: silence around speech ({data['model']}, cathy {data['part']} part, "
             f"{data['recordings']} recordings, greedy{trimmed})", f"_{machine_line(data)}_", "",
             "| margin on each side | fill | WER | CER |", "|---|---|---|---|"]
    lines += [f"| {r['margin_s']:g} s | {r['fill']} | {r['wer']:.4f} | {r['cer']:.4f} |" for r in data["rows"]]
    return lines + [""]


def lm_memory_section(name: str, data: dict) -> list[str]:
    return [f"### {name}: the bundled model's language model, pure-Python backend", f"_{machine_line(data)}_", "",
            "| LM | load s | peak MB greedy | peak MB beam + LM | LM's extra MB |", "|---|---|---|---|---|",
            f"| {Path(data['lm']).name} | {data['load_s']} | {data['greedy_peak_mb']} | {data['beam_lm_peak_mb']} | "
            f"{data['lm_extra_mb']} |", ""]


def rejection_section(name: str, data: dict) -> list[str]:
    tests = list(next(iter(data["rules"].values()))["test_false_accepts"])
    lines = [f"### {name}: rejecting inputs that say none of the phrases ({data['model_dir']})",
             f"_{machine_line(data)}_", "",
             f"In-set: {data['in_set']} ({data['dev_in']} dev / {data['test_in']} test recordings), phrases "
             f"{', '.join(data['phrases'])}. Each threshold rejects {data['reject_share']:.0%} of the dev in-set "
             f"recordings; the figures are on the test recordings.", "",
             "| accept when | threshold | in-set right | in-set wrong | in-set rejected | "
             + " | ".join(f"false accepts: {t}" for t in tests) + " |", "|---" * (5 + len(tests)) + "|"]
    for key, rule in data["rules"].items():
        t = rule["test_in"]
        lines.append(f"| {key} >= threshold | {rule['threshold']:.6g} | {t['accepted_right']:.3f} | "
                     f"{t['accepted_wrong']:.3f} | {t['rejected']:.3f} | "
                     + " | ".join(f"{rule['test_false_accepts'][n]:.3f}" for n in tests) + " |")
    none = next(iter(data["rules"].values()))["no_threshold_test_in"]
    lines.append(f"| always (no threshold) | | {none['accepted_right']:.3f} | {none['accepted_wrong']:.3f} | 0.000 | "
                 + " | ".join("1.000" for _ in tests) + " |")
    return lines + [""]


def accuracy_section(name: str, data: dict, plots: Path | None = None) -> list[str]:
    if "sets" not in data:  # the summary form only: {"wer": {precision: {decoder: wer}}}
        decoders = sorted({d for per in data["wer"].values() for d in per})
        lines = [f"### {name}: WER by precision and decoder", "", "| precision | " + " | ".join(decoders) + " |",
                 "|---" * (len(decoders) + 1) + "|"]
        for precision, per in data["wer"].items():
            lines.append(f"| {precision} | " + " | ".join(f"{per.get(d, float('nan')):.3f}" for d in decoders)
                         + " |")
        return lines + [""]
    lines = [f"### {name}: held-out accuracy by precision and decoder ({data.get('model_dir')})",
             f"_{machine_line(data)}_", ""]
    tuning = data.get("tuning")
    if tuning:
        lines += [f"LM: `{data.get('lm')}`, beam {data.get('beam_width')}; alpha {tuning['alpha']:g} and beta "
                  f"{tuning['beta']:g} tuned on {tuning['dev']} ({tuning['utterances']} utterances, dev WER "
                  f"{tuning['dev_wer']:.3f} vs greedy {tuning['greedy_dev_wer']:.3f}), never on a test set.", ""]
    workers = next((res["decode_workers"] for entry in data["sets"].values() for per in entry["results"].values()
                    for res in per.values() if isinstance(res, dict) and "decode_workers" in res), None)
    parallel_head = f" decode / acoustic, {workers} processes |" if workers else ""
    lines += ["| set | precision | decoder | WER | CER | exact | decode s | decode / acoustic time |" + parallel_head,
              "|---|---|---|---|---|---|---|---|" + ("---|" if workers else "")]
    for set_name, entry in data["sets"].items():
        for precision, per in entry["results"].items():
            for decoder, res in per.items():
                if isinstance(res, dict) and "wer" in res:
                    parallel = ""
                    if workers:
                        share = res.get("decode_parallel_over_acoustic")
                        parallel = " |" if share is None else f" {share:.3f} |"
                    lines.append(f"| {set_name} ({entry['utterances']} utt, {entry['audio_s']:.0f} s) | {precision} | "
                                 f"{decoder} | {res['wer']:.3f} | {res['cer']:.3f} | {res['exact']:.3f} | "
                                 f"{res['decode_s']:.2f} | {res['decode_over_acoustic']:.3f} |" + parallel)
    matched = [(set_name, entry, precision, per["match"]) for set_name, entry in data["sets"].items()
               for precision, per in entry["results"].items() if "match" in per]
    if matched:
        lines += ["", "Closed-set recognition (`Transcriber.match_phrases`, choosing among the set's distinct "
                  "transcripts):", "", "| set | precision | phrases | exact | decode s | decode / acoustic time |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {s_} ({e_['utterances']} utt) | {p_} | {len(m['phrases'])} | {m['exact']:.3f} | "
                  f"{m['decode_s']:.2f} | {m['decode_over_acoustic']:.3f} |" for s_, e_, p_, m in matched]
    compared = [(set_name, precision, decoder, res) for set_name, entry in data["sets"].items()
                for precision, per in entry["results"].items()
                for decoder, res in per.get("pyctcdecode", {}).items()]
    if compared:
        lines += ["", "pyctcdecode 0.5.0 on the same log-probabilities and settings:", "",
                  "| set | precision | decoder | pyctcdecode WER | same transcript as ours | pyctcdecode s | ours s |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {s_} | {p_} | {d_} | {r['wer']:.3f} | {r['same_transcripts']}/{r['utterances']} | "
                  f"{r['decode_s']:.2f} | {r['ours_decode_s']:.2f} |" for s_, p_, d_, r in compared]
    if plots is not None:
        lines += plot_accuracy(name, data, plots)
    return lines + [""]


def plot_accuracy(name: str, data: dict, plots: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(data["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(4 * len(sets), 3.2), squeeze=False)
    for ax, set_name in zip(axes[0], sets, strict=True):
        results = data["sets"][set_name]["results"]
        labels, values = [], []
        for precision, per in results.items():
            for decoder, res in per.items():
                if isinstance(res, dict) and "wer" in res:
                    labels.append(f"{precision}\n{decoder}")
                    values.append(res["wer"])
        ax.bar(range(len(values)), values, color="tab:blue")
        ax.set_xticks(range(len(values)), labels, fontsize=7)
        ax.set_ylabel("WER")
        ax.set_ylim(0, max(1.0, max(values)))
        ax.set_title(set_name)
        ax.grid(axis="y", alpha=0.3)
    return ["", save_plot(fig, plots / f"{name}_wer_by_precision_and_decoder.png", "WER by precision and decoder")]


def render(files: list[Path], plots: Path | None) -> list[str]:
    """The sections of ``files``, each by the kind of benchmark it holds."""
    sections = {"runtime": lambda n, d: runtime_section(n, d, plots), "peers": peers_section,
                "conv_matmul": conv_section, "serve": serve_section,
                "accuracy": lambda n, d: accuracy_section(n, d, plots), "denormals": denormals_section,
                "window_settings": window_section, "window_accuracy": window_accuracy_section,
                "ab_window": ab_window_section, "phrase_rejection": rejection_section,
                "long_beam": long_beam_section, "stream_latency": stream_latency_section,
                "lm_memory": lm_memory_section, "pause_cuts": pause_cuts_section, "endpoints": endpoints_section,
                "silence_margins": silence_margins_section,
                "decoder_speed": decoder_section, "beam_loops": beam_loops_section,
                "cuda": lambda n, d: cuda_section(n, d, plots)}
    lines: list[str] = []
    for path in files:
        data = json.loads(path.read_text())
        section = sections.get(kind_of(data))
        lines += section(path.stem, data) if section else [f"### {path.stem}: not a known benchmark file", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default: stdout)")
    parser.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")
    parser.add_argument("--intro", type=Path, default=None, help="markdown placed under the title (commands, notes)")
    parser.add_argument("--history", nargs="*", type=Path, default=[],
                        help="files of earlier revisions, rendered after the others under their own heading")
    args = parser.parse_args()
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
    lines = ["# Benchmark report", "", "Generated by `benchmarks/report.py` from the JSON files named below.", ""]
    if args.intro is not None:
        lines += [args.intro.read_text().strip(), ""]
    if args.history:
        lines += ["## This revision", ""]
    lines += render(args.files, args.plots)
    if args.history:
        lines += ["## History: earlier revisions, kept for comparison", ""] + render(args.history, args.plots)
    text = "\n".join(lines) + "\n"
    if args.out and args.plots is not None:  # image links relative to the report's folder
        import os

        relative = Path(os.path.relpath(args.plots.resolve(), args.out.resolve().parent)).as_posix()
        text = text.replace(f"]({args.plots.as_posix()}/", f"]({relative}/")
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
