"""HTTP serving with the SageMaker container contract: ``GET /ping`` and ``POST /invocations``.

``/invocations`` takes the seed's JSON (``{"speech_array": [...], "sampling_rate": N}``) or raw audio bytes
(``audio/wav``, ``audio/flac``, ``audio/ogg``, ...). A JSON body may add ``"phrases": [...]`` to ask which of
them the audio says (a :class:`PhraseMatch` as JSON) instead of a transcript, and with it ``"min_margin"`` to
reject a best phrase below that margin. Library errors become 4xx
JSON bodies with a message; only a real server fault is a 500. Needs the ``serve`` extra (starlette, uvicorn).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2v2_onnx.audio import load_audio
from w2v2_onnx.batcher import MicroBatcher, QueueFullError
from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import InferenceError, InvalidOptionError, MissingDependencyError, W2V2OnnxError
from w2v2_onnx.formats import finite_or_none
from w2v2_onnx.phrases import SpelledPhrase, checked_min_margin, match_frames, spell_phrases
from w2v2_onnx.transcriber import Transcriber

try:
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("starlette", "serve", "w2v2-onnx serve") from exc

logger = logging.getLogger(__name__)

AUDIO_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac",
               "audio/ogg", "audio/opus", "audio/mpeg", "audio/mp3", "application/octet-stream"}
JSON_TYPES = {"application/json"}


@dataclass(frozen=True)
class ServerSettings:
    """Serving limits and batching; defaults suit a small CPU instance."""

    max_batch: int = 8
    max_wait_ms: float = 10.0
    queue_size: int = 64
    max_body_bytes: int = 50 * 2**20
    max_audio_seconds: float = 600.0
    timeout_s: float = 60.0
    api_key: str | None = None
    decoder: str | None = None  # None: as transcribe(): beam with the model's LM if it ships one, else greedy

    def __post_init__(self) -> None:
        """Refuse limits that would hang or refuse every request.

        Raises:
            InvalidOptionError: naming the setting and what is allowed.
        """
        checks = [("max_batch", is_finite_number(self.max_batch) and float(self.max_batch).is_integer()
                   and 1 <= self.max_batch <= 1024, "an integer from 1 to 1024"),
                  ("max_wait_ms", is_finite_number(self.max_wait_ms) and 0 <= self.max_wait_ms <= 10_000,
                   "from 0 to 10000 ms"),
                  ("queue_size", is_finite_number(self.queue_size) and float(self.queue_size).is_integer()
                   and 1 <= self.queue_size <= 100_000, "an integer from 1 to 100000"),
                  ("max_body_bytes", is_finite_number(self.max_body_bytes) and self.max_body_bytes >= 1024,
                   "at least 1024 bytes"),
                  ("max_audio_seconds", is_finite_number(self.max_audio_seconds) and self.max_audio_seconds > 0,
                   "a finite number of seconds above 0"),
                  ("timeout_s", is_finite_number(self.timeout_s) and self.timeout_s > 0,
                   "a finite number of seconds above 0")]
        checks.append(("decoder", self.decoder in (None, "greedy", "beam"), "None, 'greedy' or 'beam'"))
        for name, ok, allowed in checks:
            if not ok:
                raise InvalidOptionError(f"server setting {name} must be {allowed}, got {getattr(self, name)!r}")

#: The JSON body's fields; others are refused rather than ignored. "phrases" (optional) asks which of the
#: listed phrases the audio says (Transcriber.match_phrases) instead of a transcript; "min_margin" (optional,
#: with "phrases" only) rejects a best phrase whose margin is below it.
JSON_FIELDS = frozenset({"speech_array", "sampling_rate", "phrases", "min_margin"})


@dataclass(frozen=True)
class _PhraseQuery:
    """A request's closed-set question: the spelled phrases, and the margin below which to reject."""

    phrases: list[SpelledPhrase]
    min_margin: float | None


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise HTTPError(400, "request body is empty: send JSON {\"speech_array\": [...], \"sampling_rate\": N} "
                             "or audio bytes")
    return body


def _parse_json(body: bytes) -> tuple[np.ndarray, int, Any, Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HTTPError(400, "JSON body must be an object with 'speech_array' and 'sampling_rate'")
    unknown = sorted(set(payload) - JSON_FIELDS)
    if unknown:
        raise HTTPError(400, f"JSON body has unknown fields {unknown}; the fields are 'speech_array', "
                             f"'sampling_rate' and optionally 'phrases' and 'min_margin' (the server decodes "
                             f"with its startup settings)")
    missing = [k for k in ("speech_array", "sampling_rate") if k not in payload]
    if missing:
        raise HTTPError(400, f"JSON body lacks {missing}; expected {{\"speech_array\": [numbers], "
                             f"\"sampling_rate\": positive integer}}")
    samples, rate = payload["speech_array"], payload["sampling_rate"]
    if not isinstance(samples, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in samples):
        raise HTTPError(400, "'speech_array' must be a flat list of numbers (mono samples)")
    if not all(math.isfinite(v) for v in samples):
        raise HTTPError(400, "'speech_array' holds NaN or infinite values; all samples must be finite")
    if "min_margin" in payload and payload.get("phrases") is None:
        raise HTTPError(400, "'min_margin' applies only with 'phrases' (it rejects a best phrase); add 'phrases' "
                             "or drop 'min_margin'")
    return np.asarray(samples, dtype=np.float32), rate, payload.get("phrases"), payload.get("min_margin")


def _words(result: Any) -> list[dict[str, Any]]:
    return [{"start": w.start, "end": w.end, "word": w.word, "probability": w.probability} for w in result.words]


def create_app(transcriber: Transcriber, settings: ServerSettings | None = None) -> Starlette:
    """Build the ASGI application around a loaded Transcriber."""
    settings = settings or ServerSettings()
    transcriber.check_options(decoder=settings.decoder)  # loads the language model now, not at the first request
    # Requests gathered by the micro-batcher share model calls (padded batches of up to max_batch inputs);
    # each request then decodes its own frames in a worker thread, so a beam search holds no other request.
    batcher = MicroBatcher(lambda audios: transcriber.log_probs(list(audios), batch_size=settings.max_batch),
                           max_batch=settings.max_batch,
                           max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size)
    rate = transcriber.sample_rate
    decoder_name = settings.decoder or ("beam" if transcriber.language_model is not None else "greedy")

    def decode(content_type: str, body: bytes) -> tuple[np.ndarray, _PhraseQuery | None]:
        query = None
        if content_type in JSON_TYPES:
            samples, sampling_rate, given, min_margin = _parse_json(body)
            if given is not None:
                query = _PhraseQuery(spell_phrases(given, transcriber.config.vocabulary),
                                     checked_min_margin(min_margin))
            audio = load_audio(samples, rate, sampling_rate)
        else:
            audio = load_audio(body, rate)
        if audio.size > settings.max_audio_seconds * rate:
            raise HTTPError(413, f"audio of {audio.size / rate:.1f} s exceeds the limit of "
                                 f"{settings.max_audio_seconds:g} s per request")
        return audio, query

    async def recognize(audio: np.ndarray, query: _PhraseQuery | None) -> dict[str, Any]:
        frames = await batcher.submit(audio)
        if query is not None:
            match = await asyncio.to_thread(match_frames, frames, query.phrases, transcriber.config.vocabulary,
                                            audio.size / rate, query.min_margin)
            return finite_or_none(match.to_dict())
        decoded = await asyncio.to_thread(transcriber.decode, frames, decoder=settings.decoder)
        return {"text": decoded.text, "words": _words(decoded), "duration": round(audio.size / rate, 6)}

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "sample_rate": rate, "precision": transcriber.precision,
                             "device": transcriber.device, "decoder": decoder_name})

    async def invocations(request: Request) -> JSONResponse:
        if settings.api_key is not None:
            given = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                return _error(401, "missing or wrong X-API-Key header")
        if request.query_params:
            return _error(400, f"unknown query parameters {sorted(request.query_params.keys())}; /invocations "
                               f"takes none (the server decodes with its startup settings)")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES | AUDIO_TYPES:
            return _error(415, f"unsupported content type {content_type or '(none)'!r}; use application/json or "
                               f"one of {sorted(AUDIO_TYPES)}")
        try:
            body = await _read_body(request, settings.max_body_bytes)
            audio, query = await asyncio.to_thread(decode, content_type, body)
            result = await asyncio.wait_for(recognize(audio, query), settings.timeout_s)
        except HTTPError as exc:
            return _error(exc.status, exc.message)
        except ClientDisconnect:
            return _error(400, "client disconnected before sending the whole body")
        except QueueFullError as exc:
            return _error(503, str(exc))
        except TimeoutError:
            return _error(504, f"transcription did not finish within {settings.timeout_s:g} s")
        except InferenceError:
            logger.exception("inference failed")
            return _error(500, "inference failed on the server")
        except W2V2OnnxError as exc:  # audio, sample rate and option errors are the client's to fix
            return _error(400, str(exc))
        return JSONResponse(result)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        batcher.start()
        yield
        await batcher.stop()

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        detail = {404: f"no route {request.url.path}; the routes are GET /ping and POST /invocations",
                  405: f"method {request.method} not allowed on {request.url.path}"}.get(status, str(exc))
        return _error(status, detail)

    app = Starlette(routes=[Route("/ping", ping, methods=["GET"]),
                            Route("/invocations", invocations, methods=["POST"])], lifespan=lifespan,
                    exception_handlers={404: http_error, 405: http_error})
    app.state.batcher = batcher
    app.state.settings = settings
    return app
