"""Tempo and bars for engines that play notes: the beat grid a roll is played on, bars of 4/4, and the tempo drawn
for a mood.

The note model samples frames of 1/16 s and learned no beat. At a tempo a frame lasts a 32nd note (7.5 / BPM s;
at 120 BPM exactly 1/16 s): the model's music is time-stretched onto the beat grid, so a bar is always 32 frames
and bars, loops and bar lines are whole numbers of frames at any tempo. An onset on an odd frame (a 32nd off the
16th-note grid) is played on the 16th before it, keeping LAY_BACK_SHARE of the move as expressive lateness (at most
LAY_BACK_MAX_SECONDS); every note of a frame moves alike, so chords stay together and notes one frame apart become
one chord. The move is causal (an onset never waits for a frame not yet sampled), so a stream plays the same grid.
Without a tempo nothing here applies and the roll plays on its own 1/16 s grid, as before.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from moodgen.config import Limits, shown

FRAMES_PER_BEAT = 8  # a roll frame is a 32nd note
BEATS_PER_BAR = 4  # 4/4
BEAT_UNIT = 4  # the time signature's denominator
FRAMES_PER_BAR = FRAMES_PER_BEAT * BEATS_PER_BAR
FRAMES_PER_SIXTEENTH = 2
LAY_BACK_SHARE = 0.2  # of a 32nd, how late a moved onset stays
LAY_BACK_MAX_SECONDS = 0.02
# The mood -> tempo prior, log-normal. Its centre: EMOPIA's tempo as librosa's beat tracker hears it, by arousal
# (benchmarks/studies/tempo_prior.py, RESULTS "Tempo of the corpus": log-mean 121.5 BPM for the low-arousal half,
# 127.3 for the high), placed at arousal -0.5 and +0.5 and followed linearly (in log tempo) across the pad. Its
# spread is narrower than the corpus' (log SD 0.24 within each half, much of it the tracker's own error): at a tempo
# the model's music is time-stretched by BPM / 120, so a wide draw would change its note density, and the arousal
# heard, by chance.
PRIOR_LOW_BPM, PRIOR_HIGH_BPM, PRIOR_LOG_SD = 121.5, 127.3, 0.1
PRIOR_RANGE = (60.0, 160.0)  # drawn tempi stay in the range real piano music of each mood covers
TEMPO_FROM_MOOD = "mood"  # bpm="mood": a tempo drawn for the mood, as the key is


@dataclass(frozen=True)
class Tempo:
    """A beat grid: `bpm` quarter notes a minute, 4/4. Times in seconds, samples at a given rate; frames are the
    note engine's roll frames (32nd notes)."""

    bpm: float

    def __post_init__(self) -> None:
        if not (isinstance(self.bpm, (int, float)) and math.isfinite(self.bpm) and self.bpm > 0):
            raise ValueError(f"bpm must be a positive number, got {self.bpm!r}")

    @property
    def frame_seconds(self) -> float:
        return 60.0 / (self.bpm * FRAMES_PER_BEAT)

    @property
    def frame_rate(self) -> float:
        """Frames per second of audio."""
        return self.bpm * FRAMES_PER_BEAT / 60.0

    @property
    def bar_seconds(self) -> float:
        return FRAMES_PER_BAR * self.frame_seconds

    @property
    def lay_back_seconds(self) -> float:
        return min(LAY_BACK_SHARE * self.frame_seconds, LAY_BACK_MAX_SECONDS)

    def frame_time(self, frame: int) -> float:
        """Where frame `frame` begins (a note ends there)."""
        return frame * 60.0 / (self.bpm * FRAMES_PER_BEAT)

    def onset_time(self, frame: int) -> float:
        """Where a note struck in frame `frame` is played: on its 16th, or laid back just after the 16th before."""
        moved = frame % FRAMES_PER_SIXTEENTH
        return self.frame_time(frame - moved) + (self.lay_back_seconds if moved else 0.0)

    def sample(self, seconds: float, sample_rate: int) -> int:
        return int(round(seconds * sample_rate))

    def frame_sample(self, frame: int, sample_rate: int) -> int:
        """The sample at which frame `frame` begins; `frame_sample(bars * FRAMES_PER_BAR, sr)` is where bar
        `bars` begins, so N bars last exactly that many samples."""
        return self.sample(self.frame_time(frame), sample_rate)

    def bars_seconds(self, bars: float) -> float:
        return self.frame_time(bars * FRAMES_PER_BAR)

    def to_bar(self, seconds: float) -> float:
        """`seconds` moved to the nearest bar line."""
        return self.bars_seconds(round(seconds / self.bar_seconds))

    def frames_after(self, frames: int, seconds: float) -> int:
        """Frames that follow `frames` up to about `seconds` in all, in whole 16ths (at least one), so a
        continuation's onsets are all played after the music it continues."""
        return max(1, round((seconds * self.frame_rate - frames) / FRAMES_PER_SIXTEENTH)) * FRAMES_PER_SIXTEENTH


def tempo_for_mood(arousal: float, seed: int) -> int:
    """A tempo (whole BPM) drawn for the mood's arousal from the corpus prior, fixed by `seed`."""
    low, high = math.log(PRIOR_LOW_BPM), math.log(PRIOR_HIGH_BPM)
    centre = (low + high) / 2 + arousal * (high - low)
    z = np.random.default_rng([seed, 0x7E4F0]).standard_normal()
    return int(np.clip(round(math.exp(centre + PRIOR_LOG_SD * z)), *PRIOR_RANGE))


def grid_share(onsets: np.ndarray, tempo: Tempo, within: float = 0.03, phase: float = 0.0) -> float:
    """Share of onset times (N,) within `within` seconds of the 16th-note grid of `tempo` starting at `phase`."""
    step = 2 * tempo.frame_seconds
    x = (np.asarray(onsets, np.float64) - phase) / step
    return float(np.mean(np.abs(x - np.round(x)) * step <= within + 1e-9)) if len(x) else 1.0


def check_bpm(bpm: Any, eng: Any, limits: Limits) -> float | str | None:
    """A Settings' bpm checked against engine `eng` (`plays_tempo`) and the limits: None, "mood" or a number;
    ValueError starting with "bpm" otherwise."""
    if bpm in (None, ""):
        return None
    if not eng.plays_tempo:
        raise ValueError(f"bpm must be unset: engine {eng.name!r} plays no notes to put on a beat, got {shown(bpm)}")
    return TEMPO_FROM_MOOD if bpm == TEMPO_FROM_MOOD else limits.bpm(bpm)


def tempo_for(bpm: float | str | None, arousal: float, seed: int) -> Tempo | None:
    """The beat grid of a checked bpm: None, a number, or "mood" (drawn for `arousal`, fixed by `seed`)."""
    if bpm is None:
        return None
    return Tempo(tempo_for_mood(arousal, seed) if bpm == TEMPO_FROM_MOOD else float(bpm))


def clip_seconds(seconds: float, loop: bool, loop_bars: int | None, tempo: Tempo | None, limits: Limits) -> float:
    """A clip's length checked: `loop_bars` bars at `tempo` when given (instead of `seconds`), whole bars for any
    loop at a tempo."""
    if loop_bars is not None:
        seconds = tempo.bars_seconds(limits.bars(loop_bars))
    seconds = limits.seconds(seconds, "seconds" if loop_bars is None else "loop_bars (as seconds)")
    return tempo.bars_seconds(max(1, round(seconds / tempo.bar_seconds))) if loop and tempo else seconds
