"""Presets, quadrants, scale conversions and input validation of moodgen.mood."""
import math

import numpy as np
import pytest

from moodgen.mood import (
    PRESETS,
    QUADRANTS,
    from_deam_scale,
    preset,
    quadrant_by_number,
    quadrant_of,
    to_deam_scale,
    to_unit_scale,
    validate_mood,
)

EXPECTED_QUADRANT = {"happy": 1, "angry": 2, "sad": 3, "relaxed": 4}


@pytest.mark.parametrize("name, number", EXPECTED_QUADRANT.items())
def test_presets_sit_inside_their_quadrant(name, number):
    v, a = preset(name)
    q = quadrant_by_number(number)
    assert (math.copysign(1, v), math.copysign(1, a)) == (q.valence_sign, q.arousal_sign)
    assert 0.0 < abs(v) < 1.0 and 0.0 < abs(a) < 1.0
    assert quadrant_of(v, a).number == number
    assert quadrant_of(v, a).name == name


def test_presets_cover_every_quadrant_once():
    assert sorted(quadrant_of(*p).number for p in PRESETS.values()) == [1, 2, 3, 4]


@pytest.mark.parametrize("v, a, number", [
    (0.5, 0.5, 1), (-0.5, 0.5, 2), (-0.5, -0.5, 3), (0.5, -0.5, 4),
    (0.0, 0.0, 1), (0.0, -0.1, 4), (-0.1, 0.0, 2), (1.0, -1.0, 4),
])
def test_quadrant_of(v, a, number):
    assert quadrant_of(v, a).number == number


def test_quadrant_by_number_refuses_unknown():
    assert [quadrant_by_number(q.number) for q in QUADRANTS] == list(QUADRANTS)
    with pytest.raises(ValueError, match="1..4"):
        quadrant_by_number(5)


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match="happy"):
        preset("ecstatic")


def test_deam_scale():
    assert from_deam_scale(1.0) == -1.0 and from_deam_scale(5.0) == 0.0 and from_deam_scale(9.0) == 1.0
    assert from_deam_scale(7.0) == pytest.approx((7.0 - 5.0) / 4.0)
    xs = np.linspace(1.0, 9.0, 17)
    assert np.allclose([to_deam_scale(from_deam_scale(x)) for x in xs], xs)
    assert np.allclose([from_deam_scale(to_deam_scale(x)) for x in np.linspace(-1, 1, 9)], np.linspace(-1, 1, 9))
    assert to_unit_scale(-1.0) == 0.0 and to_unit_scale(1.0) == 1.0


def test_validate_mood_accepts_and_converts():
    assert validate_mood(0.25, "-1") == (0.25, -1.0)
    assert validate_mood(np.float32(1.0), 0) == (1.0, 0.0)
    assert all(isinstance(x, float) for x in validate_mood(1, -1))


@pytest.mark.parametrize("valence, arousal, field, fragment", [
    (float("nan"), 0.0, "valence", "NaN"),
    (0.0, float("nan"), "arousal", "NaN"),
    (1.5, 0.0, "valence", "1.5"),
    (0.0, -1.01, "arousal", "-1.01"),
    (float("inf"), 0.0, "valence", "inf"),
    ("happy", 0.0, "valence", "happy"),
    (0.0, None, "arousal", "None"),
    (0.0, [0.1], "arousal", r"\[0.1\]"),
])
def test_validate_mood_refuses_with_the_field_named(valence, arousal, field, fragment):
    with pytest.raises(ValueError, match=rf"^{field}\b.*{fragment}"):
        validate_mood(valence, arousal)
