"""Playing a stream live: paced to real time, steered from outside while it plays, heard, and recorded.

`play_live` reads the mood just before each chunk and keeps at most `lead_seconds` of audio made ahead of what is
being heard, so a change of mood is heard `lead_seconds` to `lead_seconds + chunk_seconds` after it arrives (the
chunk eases into it from its first sample). Each chunk goes to the outputs (a sound card, a MIDI port) with the
monotonic time its first sample is due; what was played comes back as a Generation (WAV, JSON, MIDI) with a record
of when each change arrived, on the recording's own clock, so the latency can be read from the recording.
Shapes: audio (S,) float32.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from moodgen.generation import Generation
from moodgen.mood import validate_mood
from moodgen.stream import Chunk, MoodStream

# The mood is read every CHUNK_SECONDS (the shortest chunk the Limits allow: two note frames) and heard LEAD_SECONDS
# later: the lead is room for a chunk's work (and its trip to a browser) on a busy machine. 0.25 s chunks with a
# 0.25 s lead stalled about 27 times a minute under a load of 29 on 2 cores (benchmarks/RESULTS.md, Live latency).
CHUNK_SECONDS = 0.125
LEAD_SECONDS = 0.35
LATE_SECONDS = 0.01  # a chunk due longer ago than this when it is ready leaves a gap in the output: a stall


class Output(Protocol):
    """Where a live stream goes as it plays: `play(chunk, at)` is called once per chunk, in order, before
    `at` (the monotonic time its first sample is due); `close()` once at the end."""

    def play(self, chunk: Chunk, at: float) -> None: ...

    def close(self) -> None: ...


class Steering:
    """The mood to play next, set from any thread (OSC, a pad), and the stop. Each accepted change is logged at
    the seconds since the recording started playing (wall clock: a stall does not move it)."""

    def __init__(self, mood: tuple[float, float] = (0.0, 0.0), clock: Callable[[], float] = time.monotonic):
        self.mood = validate_mood(*mood)
        self.clock = clock
        self.stopped = threading.Event()
        self.changes: list[tuple[float, float, float]] = []  # (seconds since it started playing, valence, arousal)
        self.origin: float | None = None  # clock time the recording started playing
        self.started: float | None = None  # clock time its first sample would have played, given the stalls since
        self._lock = threading.Lock()

    def steer(self, valence: Any, arousal: Any) -> tuple[float, float]:
        """Play (valence, arousal) from the next chunk on; ValueError naming the field when out of range."""
        mood = validate_mood(valence, arousal)
        with self._lock:
            self.mood = mood
            self.changes.append((round(0.0 if self.origin is None else self.clock() - self.origin, 4), *mood))
        return mood

    def sync(self, heard: float) -> None:
        """The output says it plays `heard` seconds of the recording now (a player that started late, or that
        stalled): the pacing and the changes' times follow its clock from here on."""
        with self._lock:
            if self.started is not None and math.isfinite(heard) and heard >= 0:
                self.started = self.clock() - heard

    def heard(self) -> float:
        """Seconds of the recording heard so far (0 before it starts)."""
        return 0.0 if self.started is None else max(0.0, self.clock() - self.started)

    def stop(self) -> None:
        self.stopped.set()


@dataclass
class Played:
    """A live session's recording and how it went: `changes` as `Steering.changes`; `starts`, where each chunk
    starts in the recording; `due`, when each chunk started playing (seconds since the first did, as `changes`);
    `stalls`, the seconds in the recording where a chunk was ready after it was due (a gap in what was heard)."""

    generation: Generation | None
    chunk_seconds: float
    lead_seconds: float
    changes: list[tuple[float, float, float]] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    due: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """For the JSON sidecar (`Generation.save(extra=...)`)."""
        return {"live": {"chunk_seconds": self.chunk_seconds, "lead_seconds": self.lead_seconds,
                         "changes": [list(c) for c in self.changes], "starts": self.starts,
                         "due": self.due, "stalls": self.stalls}}


def play_live(stream: MoodStream, steering: Steering, outputs: Iterable[Output] = (),
              lead_seconds: float = LEAD_SECONDS, max_seconds: float = 600.0) -> Played:
    """Play `stream` in real time to `outputs` until `steering` is stopped or `max_seconds` are made; the stream
    must read `steering.mood` (`pipeline.stream(lambda: steering.mood, ...)`). Outputs are closed at the end."""
    outputs = list(outputs)
    clock, starts, dues, stalls = steering.clock, [], [], []
    try:
        for chunk in stream:
            now = clock()
            starts.append(round(chunk.start_seconds, 4))
            if steering.started is None:
                steering.started = steering.origin = now
            due = steering.started + chunk.start_seconds
            if now > due + LATE_SECONDS:  # what is heard now lags the recording by this much more
                stalls.append(round(chunk.start_seconds, 4))
                steering.started += now - due
                due = now
            dues.append(round(due - steering.origin, 4))
            for output in outputs:
                output.play(chunk, due)
            made = chunk.start_seconds + len(chunk.audio) / stream.sample_rate
            if made >= max_seconds or steering.stopped.wait(max(0.0, steering.started + made - lead_seconds - clock())):
                break
    finally:
        for output in outputs:
            output.close()
        generation = stream.close()
    return Played(generation, stream.chunk_seconds, lead_seconds, list(steering.changes), starts, dues, stalls)


class SampleQueue:
    """Audio handed from the stream to a sound card's callback: `push` chunks, `pull(n)` n samples, silence where
    none are there yet (counted in `underruns`)."""

    def __init__(self):
        self._chunks: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self.underruns = 0
        self.started = False  # underruns count once the first audio has come

    def push(self, audio: np.ndarray) -> None:
        with self._lock:
            self._chunks.append(np.asarray(audio, np.float32))

    def pull(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                head = self._chunks[0]
                take = min(n - filled, len(head))
                out[filled:filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
        self.underruns += self.started and filled < n
        self.started = self.started or filled > 0
        return out


class SoundOutput:
    """The default sound card, through PortAudio (`sounddevice`, the `live` extra), fed from a SampleQueue."""

    def __init__(self, sounddevice: Any, sample_rate: int):
        self.queue = SampleQueue()
        self.device = sounddevice.query_devices(kind="output")["name"]
        self._stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32",
                                                latency="low", callback=self._fill)
        self._stream.start()

    def _fill(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        outdata[:, 0] = self.queue.pull(frames)

    def play(self, chunk: Chunk, at: float) -> None:
        self.queue.push(chunk.audio)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def sound_output(sample_rate: int) -> tuple[SoundOutput | None, str]:
    """The machine's sound card as an Output, or None; and a line saying which (or why none)."""
    try:
        import sounddevice  # optional (the `live` extra), and it needs PortAudio on the machine
    except (ImportError, OSError) as exc:
        return None, f"no audio output here ({exc}); recording only"
    try:
        out = SoundOutput(sounddevice, sample_rate)
    except (sounddevice.PortAudioError, ValueError) as exc:  # no output device
        return None, f"no audio output here ({exc}); recording only"
    return out, f"playing to {out.device}"
