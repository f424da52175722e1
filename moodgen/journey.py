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

from moodgen.config import Limits, shown
from moodgen.mood import preset, validate_mood
from moodgen.tempo import Tempo

Waypoint = tuple[float, float, float]
PHRASE_SECONDS = 2.0  # key changes wait for a phrase boundary: one bar of 4/4 at 120 BPM
HYSTERESIS = 0.15  # after valence crosses zero it must pass this far beyond before the mode follows
CURVE_JSON_HZ = 4  # the mood curve in a JSON sidecar, sampled this often


def derived_seed(seed: int, *salt: int) -> int:
    """A seed of its own for one part of a request (a window, an extension), fixed by the request's seed."""
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0] & 0x7FFFFFFF)


def check_count(points: list, limits: Limits) -> None:
    if not 2 <= len(points) <= limits.max_waypoints:
        raise ValueError(f"waypoints: a journey needs at least two (seconds, valence, arousal) and at most "
                         f"{limits.max_waypoints}, got {len(points)}")


def validate_waypoints(waypoints: Iterable, limits: Limits) -> tuple[Waypoint, ...]:
    """Waypoints as float triples, or ValueError naming the bad one: fewer than two or more than the limit (counted
    before any is read), not (seconds, valence, arousal), a time that is not a number >= 0 or does not increase, a
    mood outside [-1, 1] or NaN, a length (the last time) outside the journey limits. Messages count waypoints from
    1, as people do."""
    try:
        points = list(waypoints)
    except TypeError:
        raise ValueError(f"waypoints must be a list of (seconds, valence, arousal), got {shown(waypoints)}") from None
    check_count(points, limits)
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


def on_bar_lines(waypoints: Iterable, tempo: Tempo, limits: Limits, in_bars: bool = False) -> tuple[Waypoint, ...]:
    """Waypoints at a tempo, checked as `validate_waypoints` does: times in bars (`in_bars`) become seconds, times
    in seconds move to the nearest bar line, so the mood's sections begin on bar lines."""
    try:
        points = [tuple(p) for p in waypoints]
    except TypeError:
        raise ValueError(f"waypoints must be a list of (time, valence, arousal), got {shown(waypoints)}") from None
    check_count(points, limits)  # before each is read
    moved = []
    for i, point in enumerate(points, 1):
        if len(point) != 3:
            raise ValueError(f"waypoint {i} must be ({'bars' if in_bars else 'seconds'}, valence, arousal), "
                             f"got {shown(point)}")
        t = limits.journey_time(point[0], f"waypoint {i} {'bars' if in_bars else 'seconds'}")
        moved.append((tempo.bars_seconds(t) if in_bars else tempo.to_bar(t), *point[1:]))
    return validate_waypoints(moved, limits)


def first_arousal(waypoints: Iterable) -> float:
    """The first waypoint's arousal (what a journey's tempo is drawn for); 0 where it is not one (the waypoint
    checks name it)."""
    try:
        return validate_mood(*list(waypoints)[0][1:])[1]
    except (TypeError, ValueError, IndexError):
        return 0.0


def parse_path(text: str, field: str = "--path") -> list[Waypoint]:
    """'0:-0.6,-0.6 30:0.7,0.7' -> [(0, -0.6, -0.6), (30, 0.7, 0.7)]; ValueError naming `field` (where the text was
    typed) and the bad token."""
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


def follow_keys(valence: np.ndarray, state: KeyState, frame_rate: float,
                phrase_frames: int | None = None) -> tuple[np.ndarray, KeyState]:
    """Per-frame keys (T,) for valence (T,), continuing `state`. When valence crosses zero and passes the
    hysteresis band, the key modulates to its parallel key at the next phrase boundary (every `phrase_frames`
    frames, a bar at a tempo; None: every PHRASE_SECONDS), if its mode is not already the one the new side asks for
    (major above zero, minor below). A key drawn against the mood is kept until valence crosses."""
    phrase = PHRASE_SECONDS * frame_rate if phrase_frames is None else phrase_frames
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
