"""The HTTP endpoint exercised for real (in-process ASGI client), every error path, and the micro-batcher."""

import asyncio
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
import tone_model as tm

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from w2v2_onnx.batcher import MicroBatcher, QueueFullError  # noqa: E402
from w2v2_onnx.server import ServerSettings, create_app  # noqa: E402


def wav_bytes(text, rate=tm.RATE, fmt="WAV"):
    buffer = io.BytesIO()
    sf.write(buffer, tm.synthesize(text, rate), rate, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def client(tone_transcriber):
    with TestClient(create_app(tone_transcriber, ServerSettings(max_body_bytes=2_000_000,
                                                                max_audio_seconds=30))) as c:
        yield c


def test_ping(client):
    response = client.get("/ping")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_seed_json_format(client):
    audio = tm.synthesize("HELLO SERVER", 8000)
    response = client.post("/invocations", json={"speech_array": audio.tolist(), "sampling_rate": 8000})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "HELLO SERVER"
    assert [w["word"] for w in body["words"]] == ["HELLO", "SERVER"]
    assert set(body["words"][0]) == {"start", "end", "word", "probability"}
    assert body["duration"] == pytest.approx(audio.size / 8000)


@pytest.mark.parametrize("content_type,fmt", [("audio/wav", "WAV"), ("audio/flac", "FLAC"), ("audio/ogg", "OGG")])
def test_raw_audio_bytes(client, content_type, fmt):
    response = client.post("/invocations", content=wav_bytes("RAW BYTES", 16000, fmt),
                           headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "RAW BYTES"


@pytest.mark.parametrize("body,content_type,status,match", [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"[1, 2, 3]", "application/json", 400, "object"),
    (json.dumps({"speech_array": [0.1]}).encode(), "application/json", 400, "sampling_rate"),
    (json.dumps({"speech_array": "abc", "sampling_rate": 16000}).encode(), "application/json", 400, "list"),
    (json.dumps({"speech_array": [[0.1, 0.2]], "sampling_rate": 16000}).encode(), "application/json", 400, "list"),
    (json.dumps({"speech_array": [True], "sampling_rate": 16000}).encode(), "application/json", 400, "list"),
    (b'{"speech_array": [0.1, NaN], "sampling_rate": 16000}', "application/json", 400, "NaN"),
    (json.dumps({"speech_array": [0.1], "sampling_rate": 0}).encode(), "application/json", 400, "sample_rate"),
    (json.dumps({"speech_array": [0.1], "sampling_rate": "fast"}).encode(), "application/json", 400, "sample_rate"),
    (b"", "application/json", 400, "empty"),
    (b"hello", "text/plain", 415, "unsupported content type"),
    (b"RIFF" + bytes(60), "audio/wav", 400, "cannot decode"),
    (b"\x00" * 3_000_000, "audio/wav", 413, "exceeds the limit"),
])
def test_bad_requests_get_4xx_json(client, body, content_type, status, match):
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert match in response.json()["error"]


def test_truncated_audio_and_too_long_audio(client):
    data = wav_bytes("TRUNCATED")
    response = client.post("/invocations", content=data[: len(data) // 2], headers={"content-type": "audio/wav"})
    assert response.status_code == 400 and "truncated" in response.json()["error"]
    long = {"speech_array": [0.0] * (16000 * 31), "sampling_rate": 16000}
    response = client.post("/invocations", json=long)
    assert response.status_code == 413 and "30 s" in response.json()["error"]


def test_empty_audio_gives_empty_text(client):
    response = client.post("/invocations", json={"speech_array": [], "sampling_rate": 16000})
    assert response.status_code == 200 and response.json()["text"] == ""


def test_api_key(tone_transcriber):
    app = create_app(tone_transcriber, ServerSettings(api_key="s3cret"))
    payload = {"speech_array": tm.synthesize("OK").tolist(), "sampling_rate": 16000}
    with TestClient(app) as c:
        assert c.post("/invocations", json=payload).status_code == 401
        assert c.post("/invocations", json=payload, headers={"x-api-key": "wrong"}).status_code == 401
        ok = c.post("/invocations", json=payload, headers={"x-api-key": "s3cret"})
        assert ok.status_code == 200 and ok.json()["text"] == "OK"


def test_concurrent_requests_share_batches_and_get_their_own_results(tone_transcriber):
    app = create_app(tone_transcriber, ServerSettings(max_batch=8, max_wait_ms=50))
    texts = [f"REQUEST {word}" for word in ("ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT")]
    with TestClient(app) as c:
        def post(text):
            payload = {"speech_array": tm.synthesize(text).tolist(), "sampling_rate": 16000}
            return c.post("/invocations", json=payload).json()["text"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, texts))
        batcher = app.state.batcher
        assert answers == texts
        assert batcher.items_run == len(texts) and batcher.batches_run < len(texts)


def test_micro_batcher_queue_full_and_errors():
    async def scenario():
        def slow(batch):
            time.sleep(0.2)
            return [float(a.sum()) for a in batch]

        batcher = MicroBatcher(slow, max_batch=2, max_wait_ms=1, queue_size=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.ones(3)))
        await asyncio.sleep(0.05)  # the worker is now busy with the first request
        second = asyncio.ensure_future(batcher.submit(np.ones(5)))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await batcher.submit(np.ones(7))
        assert (await first, await second) == (3.0, 5.0)
        await batcher.stop()

        def broken(batch):
            raise ValueError("model exploded")

        failing = MicroBatcher(broken)
        failing.start()
        with pytest.raises(ValueError, match="exploded"):
            await failing.submit(np.ones(2))
        assert await asyncio.wait_for(asyncio.shield(asyncio.sleep(0, "alive")), 1) == "alive"
        await failing.stop()

    asyncio.run(scenario())


def test_queue_full_and_timeout_over_http(tone_transcriber):
    app = create_app(tone_transcriber, ServerSettings(queue_size=1, max_batch=1, timeout_s=0.3))
    original = app.state.batcher.run_batch

    def slow(batch):
        time.sleep(0.5)
        return original(batch)

    app.state.batcher.run_batch = slow
    payload = {"speech_array": tm.synthesize("SLOW").tolist(), "sampling_rate": 16000}
    with TestClient(app) as c, ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda _: c.post("/invocations", json=payload).status_code, range(4)))
    assert 503 in statuses and 504 in statuses
    assert all(s in (200, 503, 504) for s in statuses)


def test_serve_command_with_bad_model_exits_2(tmp_path, capsys):
    from w2v2_onnx.cli import main

    assert main(["serve", "--model", str(tmp_path / "absent"), "--port", "0"]) == 2
    assert "model not found" in capsys.readouterr().err


@pytest.mark.parametrize("settings, name", [
    ({"max_wait_ms": float("inf")}, "max_wait_ms"), ({"max_wait_ms": -5}, "max_wait_ms"),
    ({"max_batch": 0}, "max_batch"), ({"queue_size": 0}, "queue_size"), ({"timeout_s": float("nan")}, "timeout_s"),
    ({"timeout_s": 0}, "timeout_s"), ({"max_body_bytes": -1}, "max_body_bytes"),
    ({"max_audio_seconds": float("nan")}, "max_audio_seconds"), ({"max_audio_seconds": -1}, "max_audio_seconds"),
])
def test_settings_that_would_hang_or_refuse_everything_are_refused(settings, name):
    from w2v2_onnx.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match=f"server setting {name} must be"):
        ServerSettings(**settings)


def test_unknown_query_parameters_fields_and_routes_get_json_errors(client):
    response = client.post("/invocations?speed=fast", json={"speech_array": [0.0] * 1600, "sampling_rate": 16000})
    assert response.status_code == 400 and "unknown query parameter 'speed'" in response.json()["error"]
    assert "'hotwords'" in response.json()["error"]  # names the parameters there are
    response = client.post("/invocations", json={"speech_array": [0.0] * 1600, "sampling_rate": 16000,
                                                 "speed": "fast"})
    assert response.status_code == 400 and "unknown fields ['speed']" in response.json()["error"]
    response = client.get("/nowhere")
    assert response.status_code == 404 and "GET /ping, POST /invocations and WS /stream" in response.json()["error"]
    response = client.get("/invocations")
    assert response.status_code == 405 and response.json()["status"] == 405


def test_decoder_setting_beam_search_with_the_models_language_model(tone_model_dir, tmp_path):
    import shutil

    from w2v2_onnx import Transcriber

    model = tm.copy_with_language_model(shutil.copytree(tone_model_dir, tmp_path / "model"), tmp_path)
    transcriber = Transcriber(model, device="cpu", threads=1)
    payload = {"speech_array": tm.synthesize("HELLO WORLD").tolist(), "sampling_rate": 16000}
    for setting, used in ((None, "beam"), ("greedy", "greedy"), ("beam", "beam")):
        app = create_app(transcriber, ServerSettings(decoder=setting, max_batch=4, max_wait_ms=20))
        with TestClient(app) as c, ThreadPoolExecutor(4) as pool:
            assert c.get("/ping").json()["decoder"] == used
            bodies = list(pool.map(lambda _: c.post("/invocations", json=payload).json(), range(4)))
        expected = transcriber.transcribe(tm.synthesize("HELLO WORLD"), decoder=setting)
        assert all(b["text"] == expected.text == "HELLO WORLD" for b in bodies)
        assert [w["end"] for w in bodies[0]["words"]] == [w.end for w in expected.words]
    assert create_app(Transcriber(tone_model_dir, device="cpu", threads=1)).state.settings.decoder is None


def test_unknown_decoder_setting_is_refused():
    from w2v2_onnx.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="server setting decoder must be None, 'greedy' or 'beam'"):
        ServerSettings(decoder="fast")


def test_json_phrases_ask_which_phrase_the_audio_says(client):
    phrases = ["TURN ON", "TURN OFF", "STOP"]
    response = client.post("/invocations", json={"speech_array": tm.synthesize("TURN OFF").tolist(),
                                                 "sampling_rate": 16000, "phrases": phrases})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["phrase"] == "TURN OFF" and body["probability"] > 0.99 and body["margin"] > -1
    assert list(body["scores"]) == phrases and "text" not in body
    # too short for any phrase: no answer, and -inf scores are sent as null (valid JSON)
    short = client.post("/invocations", json={"speech_array": [0.0] * 800, "sampling_rate": 16000,
                                              "phrases": ["SEVENTEEN"]})
    assert short.status_code == 200 and short.json()["phrase"] is None and short.json()["scores"] == {"SEVENTEEN": None}
    for bad, match in [("STOP", "must be a list of strings"), ([], "phrases is empty"), (["ÉTÉ"], "cannot write"),
                       (["STOP", 3], "must be strings")]:
        response = client.post("/invocations", json={"speech_array": [0.0] * 1600, "sampling_rate": 16000,
                                                     "phrases": bad})
        assert response.status_code == 400 and match in response.json()["error"], bad


def test_json_min_margin_rejects_a_phrase_the_audio_does_not_say(client):
    audio = tm.synthesize("TWELVE").tolist()
    body = {"speech_array": audio, "sampling_rate": 16000, "phrases": ["SEVEN", "ELEVEN"]}
    plain = client.post("/invocations", json=body).json()
    assert plain["phrase"] in ("SEVEN", "ELEVEN") and plain["rejected"] is False
    rejected = client.post("/invocations", json={**body, "min_margin": -5}).json()
    assert rejected["phrase"] is None and rejected["rejected"] is True and rejected["margin"] == plain["margin"]
    for bad_body, message in [({**body, "min_margin": "low"}, "min_margin must be None or a finite number"),
                              ({"speech_array": audio, "sampling_rate": 16000, "min_margin": -5},
                               "'min_margin' applies only with 'phrases'")]:
        response = client.post("/invocations", json=bad_body)
        assert response.status_code == 400 and message in response.json()["error"], bad_body


@pytest.fixture
def lm_server(tone_model_dir, tmp_path, monkeypatch):
    """A server over the tone model with a language model (beam by default), recording each decode call."""
    import shutil

    from w2v2_onnx import Transcriber

    model = tm.copy_with_language_model(shutil.copytree(tone_model_dir, tmp_path / "model"), tmp_path)
    transcriber = Transcriber(model, device="cpu", threads=1)
    calls = []
    decode = transcriber.decode

    def recording_decode(frames, **options):
        calls.append(options)
        return decode(frames, **options)

    monkeypatch.setattr(transcriber, "decode", recording_decode)
    with TestClient(create_app(transcriber, ServerSettings(max_beam_width=64))) as c:
        yield c, transcriber, calls


def test_requests_choose_their_own_decoding(lm_server):
    client, transcriber, calls = lm_server
    audio = tm.synthesize("HELLO WORLD")
    ping = client.get("/ping").json()
    assert ping["decoder"] == "beam" and ping["max_beam_width"] == 64 and "hotwords" in ping["request_options"]
    requests = [  # (query string, extra JSON fields, the options Transcriber.decode must get)
        ("", {}, {}),
        ("?decoder=greedy", {}, {"decoder": "greedy"}),
        ("", {"decoder": "greedy"}, {"decoder": "greedy"}),
        ("?hotwords=HELLO&hotwords=WORLD&hotword_weight=3.5&beam_width=8", {},
         {"hotwords": ["HELLO", "WORLD"], "hotword_weight": 3.5, "beam_width": 8}),
        ("?alpha=0.1", {"beta": 2, "hotwords": ["TEST"]}, {"alpha": 0.1, "beta": 2, "hotwords": ["TEST"]}),
    ]
    for query, fields, expected in requests:
        calls.clear()
        response = client.post("/invocations" + query,
                               json={"speech_array": audio.tolist(), "sampling_rate": 16000, **fields})
        assert response.status_code == 200, (query, fields, response.text)
        assert calls == [expected], (query, fields)
        assert response.json()["text"] == transcriber.transcribe(audio, **expected).text == "HELLO WORLD"
    calls.clear()  # raw audio bytes take options as query parameters
    response = client.post("/invocations?decoder=greedy", content=wav_bytes("HELLO WORLD"),
                           headers={"content-type": "audio/wav"})
    assert response.status_code == 200 and calls == [{"decoder": "greedy"}]


@pytest.mark.parametrize(("query", "fields", "message"), [
    ("?beam_width=65", {}, "beam_width 65 exceeds this server's limit of 64"),
    ("?beam_width=wide", {}, "query parameter 'beam_width' must be an integer, got 'wide'"),
    ("?alpha=high", {}, "query parameter 'alpha' must be a number"),
    ("?decoder=beam&decoder=greedy", {}, "query parameter 'decoder' is given 2 times"),
    ("?decoder=greedy", {"decoder": "beam"}, "given both as query parameters and in the JSON body"),
    ("?decoder=greedy&alpha=1", {}, "apply to decoder='beam' only"),
    ("", {"decoder": "fast"}, "decoder must be one of"),
    ("", {"beam_width": 0}, "beam_width must be an integer from 1"),
    ("", {"hotwords": "HELLO"}, "hotwords must be a list of strings"),
    ("", {"hotwords": ["A"] * 1001}, "1001 hotwords exceed the limit of 1000"),
    ("?lm=/etc/passwd", {}, "'lm' is not a request option"),
    ("", {"lm": "/etc/passwd"}, "'lm' is not a request option"),
    ("?decoder=greedy", {"phrases": ["HELLO"]}, "do not apply to 'phrases'"),
])
def test_bad_request_options_are_refused_before_the_model_runs(lm_server, query, fields, message):
    client, _, calls = lm_server
    response = client.post("/invocations" + query,
                           json={"speech_array": [0.0] * 1600, "sampling_rate": 16000, **fields})
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert calls == []


def test_server_decoder_setting_is_the_default_a_request_may_override(tone_model_dir, tmp_path):
    import shutil

    from w2v2_onnx import Transcriber

    model = tm.copy_with_language_model(shutil.copytree(tone_model_dir, tmp_path / "model"), tmp_path)
    app = create_app(Transcriber(model, device="cpu", threads=1), ServerSettings(decoder="greedy"))
    payload = {"speech_array": tm.synthesize("HELLO").tolist(), "sampling_rate": 16000}
    with TestClient(app) as c:
        refused = c.post("/invocations?alpha=1", json=payload)  # the server's greedy default has no alpha
        assert refused.status_code == 400 and "apply to decoder='beam' only" in refused.json()["error"]
        assert c.post("/invocations?decoder=beam&alpha=1", json=payload).json()["text"] == "HELLO"
    from w2v2_onnx.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="server setting max_beam_width must be an integer from 1"):
        ServerSettings(max_beam_width=0)


def _ws_stream(client, audio, query="", blocks=7, headers=None):
    """Send ``audio`` as s16le binary messages over WS /stream, then 'end'; return every message received."""
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    cuts = np.linspace(0, len(pcm), blocks + 1).astype(int) | 1  # odd cuts: samples split across messages
    cuts[0], cuts[-1] = 0, len(pcm)
    received = []
    with client.websocket_connect("/stream" + query, headers=headers or {}) as ws:
        for a, b in zip(cuts, cuts[1:], strict=False):
            ws.send_bytes(pcm[a:b])
        ws.send_text("end")
        while True:
            received.append(ws.receive_json())
            if "final" in received[-1] or "error" in received[-1]:
                break
    return received


def test_websocket_stream_sends_the_text_so_far_then_the_transcription(tone_transcriber):
    text = "HELLO WORLD IT IS A LIVE TEST OF THE STREAM"
    audio = tm.synthesize(text)
    with TestClient(create_app(tone_transcriber)) as c:
        received = _ws_stream(c, audio, "?chunk_length=2&chunk_context=0.5", blocks=9)
    expected = tone_transcriber.transcribe(np.round(audio * 32767).astype(np.int16), chunk_length=2.0,
                                           chunk_context=0.5)
    *partials, final = received
    assert final["final"] is True and final["text"] == expected.text == text
    assert [w["end"] for w in final["words"]] == [w.end for w in expected.words]
    assert final["duration"] == pytest.approx(audio.size / tm.RATE, abs=1e-4)
    assert len(partials) >= 2 and all(text.startswith(p["text"].rsplit(" ", 1)[0]) for p in partials)


def test_websocket_stream_at_8_khz_with_options(tone_transcriber):
    audio = tm.synthesize("HELLO", sample_rate=8000)
    with TestClient(create_app(tone_transcriber)) as c:
        final = _ws_stream(c, audio, "?sample_rate=8000&decoder=beam&hotwords=HELLO")[-1]
    assert final["text"] == "HELLO"


@pytest.mark.parametrize(("query", "status", "message"), [
    ("?chunk_length=1&chunk_context=0.6", 400, "must exceed twice chunk_context"),
    ("?sample_type=u8", 400, "sample_type must be one of"),
    ("?speed=2", 400, "unknown query parameter 'speed'"),
    ("?lm=/etc/passwd", 400, "'lm' is not a request option"),
    ("?sample_rate=0", 400, "sample_rate must be between"),
    ("?decoder=greedy&alpha=1", 400, "apply to decoder='beam' only"),
])
def test_websocket_stream_refuses_bad_parameters(tone_transcriber, query, status, message):
    with TestClient(create_app(tone_transcriber)) as c, c.websocket_connect("/stream" + query) as ws:
        reply = ws.receive_json()
    assert reply["status"] == status and message in reply["error"], reply


def test_websocket_stream_limits_and_key(tone_transcriber):
    audio = tm.synthesize("HELLO")
    app = create_app(tone_transcriber, ServerSettings(max_audio_seconds=0.5, api_key="k"))
    with TestClient(app) as c:
        assert _ws_stream(c, audio)[-1] == {"error": "missing or wrong X-API-Key header", "status": 401}
        reply = _ws_stream(c, audio, headers={"x-api-key": "k"})[-1]
        assert reply["status"] == 413 and "exceeds the limit of 0.5 s" in reply["error"]
        with c.websocket_connect("/stream", headers={"x-api-key": "k"}) as ws:
            ws.send_text("hello")
            reply = ws.receive_json()
        assert reply["status"] == 400 and "other than 'end'" in reply["error"]
        with c.websocket_connect("/stream", headers={"x-api-key": "k"}) as ws:
            ws.send_text("end")  # nothing said
            assert ws.receive_json() == {"final": True, "text": "", "words": [], "duration": 0.0}


def test_websocket_stream_closes_an_idle_connection(tone_transcriber):
    with TestClient(create_app(tone_transcriber, ServerSettings(timeout_s=0.2))) as c, \
            c.websocket_connect("/stream") as ws:
        reply = ws.receive_json()
    assert reply["status"] == 408 and "no message for 0.2 s" in reply["error"]


def test_websocket_stream_sends_each_utterance_a_pause_ends(tone_transcriber):
    sentences = ["HELLO WORLD", "IT IS A TEST", "OF THE STREAM"]
    pause = np.zeros(int(1.5 * tm.RATE), dtype=np.float32)
    audio = np.concatenate([tm.synthesize(sentences[0] + " "), pause, tm.synthesize(sentences[1] + " "), pause,
                            tm.synthesize(sentences[2])])
    with TestClient(create_app(tone_transcriber)) as c:
        received = _ws_stream(c, audio, "?chunk_length=2&chunk_context=0.5&endpoint_silence=1", blocks=9)
        refused = _ws_stream(c, audio, "?endpoint_silence=100")
    utterances = [m for m in received if m.get("utterance")]
    assert [u["text"] for u in utterances] == sentences
    assert utterances[1]["words"][0]["word"] == "IT" and utterances[1]["start"] > utterances[0]["end"] + 1.0
    assert received.index(utterances[1]) < received.index(utterances[2]) < len(received) - 1
    assert received[-1]["final"] is True and received[-1]["text"] == " ".join(sentences)
    assert refused[-1]["status"] == 400 and "endpoint_silence must be a number of seconds" in refused[-1]["error"]


def _padded_hello_server():
    audio = tm.synthesize("HELLO SERVER", lead=2.0)
    return audio, "HELLO SERVER", [tm.char_start_seconds("HELLO SERVER", i, lead=2.0) for i in (0, 6)]


def _hello_pause_world():
    first = tm.synthesize("HELLO", lead=1.0)
    audio = np.concatenate([first, tm.synthesize("WORLD", lead=0.5)])
    return audio, "HELLO WORLD", [tm.char_start_seconds("HELLO", 0, lead=1.0), first.size / tm.RATE + 0.5]


@pytest.mark.parametrize("entry, make_audio", [({"trim_silence": True}, _padded_hello_server),
                                               ({"split_at_pauses": 0.3}, _hello_pause_world)])
def test_model_directory_defaults_for_silence_are_served_as_transcribe_serves_them(tone_model_dir, tmp_path,
                                                                                    entry, make_audio):
    from w2v2_onnx import Transcriber

    transcriber = Transcriber(tm.copy_with_config(tone_model_dir, tmp_path / "model", **entry), device="cpu",
                              threads=1)
    audio, text, starts = make_audio()
    want = transcriber.transcribe(audio)
    with TestClient(create_app(transcriber)) as c:
        response = c.post("/invocations", json={"speech_array": audio.tolist(), "sampling_rate": tm.RATE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == want.text == text
    assert [w["start"] for w in body["words"]] == [w.start for w in want.words] == pytest.approx(starts)
    assert body["duration"] == pytest.approx(audio.size / tm.RATE)
