"""Live mode: one `MoodPipeline.stream` per listener, steered by the pad, paced to real time, recorded; `wire_live`
puts it on the page (Play live, which becomes Stop, and the pad's moves).

The page plays it through Web Audio fed over a WebSocket (`SOCKET_PATH`, static/live.js; `moodgen.live` paces it):
each chunk is scheduled right after the last the moment it arrives, and the pad's moves and the player's position
go back over the same socket, so a move is heard `LEAD_SECONDS` to `LEAD_SECONDS + CHUNK_SECONDS` later
(benchmarks/speed/live_latency.py). API clients get Gradio's streamed audio (`play`: seconds behind, as its player
buffers before it plays). It ends when stopped, when its reader goes away or
stops reading, when the dot has not moved for `idle_seconds`, and after `max_seconds` (moodgen_app.guard).
Stopping keeps what was played as a clip (WAV, JSON, MIDI) through the app's result store; only a few stopped
recordings' outputs are remembered per process.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from moodgen.audio import to_pcm16
from moodgen.generation import Generation
from moodgen.live import CHUNK_SECONDS, LEAD_SECONDS, Steering, play_live
from moodgen.mood import validate_mood
from moodgen.pipeline import MoodPipeline
from moodgen.settings import Settings
from moodgen.stream import Chunk, MoodStream
from moodgen_app.guard import LIVE_IDLE_SECONDS, LIVE_MAX_SECONDS
from moodgen_app.page import static_text
from moodgen_app.results import Result, read_settings
from moodgen_app.wiring import Wiring, checked

API_CHUNK_SECONDS = 1.0  # Gradio's streamed player (the API's /live): its chunks, and how far ahead it is fed
API_LEAD_SECONDS = 1.0
SOCKET_PATH = "/moodgen/live"
LIVE_ID_LENGTH = 64  # a page's live id (static/live.js: a random UUID)
KEPT = 16  # stopped recordings whose outputs wait for their Stop


@dataclass
class Live:
    """One session's stream: the mood to play next, and how it ends."""

    mood: tuple[float, float]
    steered: float = field(default_factory=time.monotonic)  # when the dot last moved
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Result | None = None  # the recording as the app shows a result, once the stream has ended
    steering: Steering | None = None  # a page's stream (`start`): its mood and stop live there


class LiveSessions:
    """The live streams of a process by session id. `record(key, generation)` turns a recording into the app's
    outputs (files written once); `max_seconds` ends a stream nobody stops, `idle_seconds` one nobody steers, and
    `reading(session)` turning false one nobody reads."""

    def __init__(self, pipeline: MoodPipeline, record: Callable[[str, Generation], Result], max_seconds: float,
                 reading: Callable[[str], bool] = lambda session: True, idle_seconds: float = LIVE_IDLE_SECONDS):
        self.pipeline, self.record, self.max_seconds = pipeline, record, max_seconds
        self.reading, self.idle_seconds = reading, idle_seconds
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()
        self._count = itertools.count()

    def steer(self, session: str, valence: Any, arousal: Any) -> None:
        """The mood the session's stream plays next (no stream: nothing to do)."""
        mood = validate_mood(valence, arousal)
        with self._lock:
            live = self._live.get(session)
        if live is not None:
            live.mood, live.steered = mood, time.monotonic()
            if live.steering is not None:
                live.steering.steer(*mood)

    def play(self, session: str, mood: tuple[float, float], settings: Settings) -> Iterator[tuple[int, np.ndarray]]:
        """(sample rate, int16 audio) chunks for the session, until it is stopped, disconnects or reaches
        max_seconds; a stream already playing for the session stops first. The stream starts here, before the
        first chunk is asked for: what the pipeline refuses (ValueError naming the field) raises now, with nothing
        registered."""
        live = Live(validate_mood(*mood))
        stream = self.pipeline.stream(lambda: live.mood, API_CHUNK_SECONDS, settings)
        self._register(session, live)
        return self._chunks(session, live, stream)

    def start(self, session: str, mood: tuple[float, float], settings: Settings, outputs: list) -> Live:
        """A page's stream: played by `moodgen.live.play_live` to `outputs` on a thread of its own, until stopped
        or max_seconds; as `play`, it starts (or raises) before anything is registered."""
        live = Live(validate_mood(*mood))
        live.steering = Steering(live.mood)
        live.steering.stopped = live.stop  # one stop for both
        stream = self.pipeline.stream(lambda: live.steering.mood, CHUNK_SECONDS, settings)
        self._register(session, live)

        def run() -> None:
            try:
                played = play_live(stream, live.steering, outputs, LEAD_SECONDS, self.max_seconds)
                key = f"live-{next(self._count)}-{session[:16]}"
                live.outputs = None if played.generation is None else self.record(key, played.generation)
            finally:
                live.done.set()

        threading.Thread(target=run, name="moodgen-live", daemon=True).start()
        return live

    def _register(self, session: str, live: Live) -> None:
        with self._lock:
            old = self._live.pop(session, None)
            self._live[session] = live
            # only ended streams are forgotten: a playing one stays reachable by its Stop and the pad
            ended = [k for k, v in self._live.items() if v.done.is_set()]
            for k in ended[:max(0, len(self._live) - KEPT)]:
                del self._live[k]
        if old is not None:
            old.stop.set()

    def _chunks(self, session: str, live: Live, stream: MoodStream) -> Iterator[tuple[int, np.ndarray]]:
        sr, start = self.pipeline.mel_params.sample_rate, time.monotonic()
        try:
            for chunk in stream:
                yield sr, to_pcm16(chunk.audio)
                made = chunk.start_seconds + len(chunk.audio) / sr
                ahead = made - (time.monotonic() - start)
                if (live.stop.wait(max(0.0, ahead - API_LEAD_SECONDS)) or made >= self.max_seconds
                        or time.monotonic() - live.steered > self.idle_seconds or not self.reading(session)):
                    break
        finally:
            try:
                recording = stream.close()
                key = f"live-{next(self._count)}-{session[:16]}"
                live.outputs = self.record(key, recording) if recording is not None else None
            finally:
                live.done.set()

    def stop(self, session: str, timeout: float = 60.0) -> Result | None:
        """Stop the session's stream; the outputs of what was played (None if nothing was)."""
        with self._lock:
            live = self._live.get(session)
        if live is None:
            return None
        live.stop.set()
        live.done.wait(timeout)
        with self._lock:
            if self._live.get(session) is live:
                del self._live[session]
        return live.outputs



def chunk_message(chunk: Chunk, sample_rate: int) -> bytes:
    """One chunk for static/live.js: float32 [start seconds, valence, arousal, sample rate], then int16 audio."""
    head = np.array([chunk.start_seconds, chunk.valence, chunk.arousal, sample_rate], np.float32)
    return head.tobytes() + to_pcm16(chunk.audio).astype("<i2").tobytes()


class SocketOutput:
    """An Output (moodgen.live) that sends each chunk over a page's WebSocket as soon as it is made (from the
    stream's thread), then {"done": true}."""

    def __init__(self, socket: WebSocket, loop: asyncio.AbstractEventLoop, sample_rate: int):
        self.socket, self.loop, self.sample_rate = socket, loop, sample_rate

    def play(self, chunk: Chunk, at: float) -> None:
        asyncio.run_coroutine_threadsafe(self.socket.send_bytes(chunk_message(chunk, self.sample_rate)), self.loop)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.socket.send_text('{"done": true}'), self.loop)


def socket_route(sessions: LiveSessions) -> WebSocketRoute:
    """The page's live stream: the first message {id, valence, arousal, settings: [seed, randomize, engine, steps,
    guidance, key, instrument, soundfont, bpm]} starts it; then {valence, arousal} steers it, {heard: seconds}
    says where the page's player is (the stream keeps LEAD_SECONDS ahead of that), and {stop: true} (or closing
    the socket) ends it. A bad message is answered {error: "..."} naming the field."""
    pipeline = sessions.pipeline

    async def serve(socket: WebSocket) -> None:
        await socket.accept()
        live = None
        try:
            first = await socket.receive_json()
            try:
                listener = first.get("id") if isinstance(first, dict) else None
                if not isinstance(listener, str) or not 0 < len(listener) <= LIVE_ID_LENGTH:
                    raise ValueError("live: id must be a short string (the page's live id)")
                mood = validate_mood(first.get("valence"), first.get("arousal"))
                seed, randomize, engine, steps, guidance, key, instrument, soundfont, bpm = (
                    [*(first.get("settings") or []), *[None] * 9][:9])
                settings = read_settings(pipeline, randomize, seed=seed, engine=engine, steps=steps,
                                         guidance=guidance, key=key, instrument=instrument, soundfont=soundfont,
                                         bpm=bpm)
                output = SocketOutput(socket, asyncio.get_running_loop(), pipeline.mel_params.sample_rate)
                live = await asyncio.to_thread(sessions.start, listener, mood, settings, [output])
            except (ValueError, TypeError) as exc:
                await socket.send_json({"error": str(exc)})
                return
            while not live.stop.is_set():
                message = await socket.receive_json()
                if not isinstance(message, dict) or message.get("stop"):
                    break
                if isinstance(message.get("heard"), int | float):
                    live.steering.sync(float(message["heard"]))
                    continue
                try:
                    live.steering.steer(message.get("valence"), message.get("arousal"))
                except ValueError as exc:
                    await socket.send_json({"error": str(exc)})
        except (WebSocketDisconnect, ValueError, KeyError):  # gone, or not JSON
            pass
        finally:
            if live is not None:
                live.stop.set()

    return WebSocketRoute(SOCKET_PATH, serve)


def wire_live(w: Wiring) -> list[WebSocketRoute]:
    """Play live streams what the pad says over the page's socket (the button becomes Stop); Stop keeps what was
    played as a result. The API's /live, /live_mood and /live_stop do the same through Gradio's streamed audio.
    Returns the routes the server must serve (`server.launch_options`)."""
    page, pipeline = w.page, w.pipeline
    live = LiveSessions(pipeline, w.results.recorded, LIVE_MAX_SECONDS, reading=w.admission.reading)

    def play_live(valence, arousal, seed, randomize, engine, steps, guidance, key, instrument=None, soundfont=None,
                  bpm=None, stems=False, request: gr.Request = None):
        mood = checked(validate_mood, valence, arousal)
        # a live stream plays on the tempo; its parts are not rendered apart, so the stems box does not apply
        settings = checked(read_settings, pipeline, randomize, seed=seed, engine=engine, steps=steps,
                           guidance=guidance, key=key, instrument=instrument, soundfont=soundfont, bpm=bpm)
        yield from checked(live.play, request.session_hash, mood, settings)

    def steer_live(valence, arousal, request: gr.Request):
        checked(live.steer, request.session_hash, valence, arousal)

    def stop_live(live_id: str | None = None, request: gr.Request = None):
        outputs = live.stop(live_id or request.session_hash)
        if outputs is None:
            raise gr.Error("live: nothing is playing; press Play live first", print_exception=False)
        return outputs

    mood, settings = [page.valence, page.arousal], page.settings(nearest=False)
    # the page: live.js starts or stops the socket's stream; a stop clicks the (unseen) Stop button
    page.live_play.click(None, [*mood, *settings], None, js=static_text("live_toggle.js"), show_progress="hidden",
                         queue=False)
    page.live_api.click(play_live, [*mood, *settings], page.live_audio, concurrency_id="live",
                        concurrency_limit=w.concurrency_limit, preprocess=False, show_progress="hidden",
                        api_name="live", validator=w.admission.validator(2 + len(settings)))
    gr.on([page.valence.change, page.arousal.change], steer_live, mood, None, preprocess=False, queue=False,
          show_progress="hidden", api_name="live_mood")
    w.show_result(page.live_stop.click(stop_live, page.live_id, list(page.result), preprocess=False,
                                       js="(id) => [window.moodgenLive ? window.moodgenLive.stop() : id]",
                                       show_progress_on=page.result.summary, api_name="live_stop").success)
    return [socket_route(live)]
