"""Write transcriptions as plain text, JSON, SubRip (srt) or WebVTT (vtt)."""

from __future__ import annotations

import json
import math
from typing import Any

from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.results import PhraseMatch, Transcription, Utterance, Word

FORMATS = ("txt", "json", "srt", "vtt")
MAX_CUE_WORDS = 12
MAX_CUE_SECONDS = 6.0
CUE_GAP_SECONDS = 1.0


def _timestamp(seconds: float, decimal: str) -> str:
    if not math.isfinite(seconds):
        raise InvalidOptionError(f"subtitle times must be finite numbers of seconds, got {seconds!r}")
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def cues(words: tuple[Word, ...]) -> list[tuple[float, float, str]]:
    """Group words into subtitle cues: a new cue after a pause, a long cue or many words."""
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if (current is None or len(current) >= MAX_CUE_WORDS or word.start - current[-1].end > CUE_GAP_SECONDS
                or word.end - current[0].start > MAX_CUE_SECONDS):
            groups.append([word])
        else:
            current.append(word)
    return [(g[0].start, g[-1].end, " ".join(w.word for w in g)) for g in groups]


def _subtitle_cues(result: Transcription) -> list[tuple[float, float, str]]:
    if result.words:
        return cues(result.words)
    return [(0.0, result.duration, result.text)] if result.text else []


def _one_line(text: str) -> str:
    """Cue text on one line: a line break (or a blank line) inside a word would end the cue."""
    return " ".join(text.split())


def _vtt_text(text: str) -> str:
    """WebVTT cue text escapes ``&``, ``<`` and ``>`` (so ``-->`` cannot appear either)."""
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(result: Transcription) -> str:
    """SubRip subtitles, one cue per group of words (SubRip has no escapes: ``-->`` becomes ``->``)."""
    blocks = [f"{i}\n{_timestamp(s, ',')} --> {_timestamp(e, ',')}\n{_one_line(text).replace('-->', '->')}\n"
              for i, (s, e, text) in enumerate(_subtitle_cues(result), start=1)]
    return "\n".join(blocks)


def to_vtt(result: Transcription) -> str:
    """WebVTT subtitles, one cue per group of words."""
    blocks = [f"{_timestamp(s, '.')} --> {_timestamp(e, '.')}\n{_vtt_text(text)}\n"
              for s, e, text in _subtitle_cues(result)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float inside it replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value


def to_json(result: Transcription, source: str | None = None) -> str:
    """JSON with text, words, duration and the effective options (and the source path when given).

    A number that is NaN or infinite (the decoders never produce one; a hand-built result might) is written
    as ``null``, so the output stays valid JSON.
    """
    return json.dumps(_json_data(result, source), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def to_json_line(result: Transcription | PhraseMatch | Utterance, source: str | None = None) -> str:
    """The same data as :func:`to_json` on one line (JSON Lines), without the final newline.

    Also takes a :class:`PhraseMatch` (an impossible phrase's ``-inf`` score is written as ``null``) and a live
    stream's :class:`Utterance`.
    """
    return json.dumps(_json_data(result, source), ensure_ascii=False, allow_nan=False)


def _json_data(result: Transcription | PhraseMatch | Utterance, source: str | None) -> dict[str, Any]:
    data = finite_or_none(result.to_dict())
    return data if source is None else {"source": source, **data}


def render(result: Transcription, fmt: str, source: str | None = None) -> str:
    """Render a transcription in one of :data:`FORMATS`."""
    if fmt == "txt":
        return result.text + "\n"
    if fmt == "json":
        return to_json(result, source)
    if fmt == "srt":
        return to_srt(result)
    if fmt == "vtt":
        return to_vtt(result)
    raise InvalidOptionError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
