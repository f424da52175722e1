"""Moods that move: waypoints on the pad, the smooth mood curve between them, the key that follows valence, and the
audio seams of loops and continuations.

A journey is a list of waypoints (seconds, valence, arousal), at least two, times increasing; its length is the last
waypoint's time. Engines sample on their own frame grid, so the curve is evaluated per frame.
Shapes: curve (T, 2) valence/arousal per frame; keys (T,) int64 key index per frame (moodgen.keys); audio (S,).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pedalboard

from moodgen.config import Limits, shown
from moodgen.mood import preset, validate_mood
from moodgen.render import LIMITER_MARGIN_DB, REVERB_DAMPING, REVERB_UNITY_DRY, Mastering, master

Waypoint = tuple[float, float, float]
PHRASE_SECONDS = 2.0  # key changes wait for a phrase boundary: one bar of 4/4 at 120 BPM
HYSTERESIS = 0.15  # after valence crosses zero it must pass this far beyond before the mode follows
CURVE_JSON_HZ = 4  # the mood curve in a JSON sidecar, sampled this often
DECLICK_SECONDS = 0.005  # an offset at a join fades out over this long
MASTERING_WARMUP_SECONDS = 5.0  # audio before a join that mastering hears again, so its reverb and limiter carry on


def derived_seed(seed: int, *salt: int) -> int:
    """A seed of its own for one part of a request (a window, an extension), fixed by the request's seed."""
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0] & 0x7FFFFFFF)


def validate_waypoints(waypoints: Iterable, limits: Limits) -> tuple[Waypoint, ...]:
    """Waypoints as float triples, or ValueError naming the bad one: fewer than two, not (seconds, valence,
    arousal), a time that is not a number >= 0 or does not increase, a mood outside [-1, 1] or NaN, a length (the
    last time) outside the journey limits. Messages count waypoints from 1, as people do."""
    try:
        points = list(waypoints)
    except TypeError:
        raise ValueError(f"waypoints must be a list of (seconds, valence, arousal), got {shown(waypoints)}") from None
    if len(points) < 2:
        raise ValueError(f"waypoints: a journey needs at least two (seconds, valence, arousal), got {len(points)}")
    out: list[Waypoint] = []
    for i, point in enumerate(points, 1):
        try:
            t, v, a = point
        except (TypeError, ValueError):
            raise ValueError(f"waypoint {i} must be (seconds, valence, arousal), got {shown(point)}") from None
        t = limits.journey_time(t, f"waypoint {i} seconds")
        try:
            v, a = validate_mood(v, a)
        except ValueError as exc:
            raise ValueError(f"waypoint {i}: {exc}") from None
        if out and t <= out[-1][0]:
            raise ValueError(f"waypoint {i}: times must increase, got {t:g} s after {out[-1][0]:g} s")
        out.append((t, v, a))
    limits.journey_seconds(out[-1][0], "journey length (the last waypoint's time)")
    return tuple(out)


def parse_path(text: str, field: str = "--path") -> list[Waypoint]:
    """'0:-0.6,-0.6 30:0.7,0.7' -> [(0, -0.6, -0.6), (30, 0.7, 0.7)]; ValueError naming `field` (the CLI's flag,
    the app's box) and the bad token."""
    points = []
    for token in text.split():
        try:
            t, mood = token.split(":")
            v, a = mood.split(",")
            points.append((float(t), float(v), float(a)))
        except ValueError:
            raise ValueError(f"{field}: {shown(token)} is not seconds:valence,arousal (e.g. 30:0.7,-0.2)") from None
    return points


def preset_path(names: str, seconds: float) -> list[Waypoint]:
    """'sad,relaxed,happy' over `seconds` -> presets evenly spaced in time, the first at 0 and the last at the end."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if len(chosen) < 2:
        raise ValueError(f"--presets: name at least two presets separated by commas, got {shown(names)}")
    moods = [preset(n) for n in chosen]
    times = np.linspace(0.0, float(seconds), len(chosen))
    return [(float(t), v, a) for t, (v, a) in zip(times, moods)]


def mood_curve(waypoints: Sequence[Waypoint], frames: int, frame_rate: float, start: float = 0.0) -> np.ndarray:
    """(frames, 2) float64: the mood at times start + i / frame_rate. Between waypoints the mood eases out of one
    and into the next (smoothstep), so its rate of change is zero at each waypoint and tempo and density never
    lurch; before the first waypoint and after the last it holds."""
    pts = np.asarray(waypoints, dtype=np.float64)
    times = start + np.arange(frames) / frame_rate
    i = np.clip(np.searchsorted(pts[:, 0], times, side="right") - 1, 0, len(pts) - 2)
    u = np.clip((times - pts[i, 0]) / (pts[i + 1, 0] - pts[i, 0]), 0.0, 1.0)
    s = (u * u * (3 - 2 * u))[:, None]
    return (1 - s) * pts[i, 1:] + s * pts[i + 1, 1:]


def curve_json(curve: np.ndarray, frame_rate: float) -> list[list[float]]:
    """The curve as [seconds, valence, arousal] rows every 1/CURVE_JSON_HZ s (and the last frame), for a sidecar."""
    step = max(1, int(round(frame_rate / CURVE_JSON_HZ)))
    rows = sorted({*range(0, len(curve), step), len(curve) - 1})
    return [[round(i / frame_rate, 3), round(float(curve[i, 0]), 4), round(float(curve[i, 1]), 4)] for i in rows]


@dataclass(frozen=True)
class KeyState:
    """Where the key stands after some frames: the key playing, the side of zero valence last passed beyond the
    hysteresis (+1 / -1), whether a modulation waits for the next phrase boundary, and frames played so far."""

    key: int
    side: int
    pending: bool = False
    frame: int = 0

    @classmethod
    def start(cls, key: int, valence: float, frame: int = 0) -> KeyState:
        return cls(key, 1 if valence >= 0 else -1, False, frame)


def parallel_key(key: int) -> int:
    """The same tonic in the other mode (C major <-> C minor): the clearest change of mode a listener hears."""
    return (key + 12) % 24


def follow_keys(valence: np.ndarray, state: KeyState, frame_rate: float) -> tuple[np.ndarray, KeyState]:
    """Per-frame keys (T,) for valence (T,), continuing `state`. When valence crosses zero and passes the
    hysteresis band, the key modulates to its parallel key at the next phrase boundary, if its mode is not already
    the one the new side asks for (major above zero, minor below). A key drawn against the mood is kept until
    valence crosses."""
    phrase = PHRASE_SECONDS * frame_rate
    key, side, pending = state.key, state.side, state.pending
    out = np.empty(len(valence), dtype=np.int64)
    for i, v in enumerate(np.asarray(valence, dtype=np.float64)):
        f = state.frame + i
        new_side = 1 if v > HYSTERESIS else -1 if v < -HYSTERESIS else side
        pending, side = pending or new_side != side, new_side
        if pending and f > 0 and math.floor(f / phrase) > math.floor((f - 1) / phrase):
            if key // 12 != (0 if side > 0 else 1):
                key = parallel_key(key)
            pending = False
        out[i] = key
    return out, KeyState(key, side, pending, state.frame + len(out))


def key_changes(keys: np.ndarray, frame_rate: float) -> list[tuple[float, int]]:
    """(seconds, key) at the first frame and wherever the key changes."""
    where = [0, *np.flatnonzero(np.diff(keys)) + 1] if len(keys) else []
    return [(round(float(i) / frame_rate, 4), int(keys[i])) for i in where]


def declick(head: np.ndarray, tail: np.ndarray, sample_rate: int) -> np.ndarray:
    """`tail` (S,) made to start where `head` (S,) ends: the step between head's last sample and the value tail
    would have had one sample earlier (extrapolated) is added to tail and faded out over DECLICK_SECONDS, so the
    join has no jump larger than the music's own."""
    if not len(head) or len(tail) < 2:
        return tail
    step = head[-1] - (2 * tail[0] - tail[1])
    n = min(len(tail), max(1, int(DECLICK_SECONDS * sample_rate)))
    fade = np.zeros(len(tail), dtype=np.float32)
    fade[:n] = 0.5 * (1 + np.cos(np.pi * np.arange(1, n + 1) / (n + 1)))
    return (tail + step * fade).astype(np.float32)


def close_loop(audio: np.ndarray, body: int, crossfade: int) -> np.ndarray:
    """A loop of `body` samples from audio (S,) that runs `crossfade` samples past the loop point: the overrun,
    which continues the end, is crossfaded (equal power) into the head, so the last sample flows into the first."""
    if len(audio) < body + crossfade:
        raise ValueError(f"a loop needs {body + crossfade} samples, got {len(audio)}")
    out = audio[:body].astype(np.float32).copy()
    angle = (np.arange(crossfade) + 0.5) / crossfade * (np.pi / 2)
    out[:crossfade] = audio[:crossfade] * np.sin(angle) + audio[body:body + crossfade] * np.cos(angle)
    return out


def fit(wav: np.ndarray, samples: int) -> np.ndarray:
    """(S,) cut or padded with silence to `samples`."""
    return np.pad(wav, (0, max(0, samples - len(wav))))[:samples]


def master_after(dry_before: np.ndarray, dry: np.ndarray, mastered_before: np.ndarray, sample_rate: int,
                 settings: Mastering) -> np.ndarray:
    """Mastered audio of `dry` (S,) that follows `dry_before`, whose mastered audio `mastered_before` has been
    heard: mastering hears the last MASTERING_WARMUP_SECONDS of it again first, so the room's tail and the
    limiter carry over the join, and the join is de-clicked."""
    if settings.is_dry:
        return np.asarray(dry, np.float32)
    warmup = np.asarray(dry_before[len(dry_before) - int(MASTERING_WARMUP_SECONDS * sample_rate):], np.float32)
    out = master(np.concatenate([warmup, dry]), sample_rate, settings)[len(warmup):]
    return declick(mastered_before, out, sample_rate)


def master_loop(dry: np.ndarray, sample_rate: int, settings: Mastering) -> np.ndarray:
    """A loop (S,) mastered as it repeats: its end is heard before its head, so the room's tail wraps around."""
    if settings.is_dry:
        return np.asarray(dry, np.float32)
    warmup = dry[len(dry) - min(len(dry), int(MASTERING_WARMUP_SECONDS * sample_rate)):]
    return master(np.concatenate([warmup, dry]), sample_rate, settings)[len(warmup):]


class ContinuingMaster:
    """`render.master` for audio that arrives in pieces (a stream's chunks): the same gain, reverb and true-peak
    limiter, their state kept from piece to piece, so the pieces together are the whole mastered at once, delayed
    by the limiter's lookahead (the first piece gives it up; `flush` returns it at the end). An inter-sample over
    cannot rescale audio already played, so that last step of `master` is left out."""

    def __init__(self, settings: Mastering, sample_rate: int):
        self.settings, self.sample_rate = settings, sample_rate
        self.gain = np.float32(10.0 ** (settings.gain_db / 20.0))
        self.reverb = None if settings.reverb_wet <= 0 else pedalboard.Reverb(
            room_size=settings.room_size, damping=REVERB_DAMPING, wet_level=settings.reverb_wet,
            dry_level=REVERB_UNITY_DRY)
        self.limiter = None if settings.ceiling_dbtp is None else pedalboard.BrickwallLimiter(
            ceiling_db=settings.ceiling_dbtp - LIMITER_MARGIN_DB, true_peak=True)
        self.held = 0  # samples in, not yet out

    def __call__(self, dry: np.ndarray) -> np.ndarray:
        """(S,) dry audio in -> the mastered audio that comes out now (S minus what the lookahead holds, at first)."""
        y = np.asarray(dry, np.float32)
        if self.settings.is_dry or not y.size:
            return y
        y = y * self.gain
        if self.reverb is not None:
            y = self.reverb.process(y, self.sample_rate, reset=False)
        if self.limiter is not None:
            y = self.limiter.process(y, self.sample_rate, reset=False)
        self.held += len(dry) - len(y)
        return np.clip(y, -1.0, 1.0).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The mastered audio the lookahead still holds (fed silence to push it out)."""
        held, self.held = self.held, 0
        return self(np.zeros(held, np.float32))[:held] if held else np.zeros(0, np.float32)
