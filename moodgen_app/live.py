"""Live mode: one `MoodPipeline.stream` per listener, steered by the pad, paced to real time (`moodgen.live`),
recorded; `wire_live` puts it on the page.

The page plays it through Web Audio fed over a WebSocket (`SOCKET_PATH`, static/live.js): each chunk is scheduled
to follow the last the moment it arrives, and the pad's moves go back over the same socket, so a move is heard
`LEAD_SECONDS` to `LEAD_SECONDS + CHUNK_SECONDS` later (benchmarks/live_latency.py measures it; Gradio's streamed
audio player, which buffers seconds before it plays, stays as the API's /live). Stopping keeps what was played
as a clip (WAV, JSON, MIDI) through the app's result store; only a few stopped recordings are remembered.
"""
from __future__ import annotations

import asyncio
import itertools
import queue
import threading
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
from moodgen.live import CHUNK_SECONDS, LEAD_SECONDS, Output, Steering, play_live
from moodgen.mood import validate_mood
from moodgen.pipeline import MoodPipeline
from moodgen.stream import Chunk
from moodgen_app.page import static_text
from moodgen_app.results import Result, read_settings
from moodgen_app.wiring import Wiring, checked

KEPT = 16  # stopped recordings whose outputs wait for their Stop
SOCKET_PATH = "/moodgen/live"
LIVE_ID_LENGTH = 64  # a page's live id (static/live.js: a random UUID)


@dataclass
class Live:
    """One listener's stream: its steering (mood, stop), and its recording as the app shows a result, once done."""

    steering: Steering
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Result | None = None


class LiveSessions:
    """The live streams of a process by listener (a page's live id, or an API client's session). `record(key,
    generation)` turns a recording into the app's outputs (files written once); `max_seconds` ends a stream nobody
    stops."""

    def __init__(self, pipeline: MoodPipeline, record: Callable[[str, Generation], Result], max_seconds: float):
        self.pipeline, self.record, self.max_seconds = pipeline, record, max_seconds
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()
        self._count = itertools.count()

    def start(self, listener: str, mood: tuple[float, float], outputs: list[Output], **settings: Any) -> Live:
        """Play a stream for `listener` to `outputs` on its own thread (one already playing for them stops first);
        `settings` as `MoodPipeline.stream` takes them."""
        live = Live(Steering(validate_mood(*mood)))
        stream = self.pipeline.stream(lambda: live.steering.mood, CHUNK_SECONDS, **settings)
        with self._lock:
            old = self._live.pop(listener, None)
            self._live[listener] = live
        if old is not None:
            old.steering.stop()

        def run() -> None:
            try:
                played = play_live(stream, live.steering, outputs, LEAD_SECONDS, self.max_seconds)
                name = f"live-{next(self._count)}-{listener[:16]}"
                live.outputs = None if played.generation is None else self.record(name, played.generation)
            finally:
                live.done.set()
                with self._lock:
                    while len(self._live) > KEPT:
                        self._live.popitem(last=False)

        threading.Thread(target=run, name="moodgen-live", daemon=True).start()
        return live

    def steer(self, listener: str, valence: Any, arousal: Any) -> None:
        """The mood the listener's stream plays next (no stream: nothing to do)."""
        mood = validate_mood(valence, arousal)
        with self._lock:
            live = self._live.get(listener)
        if live is not None:
            live.steering.steer(*mood)

    def stop(self, listener: str, timeout: float = 60.0) -> Result | None:
        """Stop the listener's stream; the outputs of what was played (None if nothing was)."""
        with self._lock:
            live = self._live.get(listener)
        if live is None:
            return None
        live.steering.stop()
        live.done.wait(timeout)
        with self._lock:
            if self._live.get(listener) is live:
                del self._live[listener]
        return live.outputs

    def play(self, listener: str, mood: tuple[float, float], **settings: Any) -> Iterator[tuple[int, np.ndarray]]:
        """(sample rate, int16 audio) chunks for Gradio's streamed player (the API's /live), until stopped."""
        chunks: queue.Queue[np.ndarray | None] = queue.Queue()
        live = self.start(listener, mood, [QueueOutput(chunks)], **settings)
        try:
            while (audio := chunks.get()) is not None:
                yield self.pipeline.mel_params.sample_rate, to_pcm16(audio)
        finally:  # the client went away, or the stream ended
            live.steering.stop()


class QueueOutput:
    """An Output (moodgen.live) that hands each chunk's audio to a queue, then None at the end."""

    def __init__(self, chunks: queue.Queue):
        self.chunks = chunks

    def play(self, chunk: Chunk, at: float) -> None:
        self.chunks.put(chunk.audio)

    def close(self) -> None:
        self.chunks.put(None)


def chunk_message(chunk: Chunk, sample_rate: int) -> bytes:
    """One chunk for static/live.js: float32 [start seconds, valence, arousal, sample rate], then int16 audio."""
    head = np.array([chunk.start_seconds, chunk.valence, chunk.arousal, sample_rate], np.float32)
    return head.tobytes() + to_pcm16(chunk.audio).astype("<i2").tobytes()


class SocketOutput:
    """An Output that sends each chunk over a page's WebSocket as soon as it is made (from the stream's thread)."""

    def __init__(self, socket: WebSocket, loop: asyncio.AbstractEventLoop, sample_rate: int):
        self.socket, self.loop, self.sample_rate = socket, loop, sample_rate

    def play(self, chunk: Chunk, at: float) -> None:
        asyncio.run_coroutine_threadsafe(self.socket.send_bytes(chunk_message(chunk, self.sample_rate)), self.loop)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.socket.send_text('{"done": true}'), self.loop)


def socket_route(sessions: LiveSessions) -> WebSocketRoute:
    """The page's live stream: the first message {id, valence, arousal, settings: [seed, randomize, engine, steps,
    guidance, key, instrument, soundfont]} starts it; then {valence, arousal} steers it, {heard: seconds} says
    where the page's player is (the stream keeps LEAD_SECONDS ahead of that), and {stop: true} (or closing the
    socket) ends it. A bad message is answered {error: "..."} naming the field."""
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
                settings = read_settings(pipeline, *list(first.get("settings") or [])[:5], "mood",
                                         *list(first.get("settings") or [])[5:8])
                del settings["nearest_by"]
                output = SocketOutput(socket, asyncio.get_running_loop(), pipeline.mel_params.sample_rate)
                live = await asyncio.to_thread(sessions.start, listener, mood, [output], **settings)
            except (ValueError, TypeError) as exc:
                await socket.send_json({"error": str(exc)})
                return
            while not live.steering.stopped.is_set():
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
                live.steering.stop()

    return WebSocketRoute(SOCKET_PATH, serve)


def wire_live(w: Wiring) -> list[WebSocketRoute]:
    """Play live streams what the pad says over the page's socket (the button becomes Stop); Stop keeps what was
    played as a result. The API's /live, /live_mood and /live_stop do the same through Gradio's streamed audio.
    Returns the routes the server must serve (`server.launch_options`)."""
    page, pipeline = w.page, w.pipeline
    live = LiveSessions(pipeline, w.results.recorded, pipeline.limits.max_journey_seconds)

    def play_live(valence, arousal, seed, randomize, engine, steps, guidance, key, instrument=None, soundfont=None,
                  request: gr.Request = None):
        mood = checked(validate_mood, valence, arousal)
        settings = checked(read_settings, pipeline, seed, randomize, engine, steps, guidance, "mood", key,
                           instrument, soundfont)
        del settings["nearest_by"]
        yield from live.play(request.session_hash, mood, **settings)

    def steer_live(valence, arousal, request: gr.Request):
        checked(live.steer, request.session_hash, valence, arousal)

    def stop_live(live_id: str | None = None, request: gr.Request = None):
        outputs = live.stop(live_id or request.session_hash)
        if outputs is None:
            raise gr.Error("live: nothing is playing; press Play live first", print_exception=False)
        return outputs

    mood = [page.valence, page.arousal]
    # the page: live.js starts or stops the socket's stream; a stop clicks the (unseen) Stop button
    page.live_play.click(None, [*mood, *page.settings(nearest=False)], None, js=static_text("live_toggle.js"),
                         show_progress="hidden", queue=False)
    page.live_api.click(play_live, [*mood, *page.settings(nearest=False)], page.live_audio, concurrency_id="live",
                        concurrency_limit=w.concurrency_limit, preprocess=False, show_progress="hidden",
                        api_name="live")
    gr.on([page.valence.change, page.arousal.change], steer_live, mood, None, preprocess=False, queue=False,
          show_progress="hidden", api_name="live_mood")
    w.show_result(page.live_stop.click(stop_live, page.live_id, list(page.result), preprocess=False,
                                       js="(id) => [window.moodgenLive ? window.moodgenLive.stop() : id]",
                                       show_progress_on=page.result.summary, api_name="live_stop").success)
    return [socket_route(live)]
