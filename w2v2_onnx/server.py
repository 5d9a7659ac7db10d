"""HTTP serving with the SageMaker container contract: ``GET /ping`` and ``POST /invocations``.

``/invocations`` takes the seed's JSON (``{"speech_array": [...], "sampling_rate": N}``) or raw audio bytes
(``audio/wav``, ``audio/flac``, ``audio/ogg``, ...). A JSON body may add ``"phrases": [...]`` to ask which of
them the audio says (a :class:`PhraseMatch` as JSON) instead of a transcript, and with it ``"min_margin"`` to
reject a best phrase below that margin. Library errors become 4xx
JSON bodies with a message; only a real server fault is a 500. Needs the ``serve`` extra (starlette, uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from w2v2_onnx.beam import MAX_BEAM_WIDTH
from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import InferenceError, InvalidOptionError, MissingDependencyError, W2V2OnnxError
from w2v2_onnx.formats import finite_or_none
from w2v2_onnx.phrases import SpelledPhrase, checked_min_margin, match_frames, spell_phrases
from w2v2_onnx.results import shifted_words
from w2v2_onnx.streaming import PCM_TYPES, TranscriptionStream, split_pcm
from w2v2_onnx.transcriber import Transcriber, speech_pieces

try:
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect
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
    max_beam_width: int = 256  # the widest beam a request may ask for (a wide beam costs CPU time)

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
        checks.append(("max_beam_width", is_finite_number(self.max_beam_width)
                       and float(self.max_beam_width).is_integer() and 1 <= self.max_beam_width <= MAX_BEAM_WIDTH,
                       f"an integer from 1 to {MAX_BEAM_WIDTH}"))
        for name, ok, allowed in checks:
            if not ok:
                raise InvalidOptionError(f"server setting {name} must be {allowed}, got {getattr(self, name)!r}")

#: Decoding options a request may set (JSON fields or query parameters), as for Transcriber.transcribe; the
#: server's own decoding (ServerSettings.decoder and the model's language model) is the default.
#: The language model itself ("lm", a path on the server) is the server's to choose and is refused.
DECODING_OPTIONS = {"decoder": str, "beam_width": int, "alpha": float, "beta": float, "hotwords": list,
                    "hotword_weight": float}
MAX_REQUEST_HOTWORDS = 1000

#: Query parameters of the live endpoint (WS /stream): the decoding options, the input's rate and sample
#: type, the windows (their length is the latency) and the pause that ends an utterance.
STREAM_PARAMETERS = {**DECODING_OPTIONS, "sample_rate": int, "sample_type": str, "chunk_length": float,
                     "chunk_context": float, "endpoint_silence": float}

#: The JSON body's fields; others are refused rather than ignored. "phrases" (optional) asks which of the
#: listed phrases the audio says (Transcriber.match_phrases) instead of a transcript; "min_margin" (optional,
#: with "phrases" only) rejects a best phrase whose margin is below it.
JSON_FIELDS = frozenset({"speech_array", "sampling_rate", "phrases", "min_margin", *DECODING_OPTIONS})


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


_KEY_REFUSED = "missing or wrong X-API-Key header"


def _failure(exc: HTTPError | W2V2OnnxError) -> tuple[int, str]:
    """The status and message of a failed request (call it in the except block): an HTTPError's own, 500 for a
    runtime fault (logged, its details kept off the wire), 400 for the library's other errors (audio, sample
    rate and option errors are the client's to fix)."""
    if isinstance(exc, HTTPError):
        return exc.status, exc.message
    if isinstance(exc, InferenceError):
        logger.exception("inference failed")
        return 500, "inference failed on the server"
    return 400, str(exc)


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


@dataclass(frozen=True)
class _JsonRequest:
    """A JSON body's parts: the samples and their rate, the phrase question and the decoding options."""

    samples: np.ndarray
    sampling_rate: Any
    phrases: Any
    min_margin: Any
    options: dict[str, Any]


def _parse_json(body: bytes) -> _JsonRequest:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HTTPError(400, "JSON body must be an object with 'speech_array' and 'sampling_rate'")
    if "lm" in payload:
        raise HTTPError(400, _LM_REFUSED)
    unknown = sorted(set(payload) - JSON_FIELDS)
    if unknown:
        raise HTTPError(400, f"JSON body has unknown fields {unknown}; the fields are 'speech_array', "
                             f"'sampling_rate', optionally 'phrases' and 'min_margin', and the decoding options "
                             f"{sorted(DECODING_OPTIONS)}")
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
    return _JsonRequest(np.asarray(samples, dtype=np.float32), rate, payload.get("phrases"),
                        payload.get("min_margin"), {k: payload[k] for k in DECODING_OPTIONS if k in payload})


_LM_REFUSED = ("'lm' is not a request option: the server's language model is chosen when it starts "
               "(w2v2-onnx serve --model DIR with a language model, or --decoder)")


def _query_options(query: Any, allowed: dict[str, type] = DECODING_OPTIONS) -> dict[str, Any]:
    """Options from query parameters (``?decoder=greedy``, ``?hotwords=anna&hotwords=bob``), typed."""
    options: dict[str, Any] = {}
    for key in dict.fromkeys(query.keys()):
        if key == "lm":
            raise HTTPError(400, _LM_REFUSED)
        if key not in allowed:
            raise HTTPError(400, f"unknown query parameter {key!r}; the query parameters are {sorted(allowed)}")
        values = query.getlist(key)
        if key == "hotwords":
            options[key] = values
            continue
        if len(values) > 1:
            raise HTTPError(400, f"query parameter {key!r} is given {len(values)} times; give it once")
        kind = allowed[key]
        try:
            options[key] = kind(values[0])
        except ValueError:
            raise HTTPError(400, f"query parameter {key!r} must be {'an integer' if kind is int else 'a number'}, "
                                 f"got {values[0]!r}") from None
    return options


def _merged_options(query: dict[str, Any], body: dict[str, Any], settings: ServerSettings) -> dict[str, Any]:
    """One request's decoding options: query and JSON together (each option once), the server's decoder as
    the default, and the server's limits on beam width and hotwords."""
    both = sorted(set(query) & set(body))
    if both:
        raise HTTPError(400, f"options {both} are given both as query parameters and in the JSON body; give each once")
    options = {**query, **body}
    width = options.get("beam_width")
    if is_finite_number(width) and width > settings.max_beam_width:
        raise HTTPError(400, f"beam_width {width} exceeds this server's limit of {settings.max_beam_width}")
    hotwords = options.get("hotwords")
    if isinstance(hotwords, list) and len(hotwords) > MAX_REQUEST_HOTWORDS:
        raise HTTPError(400, f"{len(hotwords)} hotwords exceed the limit of {MAX_REQUEST_HOTWORDS} per request")
    if settings.decoder is not None:
        options.setdefault("decoder", settings.decoder)
    return options


def _words_of(words: Any) -> list[dict[str, Any]]:
    return [{"start": w.start, "end": w.end, "word": w.word, "probability": w.probability} for w in words]


async def _send_utterances(websocket: WebSocket, stream: TranscriptionStream) -> None:
    for utterance in stream.take_utterances():
        await websocket.send_json({"utterance": True, **finite_or_none(utterance.to_dict())})


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

    def decode(content_type: str, body: bytes,
               query_options: dict[str, Any]) -> tuple[np.ndarray, _PhraseQuery | None, dict[str, Any]]:
        """The request's audio, its phrase question (or None) and its decoding options, all checked."""
        phrases, body_options = None, {}
        if content_type in JSON_TYPES:
            parsed = _parse_json(body)
            body_options = parsed.options
            if parsed.phrases is not None:
                phrases = _PhraseQuery(spell_phrases(parsed.phrases, transcriber.config.vocabulary),
                                       checked_min_margin(parsed.min_margin))
            audio = load_audio(parsed.samples, rate, parsed.sampling_rate)
        else:
            audio = load_audio(body, rate)
        if phrases is not None and (query_options or body_options):
            raise HTTPError(400, f"decoding options {sorted({*query_options, *body_options})} do not apply to "
                                 f"'phrases' (phrase matching decodes nothing); drop them")
        options = _merged_options(query_options, body_options, settings)
        if phrases is None:
            transcriber.check_options(**options)  # before the model runs, not after
        if audio.size > settings.max_audio_seconds * rate:
            raise HTTPError(413, f"audio of {audio.size / rate:.1f} s exceeds the limit of "
                                 f"{settings.max_audio_seconds:g} s per request")
        return audio, phrases, options

    async def recognize(audio: np.ndarray, phrases: _PhraseQuery | None, options: dict[str, Any]) -> dict[str, Any]:
        if phrases is not None:
            frames = await batcher.submit(audio)
            match = await asyncio.to_thread(match_frames, frames, phrases.phrases, transcriber.config.vocabulary,
                                            audio.size / rate, phrases.min_margin)
            return finite_or_none(match.to_dict())
        # the pieces transcribe() would hear with the model's own trim_silence / split_at_pauses
        spans = speech_pieces(audio, rate, transcriber.config.trim_silence, transcriber.config.split_at_pauses)
        pieces = await asyncio.gather(*(batcher.submit(audio[start:end]) for start, end in spans))
        texts, words = [], []
        for (start, _), frames in zip(spans, pieces, strict=True):
            decoded = await asyncio.to_thread(transcriber.decode, frames, **options)
            texts += [decoded.text] if decoded.text else []
            words += shifted_words(decoded.words, start / rate)
        return {"text": " ".join(texts), "words": _words_of(words), "duration": round(audio.size / rate, 6)}

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "sample_rate": rate, "precision": transcriber.precision,
                             "device": transcriber.device, "decoder": decoder_name,
                             "request_options": sorted(DECODING_OPTIONS), "max_beam_width": settings.max_beam_width})

    def has_key(headers: Any) -> bool:
        """Whether a request may pass: no key is set, or its X-API-Key header holds it."""
        return settings.api_key is None or hmac.compare_digest(headers.get("x-api-key", "").encode(),
                                                               settings.api_key.encode())

    async def invocations(request: Request) -> JSONResponse:
        if not has_key(request.headers):
            return _error(401, _KEY_REFUSED)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES | AUDIO_TYPES:
            return _error(415, f"unsupported content type {content_type or '(none)'!r}; use application/json or "
                               f"one of {sorted(AUDIO_TYPES)}")
        try:
            query_options = _query_options(request.query_params)
            body = await _read_body(request, settings.max_body_bytes)
            audio, phrases, options = await asyncio.to_thread(decode, content_type, body, query_options)
            result = await asyncio.wait_for(recognize(audio, phrases, options), settings.timeout_s)
        except ClientDisconnect:
            return _error(400, "client disconnected before sending the whole body")
        except QueueFullError as exc:
            return _error(503, str(exc))
        except TimeoutError:
            return _error(504, f"transcription did not finish within {settings.timeout_s:g} s")
        except (HTTPError, W2V2OnnxError) as exc:
            return _error(*_failure(exc))
        return JSONResponse(result)

    async def live(websocket: WebSocket) -> None:
        """WS /stream: binary messages of raw mono PCM in, ``{"text": ...}`` (the text so far) out whenever it
        changes; the text message ``end`` asks for the final ``{"final": true, "text", "words", "duration"}``.
        With ``endpoint_silence``, each utterance a pause ends comes once as ``{"utterance": true, "start",
        "end", "text", "words"}`` (the last one before the final message), and the text so far restarts.
        Errors are sent as ``{"error", "status"}`` before the server closes the connection."""
        await websocket.accept()
        try:
            if not has_key(websocket.headers):
                raise HTTPError(401, _KEY_REFUSED)
            params = _query_options(websocket.query_params, STREAM_PARAMETERS)
            sample_type = params.pop("sample_type", "s16le")
            if sample_type not in PCM_TYPES:
                raise HTTPError(400, f"sample_type must be one of {sorted(PCM_TYPES)}, got {sample_type!r}")
            stream_rate = params.pop("sample_rate", rate)
            windows = {k: params.pop(k) for k in ("chunk_length", "chunk_context", "endpoint_silence")
                       if k in params}
            options = _merged_options(params, {}, settings)
            stream = await asyncio.to_thread(transcriber.stream, sample_rate=stream_rate, **windows, **options)
            pending, shown = b"", ""
            while True:
                try:
                    message = await asyncio.wait_for(websocket.receive(), settings.timeout_s)
                except TimeoutError:
                    raise HTTPError(408, f"no message for {settings.timeout_s:g} s; send audio or 'end'") from None
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    if message["text"].strip() != "end":
                        raise HTTPError(400, "text messages other than 'end' are not understood; send audio as "
                                             "binary messages")
                    result = await asyncio.to_thread(stream.finish)
                    await _send_utterances(websocket, stream)
                    await websocket.send_json({"final": True, "text": result.text, "words": _words_of(result.words),
                                               "duration": result.duration})
                    await websocket.close()
                    return
                data = message.get("bytes") or b""
                if len(data) > settings.max_body_bytes:
                    raise HTTPError(413, f"message exceeds the limit of {settings.max_body_bytes} bytes")
                samples, pending = split_pcm(pending + data, sample_type)
                if stream.duration + samples.size / stream_rate > settings.max_audio_seconds:
                    raise HTTPError(413, f"the stream exceeds the limit of {settings.max_audio_seconds:g} s of audio")
                text = await asyncio.to_thread(stream.feed, samples)
                await _send_utterances(websocket, stream)
                if text != shown:
                    await websocket.send_json({"text": text})
                    shown = text
        except WebSocketDisconnect:
            return
        except (HTTPError, W2V2OnnxError) as exc:
            status, message_text = _failure(exc)
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client may be gone already
                await websocket.send_json({"error": message_text, "status": status})
                await websocket.close(code=1011 if status == 500 else 1008)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        batcher.start()
        yield
        await batcher.stop()

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        detail = {404: f"no route {request.url.path}; the routes are GET /ping, POST /invocations and WS /stream",
                  405: f"method {request.method} not allowed on {request.url.path}"}.get(status, str(exc))
        return _error(status, detail)

    app = Starlette(routes=[Route("/ping", ping, methods=["GET"]),
                            Route("/invocations", invocations, methods=["POST"]),
                            WebSocketRoute("/stream", live)], lifespan=lifespan,
                    exception_handlers={404: http_error, 405: http_error})
    app.state.batcher = batcher
    app.state.settings = settings
    return app
