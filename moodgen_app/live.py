"""Live mode: one `MoodPipeline.stream` per browser session, steered by the pad, paced to real time, recorded;
`wire_live` puts it on the page (Play live, the pad's moves, Stop and keep it).

The stream reads the mood the pad last sent before each chunk, and runs at most `LEAD_SECONDS` ahead of what has
played, so a move of the dot reaches the ears about a chunk later. Stopping keeps what was played as a clip (WAV,
JSON, MIDI) through the app's result store; only a few stopped recordings' outputs are remembered per process.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from moodgen.audio import to_pcm16
from moodgen.generation import Generation
from moodgen.mood import validate_mood
from moodgen.pipeline import MoodPipeline
from moodgen_app.results import Result, read_settings
from moodgen_app.wiring import Wiring, checked

CHUNK_SECONDS = 1.0
LEAD_SECONDS = 1.0  # audio made ahead of playback: the player never starves, and the pad is heard soon
KEPT = 16  # stopped recordings whose outputs wait for their Stop


@dataclass
class Live:
    """One session's stream: the mood to play next, and how it ends."""

    mood: tuple[float, float]
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Result | None = None  # the recording as the app shows a result, once the stream has ended


class LiveSessions:
    """The live streams of a process by session id. `record(key, generation)` turns a recording into the app's
    outputs (files written once); `max_seconds` ends a stream nobody stops."""

    def __init__(self, pipeline: MoodPipeline, record: Callable[[str, Generation], Result], max_seconds: float):
        self.pipeline, self.record, self.max_seconds = pipeline, record, max_seconds
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()
        self._count = itertools.count()

    def steer(self, session: str, valence: Any, arousal: Any) -> None:
        """The mood the session's stream plays next (no stream: nothing to do)."""
        mood = validate_mood(valence, arousal)
        with self._lock:
            live = self._live.get(session)
        if live is not None:
            live.mood = mood

    def play(self, session: str, mood: tuple[float, float], **settings: Any) -> Iterator[tuple[int, np.ndarray]]:
        """(sample rate, int16 audio) chunks for the session, until it is stopped, disconnects or reaches
        max_seconds; a stream already playing for the session stops first."""
        live = Live(validate_mood(*mood))
        with self._lock:
            old = self._live.pop(session, None)
            self._live[session] = live
        if old is not None:
            old.stop.set()
        stream = self.pipeline.stream(lambda: live.mood, CHUNK_SECONDS, **settings)
        sr, start = self.pipeline.mel_params.sample_rate, time.monotonic()
        try:
            for chunk in stream:
                yield sr, to_pcm16(chunk.audio)
                made = chunk.start_seconds + len(chunk.audio) / sr
                ahead = made - (time.monotonic() - start)
                if live.stop.wait(max(0.0, ahead - LEAD_SECONDS)) or made >= self.max_seconds:
                    break
        finally:
            recording = stream.close()
            key = f"live-{next(self._count)}-{session[:16]}"
            live.outputs = self.record(key, recording) if recording is not None else None
            live.done.set()
            with self._lock:
                while len(self._live) > KEPT:
                    self._live.popitem(last=False)

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


def wire_live(w: Wiring) -> None:
    """Play live streams what the pad says; Stop and keep it shows what was played as a result."""
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

    def stop_live(request: gr.Request):
        outputs = live.stop(request.session_hash)
        if outputs is None:
            raise gr.Error("live: nothing is playing; press Play live first", print_exception=False)
        return outputs

    mood = [page.valence, page.arousal]
    page.live_play.click(play_live, [*mood, *page.settings(nearest=False)], page.live_audio, concurrency_id="live",
                         concurrency_limit=w.concurrency_limit, preprocess=False, show_progress="hidden",
                         api_name="live")
    gr.on([page.valence.change, page.arousal.change], steer_live, mood, None, preprocess=False, queue=False,
          show_progress="hidden", api_name="live_mood")
    w.show_result(page.live_stop.click(stop_live, None, list(page.result), show_progress_on=page.result.summary,
                                       api_name="live_stop").success)
