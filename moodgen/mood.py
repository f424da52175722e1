"""Mood points on the valence/arousal plane: presets, Russell quadrants, scale conversions, input validation."""
from __future__ import annotations

import math
from dataclasses import dataclass

from moodgen.config import shown


@dataclass(frozen=True)
class Quadrant:
    number: int  # EMOPIA's Q1..Q4
    name: str
    valence_sign: int
    arousal_sign: int


QUADRANTS = (
    Quadrant(1, "happy", +1, +1),
    Quadrant(2, "angry", -1, +1),
    Quadrant(3, "sad", -1, -1),
    Quadrant(4, "relaxed", +1, -1),
)
PRESET_DISTANCE = 0.7  # presets sit on the diagonals, well inside each quadrant
PRESETS: dict[str, tuple[float, float]] = {
    q.name: (q.valence_sign * PRESET_DISTANCE, q.arousal_sign * PRESET_DISTANCE) for q in QUADRANTS
}


def validate_mood(valence: float, arousal: float) -> tuple[float, float]:
    """Return (valence, arousal) as floats, or raise ValueError naming the bad value."""
    out = []
    for name, value in (("valence", valence), ("arousal", arousal)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number in [-1, 1], got {shown(value)}") from None
        if math.isnan(v):
            raise ValueError(f"{name} must be a number in [-1, 1], got NaN")
        if not -1.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [-1, 1], got {v}")
        out.append(v)
    return out[0], out[1]


def quadrant_of(valence: float, arousal: float) -> Quadrant:
    """The Russell quadrant containing the point; points on an axis go to the positive side."""
    v_sign = 1 if valence >= 0 else -1
    a_sign = 1 if arousal >= 0 else -1
    return next(q for q in QUADRANTS if q.valence_sign == v_sign and q.arousal_sign == a_sign)


def quadrant_by_number(number: int) -> Quadrant:
    for q in QUADRANTS:
        if q.number == number:
            return q
    raise ValueError(f"quadrant must be 1..4, got {number!r}")


def preset(name: str) -> tuple[float, float]:
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {shown(name)}; choose one of {', '.join(PRESETS)}") from None


def from_deam_scale(x: float) -> float:
    """DEAM's 1..9 SAM rating -> [-1, 1]."""
    return (x - 5.0) / 4.0


def to_deam_scale(x: float) -> float:
    """[-1, 1] -> DEAM's 1..9 SAM rating."""
    return x * 4.0 + 5.0


def to_unit_scale(x: float) -> float:
    """[-1, 1] -> [0, 1], the scale the seed project reported its MAE on."""
    return (x + 1.0) / 2.0
