"""The app's live sessions (moodgen_app.live) with a stand-in pipeline: what a stream that cannot start leaves
behind, and which streams the session table may forget."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from moodgen.settings import Settings
from moodgen_app.live import KEPT, LiveSessions


@dataclass
class Chunk:
    audio: np.ndarray
    start_seconds: float


class Stream:
    """Chunks of one sample each (so pacing never waits), until closed; closing returns a recording."""

    def __init__(self, mood_at):
        self.mood_at, self.index, self.closed = mood_at, 0, False

    def __iter__(self):
        return self

    def __next__(self):
        self.mood_at()
        self.index += 1
        return Chunk(np.zeros(1, np.float32), (self.index - 1) / 1000)

    def close(self):
        self.closed = True
        return f"recording of {self.index} chunks"


class Pipeline:
    mel_params = SimpleNamespace(sample_rate=1000)

    def __init__(self):
        self.streams: list[Stream] = []

    def stream(self, mood_at, chunk_seconds, settings):
        if settings.engine == "broken":
            raise ValueError("engine must be one of notes, mel (in this checkpoint), got 'broken'")
        self.streams.append(Stream(mood_at))
        return self.streams[-1]


def sessions():
    return LiveSessions(Pipeline(), lambda key, recording: (key, recording), max_seconds=600.0)


def test_a_stream_that_cannot_start_raises_at_once_and_leaves_nothing_to_stop():
    live = sessions()
    with pytest.raises(ValueError, match="engine must be one of"):
        live.play("a", (0.0, 0.0), Settings(engine="broken"))  # raises here, before any chunk is asked for
    assert live.stop("a", timeout=600.0) is None  # nothing registered: Stop answers at once, not after its timeout


def play_in_thread(live: LiveSessions, session: str) -> threading.Thread:
    """Consume a session's chunks as the server does, on a thread of its own, once the first has come."""
    chunks = live.play(session, (0.0, 0.0), Settings())
    next(chunks)
    thread = threading.Thread(target=lambda: [None for _ in chunks], daemon=True)
    thread.start()
    return thread


def test_a_playing_stream_is_never_forgotten_and_an_ended_one_keeps_its_recording():
    live = sessions()
    threads = {f"s{i}": play_in_thread(live, f"s{i}") for i in range(KEPT + 2)}
    key, recording = live.stop(f"s{KEPT + 1}")  # one stream ends; more than KEPT are still in the table
    assert recording.startswith("recording of") and key.endswith(f"s{KEPT + 1}")
    threads["extra"] = play_in_thread(live, "extra")  # a new stream: the table forgets only ended ones
    for i in range(KEPT + 1):  # every stream that was playing can still be steered and stopped
        live.steer(f"s{i}", 0.5, -0.5)
        assert live.stop(f"s{i}") is not None
    assert live.stop("extra") is not None
    for thread in threads.values():
        thread.join(60)
        assert not thread.is_alive()
    assert all(s.closed for s in live.pipeline.streams)
