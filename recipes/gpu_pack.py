#!/usr/bin/env python3
"""Pack what reference model (b)'s one GPU run needs into ``.gpudata/`` (git-ignored), small enough to carry.

    python recipes/gpu_pack.py [--data ../shared/data] [--synth /work/cache/synth/v1] [--level 0.97]

Writes, in the repository root:

    .gpudata/whl/*.whl   Python 3.12 manylinux x86_64 wheels of what the GPU machine lacks and the training and
                         evaluation path imports: soundfile (+ cffi, pycparser; libsndfile is inside the wheel),
                         soxr (FSDD is 8 kHz), jiwer (+ rapidfuzz; its click is only for its CLI) for WER/CER.
    .gpudata/data.tar.gz gpudata/data/{cathy,fsdd,keywords}/ and gpudata/synth/v1/{train,eval}/, each a manifest.tsv
                         and its audio, laid out like ../shared/data and /work/cache/synth/v1 so that
                         recipes/small_fb_common.sh's specs work unchanged on it (DATA=.../gpudata/data,
                         SYNTH=.../gpudata/synth/v1).
    .gpudata/PACK.json   what was kept, how, and the checks below.
    .gpudata/debs/*.deb  with --tts: Debian 12 packages of flite (libflite1, flite) and ALSA's library (libasound2,
                         libasound2-data), unpacked on the GPU machine with ``dpkg -x`` so that GPU_TRAIN_SYNTH=N
                         synthesises more training speech there (flite only needs libasound and libc); the
                         archive then also holds gpudata/data/text/sentences.txt.

The sources and specs are read from recipes/small_fb_common.sh (SMALL_FB_DATA, SMALL_FB_HELD_OUT), split with
seed 0 by the repository's own code (``manifest_parts``):

* held-out rows (cathy test part, FSDD theo, every synthetic eval row) keep their exact samples: FLAC files are
  copied byte for byte, FSDD's WAVs become 16-bit FLAC (lossless; checked sample for sample);
* training rows are re-encoded to Ogg Opus at libsndfile's compression level ``--level`` (0.97: about 16 kb/s) for
  human speech and ``--synth-level`` (0.98: about 13 kb/s) for the synthetic speech;
* rows that are neither (the cathy dev part) must stay in the manifest, or the seeded split by prompt id would
  change: they are Opus at the lowest bitrate (never trained on nor scored in this run);
* keywords: only the 500 rows that ``keywords:role=train,limit=500`` chooses with seed 0 are kept (the manifest
  then has exactly 500 rows, so the same spec keeps them all); ``--synth-train N`` keeps the first N synthetic
  training rows (default: all 3,000).

Every spec of SMALL_FB_DATA and SMALL_FB_HELD_OUT is then re-split on the packed copy and checked to give the same
training and held-out rows (row number, transcript, group) as on the originals, the held-out audio to decode to
exactly the original samples (``load_audio``, as training and evaluation read it), and the training audio to
decode at the original length.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Debian packages of a text-to-speech engine that runs on the GPU machine (see --tts).
TTS_DEBS = ("flite", "libflite1", "libasound2", "libasound2-data")

#: The wheels, pinned to the versions of the dev venv that the project is tested with.
WHEELS = ("soundfile==0.14.0", "cffi==2.1.1", "pycparser==3.12", "soxr==1.1.0", "jiwer==4.0.0",
          "rapidfuzz==3.14.6")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
STAGE_NAME = "gpudata"
#: What one call to a lent machine may carry (its working tree and carried paths), and the room kept free.
CARRY_LIMIT = 64 * 2**20
CARRY_MARGIN = 2**18


def tracked_bytes() -> int:
    """Bytes of the repository's tracked files, which travel with every call beside ``.gpudata``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    return sum((REPO / name).stat().st_size for name in names.decode().split("\0")
               if name and (REPO / name).is_file())


def common_specs(data: str, synth: str) -> tuple[list[str], list[str]]:
    """SMALL_FB_DATA and SMALL_FB_HELD_OUT of recipes/small_fb_common.sh with DATA and SYNTH set."""
    script = ('source recipes/small_fb_common.sh; printf "%s\\n" "${SMALL_FB_DATA[@]}"; echo ---; '
              'printf "%s\\n" "${SMALL_FB_HELD_OUT[@]}"')
    out = subprocess.run(["bash", "-c", script], cwd=REPO, env=os.environ | {"DATA": data, "SYNTH": synth},
                         check=True, capture_output=True, text=True).stdout.split("\n---\n")
    def parse(text: str) -> list[str]:
        words = text.strip().split("\n")
        return [value for flag, value in zip(words[::2], words[1::2], strict=True) if flag == "--data"]

    return parse(out[0]), parse(out[1])


def fetch_wheels(target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    wanted = [spec.lower().replace("==", "-") + "-" for spec in WHEELS]
    for stray in target.glob("*.whl"):  # one version of each, nothing else
        if not any(stray.name.lower().startswith(prefix) for prefix in wanted):
            stray.unlink()
    for spec in WHEELS:
        name, version = spec.lower().split("==")
        if any(p.name.lower().startswith(f"{name}-{version}-") for p in target.glob("*.whl")):
            continue
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        subprocess.run(cmd + ["-d", str(target), spec], check=True)
    names = sorted(p.name for p in target.glob("*.whl"))
    for name in names:  # nothing may need compiling on the GPU machine
        tags = name[:-4].split("-")[-3:]
        ok = tags[2] == "any" or ("x86_64" in tags[2] and "manylinux" in tags[2]
                                  and tags[0] in ("cp312", "py3", "py2.py3") and tags[1] in ("cp312", "abi3", "none"))
        if not ok:
            raise SystemExit(f"wheel {name} is not a cp312 manylinux x86_64 or pure-Python wheel")
    if len(names) != len(WHEELS):
        raise SystemExit(f"expected {len(WHEELS)} wheels, found {names}")
    return names


def fetch_debs(target: Path) -> list[str]:
    """Download :data:`TTS_DEBS` (this machine's Debian release, amd64) into ``target``, replacing older ones."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(["apt-get", "download", *TTS_DEBS], cwd=target, check=True, capture_output=True)
    names = sorted(p.name for p in target.glob("*.deb"))
    if len(names) != len(TTS_DEBS):
        raise SystemExit(f"expected {len(TTS_DEBS)} packages, found {names}")
    return names


def write_opus(src: Path, dst: Path, level: float) -> None:
    import soundfile as sf

    samples, rate = sf.read(str(src), dtype="float32", always_2d=False)
    sf.write(str(dst), samples, rate, format="OGG", subtype="OPUS", compression_level=level)


def write_lossless(src: Path, dst: Path) -> str:
    """Copy FLAC as is; anything else becomes 16-bit FLAC, checked sample for sample. Returns how."""
    import numpy as np
    import soundfile as sf

    if src.suffix.lower() == ".flac":
        shutil.copyfile(src, dst)
        return "copy"
    info = sf.info(str(src))
    if info.subtype != "PCM_16":
        raise SystemExit(f"{src}: {info.subtype}, only PCM_16 is re-encoded losslessly here")
    samples, rate = sf.read(str(src), dtype="int16", always_2d=True)
    sf.write(str(dst), samples, rate, format="FLAC", subtype="PCM_16")
    back, rate2 = sf.read(str(dst), dtype="int16", always_2d=True)
    if rate2 != rate or not np.array_equal(back, samples):
        raise SystemExit(f"{dst}: FLAC copy differs from {src}")
    return "flac"


def pack_source(spec_text: str, level: float, synth_level: float, synth_train: int | None,
                report: dict[str, dict]) -> None:
    """Write one source's manifest and audio under ``stage_dir`` (once per location)."""
    from w2v2_onnx_finetune.data import manifest_parts
    from w2v2_onnx_finetune.manifest import find_manifest
    from w2v2_onnx_finetune.sources import parse_source

    spec = parse_source(spec_text)
    location = Path(spec.location)
    if str(location) in report:
        return
    _, train, held = manifest_parts(spec, seed=0)
    train_rows = {u.row for u in train}
    held_rows = {u.row for u in held}
    if spec.name == "synth":
        level = synth_level
        if synth_train is not None:
            train_rows = set(sorted(train_rows)[:synth_train])
    manifest_path = find_manifest(location)
    with manifest_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        fields = list(reader.fieldnames or [])
        records = list(enumerate(reader, start=2))
    # keep every row unless the spec only trains on a chosen subset (limit) or we subsample
    subset = spec.role == "train"
    out_dir = report["_dirs"][str(location)]
    out_dir.mkdir(parents=True, exist_ok=True)
    kept, counts = [], {"lossless": 0, "opus": 0, "opus_min": 0, "dropped": 0}
    for row, record in records:
        src = manifest_path.parent / record["path"]
        stem = Path(record["path"]).stem
        if row in held_rows:
            write_lossless(src, out_dir / f"{stem}.flac")
            record = record | {"path": f"{stem}.flac"}
            counts["lossless"] += 1
        elif row in train_rows:
            write_opus(src, out_dir / f"{stem}.ogg", level)
            record = record | {"path": f"{stem}.ogg"}
            counts["opus"] += 1
        elif subset:
            counts["dropped"] += 1
            continue
        else:  # in the manifest only to keep the seeded split (the cathy dev part)
            write_opus(src, out_dir / f"{stem}.ogg", 1.0)
            record = record | {"path": f"{stem}.ogg"}
            counts["opus_min"] += 1
        kept.append(record)
    with (out_dir / "manifest.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    report[str(location)] = {"spec": spec_text, "rows": len(kept), **counts}
    print(f"packed {location}: {report[str(location)]}", flush=True)


def check(original_specs: list[str], packed_specs: list[str], synth_train: int | None) -> list[str]:
    """Same rows on both sides of every split; held-out audio sample-exact; training audio of the same length."""
    import numpy as np

    from w2v2_onnx_finetune.audio import load_audio
    from w2v2_onnx_finetune.data import manifest_parts
    from w2v2_onnx_finetune.sources import parse_source

    notes = []
    for orig_text, packed_text in zip(original_specs, packed_specs, strict=True):
        orig, packed = parse_source(orig_text), parse_source(packed_text)
        _, o_train, o_held = manifest_parts(orig, seed=0)
        _, p_train, p_held = manifest_parts(packed, seed=0)
        if orig.name == "synth" and synth_train is not None:
            o_train = o_train[:synth_train]
        # without a group column the group is the file name, whose extension changed
        def key(us: list, grouped: bool = bool(orig.group)) -> list[tuple[str, str, str]]:
            return [(u.text, u.group if grouped else "", Path(u.audio_path).stem) for u in us]

        if key(o_train) != key(p_train) or key(o_held) != key(p_held):
            raise SystemExit(f"split differs on the packed copy for {orig_text}")
        if orig.role != "train" and [u.row for u in o_held] != [u.row for u in p_held]:
            raise SystemExit(f"held-out row numbers differ for {orig_text}")
        for o, p in zip(o_held, p_held, strict=True):
            if not np.array_equal(load_audio(o.audio_path), load_audio(p.audio_path)):
                raise SystemExit(f"held-out audio differs: {o.audio_path} vs {p.audio_path}")
        worst = 0.0
        for o, p in zip(o_train, p_train, strict=True):
            worst = max(worst, abs(len(load_audio(o.audio_path)) - len(load_audio(p.audio_path))) / 16000)
        if worst > 0.03:
            raise SystemExit(f"training audio length differs by {worst:.3f} s for {orig_text}")
        note = (f"{packed.name}: train {len(p_train)} rows, held out {len(p_held)} rows (part={packed.part}) "
                f"identical to the originals; held-out audio sample-exact; max train length change {worst:.4f} s")
        print(note, flush=True)
        notes.append(note)
    return notes


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--synth", default="/work/cache/synth/v1")
    parser.add_argument("--out", type=Path, default=REPO / ".gpudata")
    parser.add_argument("--stage", type=Path, default=Path("/tmp/gpupack-stage"))
    parser.add_argument("--level", type=float, default=0.97, help="Opus compression level of human training speech")
    parser.add_argument("--synth-level", type=float, default=0.98,
                        help="Opus compression level of synthetic training speech")
    parser.add_argument("--synth-train", type=int, default=None, help="keep the first N synthetic training rows")
    parser.add_argument("--tts", action="store_true",
                        help="also carry flite's Debian packages and sentences.txt (for GPU_TRAIN_SYNTH=N)")
    parser.add_argument("--max-mb", type=float, default=None,
                        help="fail above this size (default: what a lent machine's call may carry, 64 MiB, less "
                             "the repository's tracked files and 0.25 MiB)")
    args = parser.parse_args()
    started = time.time()

    wheels = fetch_wheels(args.out / "whl")
    print("wheels:", *wheels, sep="\n  ", flush=True)

    data, synth = str(Path(args.data).resolve()), str(Path(args.synth).resolve())
    train_specs, held_specs = common_specs(data, synth)
    root = args.stage / STAGE_NAME
    shutil.rmtree(args.stage, ignore_errors=True)
    new_data, new_synth = root / "data", root / "synth" / "v1"
    report: dict[str, dict] = {"_dirs": {}}
    for text in train_specs + held_specs:
        location = text.split(":", 1)[0]
        base, new = (synth, new_synth) if location.startswith(synth) else (data, new_data)
        report["_dirs"][location] = new / Path(location).relative_to(base)
    for text in train_specs:
        pack_source(text, args.level, args.synth_level, args.synth_train, report)
    for text in held_specs:  # same locations: already packed
        pack_source(text, args.level, args.synth_level, args.synth_train, report)
    del report["_dirs"]
    debs: list[str] = []
    if args.tts:
        text_dir = new_data / "text"
        text_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(data) / "text" / "sentences.txt", text_dir / "sentences.txt")
        debs = fetch_debs(args.out / "debs")
        print("packages:", *debs, sep="\n  ", flush=True)
    else:
        shutil.rmtree(args.out / "debs", ignore_errors=True)

    packed_train, packed_held = common_specs(str(new_data), str(new_synth))
    notes = check(train_specs + held_specs, packed_train + packed_held, args.synth_train)

    args.out.mkdir(parents=True, exist_ok=True)
    tar_path = args.out / "data.tar.gz"
    for old in args.out.glob("data.tar*"):
        old.unlink()
    with tarfile.open(tar_path, "w:gz", compresslevel=6) as tar:  # gzip removes tar's per-file padding
        tar.add(root, arcname=STAGE_NAME)
    shutil.rmtree(args.stage, ignore_errors=True)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    facts = {
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(time.time() - started),
        "opus_level": args.level, "synth_opus_level": args.synth_level, "synth_train": args.synth_train,
        "sources": report, "checks": notes,
        "wheels": wheels, "tts_debs": debs, "data_tar_sha256": sha256(tar_path),
        "data_tar_bytes": tar_path.stat().st_size,
    }
    (args.out / "PACK.json").write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f".gpudata: {total / 1e6:.1f} MB ({total / 2**20:.1f} MiB): "
          f"data.tar.gz {tar_path.stat().st_size / 1e6:.1f} MB, "
          f"wheels {sum(p.stat().st_size for p in (args.out / 'whl').glob('*.whl')) / 1e6:.1f} MB", flush=True)
    repo_bytes = tracked_bytes()
    max_mb = args.max_mb if args.max_mb is not None else (CARRY_LIMIT - repo_bytes - CARRY_MARGIN) / 1e6
    print(f"a call carries the repository's tracked files ({repo_bytes / 2**20:.2f} MiB) and .gpudata "
          f"({total / 2**20:.2f} MiB): {(repo_bytes + total) / 2**20:.2f} MiB of {CARRY_LIMIT / 2**20:.0f}", flush=True)
    if total > max_mb * 1e6:
        print(f"error: .gpudata is over {max_mb:.1f} MB; pass --synth-train N (fewer carried synthetic rows) or raise "
              "--level (lower bitrate)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
