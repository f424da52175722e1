"""Simple, interpretable mood correlates of a piece, and continuous (valence, arousal) labels derived from them.

EMOPIA labels only the quadrant. Each clip gets a continuous point inside its human-labelled quadrant: the sign of
each axis is the human label; the magnitude is the clip's rank, among clips with the same sign, on a score computed
from the music (arousal: note rate and loudness; valence: fit to a major key profile). The human quadrant is never
overridden. `benchmarks/studies/label_derivation.py` measures how well the scores agree with human labels
(docs/labels.md).
"""
from __future__ import annotations

import numpy as np
import pretty_midi

from moodgen.keys import key_profile_scores

MAGNITUDE_RANGE = (0.15, 0.95)  # continuous labels stay clear of the axes and of the pad's edge
LABELS_VERSION = 2  # bump when a score formula changes: train.prepare then re-derives labels (no re-render)


def midi_features(pm: pretty_midi.PrettyMIDI) -> dict[str, float]:
    """Mood correlates of a (sustain-applied) MIDI: rates per second, velocities 0..127, MIDI pitches."""
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        raise ValueError("no pitched notes")
    start = min(n.start for n in notes)
    end = max(n.end for n in notes)
    duration = max(end - start, 1e-3)
    onsets = np.unique(np.round([n.start for n in notes], 2))
    pcs = np.zeros(12)
    for n in notes:
        pcs[n.pitch % 12] += (n.end - n.start) * n.velocity
    major, minor = key_profile_scores(pcs)
    velocities = np.array([n.velocity for n in notes], dtype=float)
    pitches = np.array([n.pitch for n in notes], dtype=float)
    sounding = sum(n.end - n.start for n in notes)
    iois = np.diff(onsets)
    return {
        "duration_s": duration,
        "note_rate": len(notes) / duration,
        "onset_rate": len(onsets) / duration,
        "median_ioi_s": float(np.median(iois)) if len(iois) else duration,
        "velocity_mean": float(velocities.mean()),
        "velocity_std": float(velocities.std()),
        "pitch_mean": float(pitches.mean()),
        "pitch_std": float(pitches.std()),
        "polyphony": sounding / duration,
        "major_corr": major,
        "minor_corr": minor,
        "mode": major - minor,
        "key_clarity": max(major, minor),
    }


def _z(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def arousal_score(feats: list[dict[str, float]]) -> np.ndarray:
    """Higher = more energetic: z(log onset rate) + z(mean velocity), over the given set of pieces."""
    rate = np.log(np.array([f["onset_rate"] for f in feats]) + 1e-3)
    vel = np.array([f["velocity_mean"] for f in feats])
    return _z(rate) + _z(vel)


def valence_score(feats: list[dict[str, float]]) -> np.ndarray:
    """Higher = more positive: z(major key correlation) + z(major-minus-minor key correlation).

    Register (mean pitch) is left out: on EMOPIA train it does not separate the valence signs (AUC 0.48).
    """
    major = np.array([f["major_corr"] for f in feats])
    mode = np.array([f["mode"] for f in feats])
    return _z(major) + _z(mode)


def _rank01(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (a single value gets 0.5)."""
    if len(values) == 1:
        return np.array([0.5])
    return np.argsort(np.argsort(values, kind="stable"), kind="stable") / (len(values) - 1)


def place_in_quadrant(score: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Continuous values whose sign is `signs` (+1/-1, the human label) and whose magnitude follows `score`.

    Among items with sign +1 a higher score moves further out; among items with sign -1 a higher score moves
    towards the axis. Magnitudes span MAGNITUDE_RANGE by rank, so the result is robust to score outliers.
    """
    lo, hi = MAGNITUDE_RANGE
    out = np.zeros(len(score))
    for sign in (+1, -1):
        mask = signs == sign
        if mask.any():
            r = _rank01(score[mask])
            out[mask] = sign * (lo + (hi - lo) * (r if sign > 0 else 1.0 - r))
    return out
