"""Symbolic statistics of a piano clip's notes and the overlapping area (OA) of two sets' densities.

The pitch statistics are MusPy's (Dong et al., ISMIR 2020 late-breaking demo): pitch classes used, distinct pitches,
pitch range, pitch-class entropy, polyphony, and the out-of-scale share as 1 - `muspy.scale_consistency` (the share
of notes outside the best-fitting of the 24 major / natural-minor scales). Timing and dynamics, which MusPy measures
on a beat grid or not at all, are computed here from the notes in seconds: the share of onsets struck together (another
onset within 30 ms), notes per second, the median note duration, the median inter-onset interval (onsets within
30 ms merged) and the velocity mean and spread.

OA follows Yang & Lerch, "On the evaluation of generative models in music" (Neural Computing and Applications 2018):
each set's values are smoothed by a Gaussian kernel density estimate (Scott's bandwidth) and OA is the integral of
the smaller of the two densities, 1 for identical distributions, 0 for disjoint ones. They compare densities of
pairwise feature distances; we compare the densities of each per-clip statistic directly, which is what a reader can
map onto "too many pitch classes" or "too flat dynamics".

Shapes: notes (N, 4) float = start s, end s, MIDI pitch, velocity; values (N,) per-clip statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import muspy
import numpy as np
import pretty_midi

TOGETHER_S = 0.030  # onsets closer than this are struck together (a chord), as in the realism issue
TICKS_PER_S = 1000  # MusPy time unit for our notes: one tick per millisecond


@dataclass(frozen=True)
class Statistic:
    name: str
    label: str
    fmt: str


STATISTICS = (
    Statistic("pitch_classes", "pitch classes used", "{:.1f}"),
    Statistic("out_of_scale", "out-of-scale share", "{:.3f}"),
    Statistic("pitch_class_entropy", "pitch-class entropy (bits)", "{:.2f}"),
    Statistic("distinct_pitches", "distinct pitches", "{:.1f}"),
    Statistic("pitch_range", "pitch range (semitones)", "{:.1f}"),
    Statistic("polyphony", "polyphony (keys sounding)", "{:.2f}"),
    Statistic("chord_share", "onsets struck together", "{:.3f}"),
    Statistic("notes_per_s", "notes per second", "{:.2f}"),
    Statistic("duration", "note duration, median (s)", "{:.3f}"),
    Statistic("ioi", "inter-onset interval, median (s)", "{:.3f}"),
    Statistic("velocity_mean", "velocity mean", "{:.1f}"),
    Statistic("velocity_sd", "velocity spread (SD)", "{:.1f}"),
)
NAMES = tuple(s.name for s in STATISTICS)


def notes_of(pm: pretty_midi.PrettyMIDI, seconds: float) -> np.ndarray:
    """(N, 4) the pitched notes of `pm` that start before `seconds`, ends cut there, sorted by start then pitch."""
    rows = [(n.start, min(n.end, seconds), n.pitch, n.velocity)
            for inst in pm.instruments if not inst.is_drum for n in inst.notes if n.start < seconds]
    notes = np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)
    return notes


def as_music(notes: np.ndarray) -> muspy.Music:
    """Notes (N, 4) as a one-track MusPy Music on a millisecond grid (every note at least one tick)."""
    start = np.round(notes[:, 0] * TICKS_PER_S).astype(int)
    duration = np.maximum(np.round(notes[:, 1] * TICKS_PER_S).astype(int) - start, 1)
    track = muspy.Track(program=0, notes=[muspy.Note(int(t), int(p), int(d), int(v)) for t, p, d, v in
                                          zip(start, notes[:, 2].astype(int), duration, notes[:, 3].astype(int))])
    return muspy.Music(resolution=TICKS_PER_S // 2, tracks=[track])  # 120 BPM: a beat is 500 ticks


def onset_groups(starts: np.ndarray) -> np.ndarray:
    """(N,) sorted onset times -> (N,) group id; a new group starts where the gap to the previous onset is >= 30 ms."""
    return np.concatenate([[0], np.cumsum(np.diff(starts) >= TOGETHER_S)]).astype(int) if len(starts) else starts


def clip_statistics(notes: np.ndarray, seconds: float) -> dict[str, float]:
    """Every statistic of `STATISTICS` for one clip's notes (N, 4) over `seconds`; NaN where a clip has too few
    notes to say (no notes; one onset for intervals)."""
    if len(notes) == 0:
        return {name: float("nan") for name in NAMES} | {"notes_per_s": 0.0}
    music = as_music(notes)
    starts = notes[:, 0]
    groups = onset_groups(starts)
    sizes = np.bincount(groups)
    onset_times = np.array([starts[groups == g][0] for g in range(len(sizes))])
    velocity = notes[:, 3]
    return {
        "pitch_classes": float(muspy.n_pitch_classes_used(music)),
        "out_of_scale": float(1.0 - muspy.scale_consistency(music)),
        "pitch_class_entropy": float(muspy.pitch_class_entropy(music)),
        "distinct_pitches": float(muspy.n_pitches_used(music)),
        "pitch_range": float(muspy.pitch_range(music)),
        "polyphony": float(muspy.polyphony(music)),
        "chord_share": float((sizes[groups] > 1).mean()),
        "notes_per_s": len(notes) / seconds,
        "duration": float(np.median(notes[:, 1] - notes[:, 0])),
        "ioi": float(np.median(np.diff(onset_times))) if len(onset_times) > 1 else float("nan"),
        "velocity_mean": float(velocity.mean()),
        "velocity_sd": float(velocity.std()),
    }


def midi_statistics(pm: pretty_midi.PrettyMIDI, seconds: float) -> dict[str, float]:
    """`clip_statistics` of the first `seconds` of `pm`."""
    return clip_statistics(notes_of(pm, seconds), seconds)


def kde(values: np.ndarray, grid: np.ndarray, floor: float) -> np.ndarray:
    """Gaussian kernel density of (N,) values on (G,) points, Scott's bandwidth (at least `floor`)."""
    h = max(float(np.std(values, ddof=1)) * len(values) ** (-1 / 5) if len(values) > 1 else 0.0, floor)
    z = (grid[:, None] - values[None, :]) / h
    return np.exp(-0.5 * z ** 2).sum(axis=1) / (len(values) * h * np.sqrt(2 * np.pi))


def overlapping_area(a: np.ndarray, b: np.ndarray, points: int = 2048) -> float:
    """OA in [0, 1] of the kernel densities of two sets of values (NaNs dropped); NaN if either set is empty.

    The bandwidth never falls below 1 % of the pooled spread (or 1e-3 when every value is the same), so a set whose
    values are all equal still has a density."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return float("nan")
    both = np.concatenate([a, b])
    floor = max(0.01 * float(np.ptp(both)), 1e-3)
    hs = [max(float(np.std(x, ddof=1)) * len(x) ** (-1 / 5) if len(x) > 1 else 0.0, floor) for x in (a, b)]
    grid = np.linspace(both.min() - 4 * max(hs), both.max() + 4 * max(hs), points)
    overlap = np.minimum(kde(a, grid, floor), kde(b, grid, floor))
    return float(min(1.0, np.trapezoid(overlap, grid)))
