"""A live stream: chunks of music that follow a mood read before each chunk (`MoodPipeline.stream`).

Each chunk continues one engine session: the frames are sampled after the last ones, so no phrase restarts, and
the audio continues the audio before it, so consecutive chunks join without a gap or click. The mood eases across
a chunk from the previous reading to the new one, and the key follows valence as in a journey. One mastering chain
runs through the whole stream (moodgen.mastering.ContinuingMaster), so the room and the limiter carry over the joins.
Shapes: audio (S,); frames (C, T) in the engine's representation (encoded piano roll or log-mel); curve (T, 2).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from moodgen.config import shown
from moodgen.engines.base import Session
from moodgen.journey import KeyState, follow_keys, mood_curve
from moodgen.keys import key_name
from moodgen.mastering import ContinuingMaster, Mastering
from moodgen.mood import validate_mood

Note = tuple[float, int, int]  # (seconds from the chunk's first sample, pitch, velocity; 0 = note off)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a stream."""

    index: int
    start_seconds: float  # where its audio starts in the stream
    audio: np.ndarray  # (S,) float32 mastered audio, continuing the previous chunk's sample for sample
    frames: np.ndarray  # (C, T) the engine's frames of this chunk (encoded piano roll or log-mel)
    valence: float  # the mood read for this chunk, reached at its end
    arousal: float
    key: str | None  # the key at its end
    notes: tuple[Note, ...] | None = None  # the notes it starts and stops, as heard; None for engines without notes


class MoodStream:
    """Iterate for chunks; `close()` stops and returns what was played as a Generation (None before any chunk).
    `run(fn)` computes fn() where the pipeline does its work (its worker thread), whichever thread iterates."""

    def __init__(self, session: Session, frame_rate: float, sample_rate: int, chunk_seconds: float,
                 mood_at: Callable[[], tuple[float, float]], key_for: Callable[[torch.Tensor], torch.Tensor | None],
                 mastering: Mastering, finish: Callable, run: Callable[[Callable], Any],
                 grid: tuple[int, int | None] = (1, None)):
        self.session, self.frame_rate, self.sample_rate, self.run = session, frame_rate, sample_rate, run
        # chunks end on multiples of grid[0] frames (16th notes at a tempo); keys change every grid[1] (a bar)
        self.step, self.phrase_frames = grid
        self.end = 0  # frames advanced
        self.chunk_seconds = chunk_seconds
        self.mood_at, self.key_for, self.finish = mood_at, key_for, finish
        self.master = ContinuingMaster(mastering, sample_rate)
        self.moods: list[tuple[float, float]] = []
        self.curves: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        self.audio: list[np.ndarray] = []  # mastered chunks
        self.dry: list[np.ndarray] = []
        self.state: KeyState | None = None
        self.samples = 0
        self.closed = False

    def __iter__(self) -> MoodStream:
        return self

    def read_mood(self) -> tuple[float, float]:
        mood = self.mood_at()
        try:
            valence, arousal = mood
        except (TypeError, ValueError):
            raise ValueError(f"mood_at() must return (valence, arousal), got {shown(mood)}") from None
        return validate_mood(valence, arousal)

    def __next__(self) -> Chunk:
        if self.closed:
            raise StopIteration
        mood = self.read_mood()
        return self.run(lambda: self._chunk(mood))

    def _chunk(self, mood: tuple[float, float]) -> Chunk:
        i, start = len(self.moods), self.end
        end = max(start + self.step, round((i + 1) * self.chunk_seconds * self.frame_rate / self.step) * self.step)
        self.end = end
        previous = self.moods[-1] if self.moods else mood
        curve = mood_curve([(0.0, *previous), ((end - start) / self.frame_rate, *mood)], end - start,
                           self.frame_rate, start=1 / self.frame_rate)
        if not self.moods:
            first = self.key_for(torch.tensor([mood], dtype=torch.float32))
            self.state = None if first is None else KeyState.start(int(first[0]), mood[0])
        keys = None
        if self.state is not None:
            keys, self.state = follow_keys(curve[:, 0], self.state, self.frame_rate, self.phrase_frames)
            self.keys.append(keys)
        frames = self.session.advance(curve, keys)
        dry = self.session.render()
        audio = self.master(dry)
        self.dry.append(dry)
        self.moods.append(mood)
        self.curves.append(curve)
        self.audio.append(audio)
        chunk = Chunk(i, self.samples / self.sample_rate, audio, frames, *mood,
                      None if keys is None else key_name(int(keys[-1])), self._notes())
        self.samples += len(audio)
        return chunk

    def _notes(self) -> tuple[Note, ...] | None:
        """The last render's note events on this chunk's clock: the mastered audio lags the dry by the lookahead."""
        events = self.session.rendered_notes
        if events is None:
            return None
        lag = self.master.held - self.samples
        return tuple(((at + lag) / self.sample_rate, pitch, velocity if order else 0)
                     for at, order, pitch, velocity in events)

    @property
    def render_record(self) -> dict[str, Any]:
        """How the audio is made (the engine's render record: for notes, the instrument and its MIDI program)."""
        return self.session.render_record

    def close(self):
        """Stop; what was played as a Generation (audio, MIDI for engines with notes, the moods read), or None.
        Its audio ends with what the mastering lookahead still held."""
        self.closed = True
        if not self.audio:
            self.session.close()
            return None
        self.audio.append(self.master.flush())
        return self.run(lambda: self.finish(self.session, np.concatenate(self.curves),
                                            np.concatenate(self.keys) if self.keys else None,
                                            np.concatenate(self.audio), np.concatenate(self.dry), self.moods))
