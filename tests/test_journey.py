"""Journeys, continuations and loops on the tiny checkpoint, and the pure parts of moodgen.journey."""
from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pretty_midi
import pytest

from moodgen.config import Limits, MelParams
from moodgen.joins import close_loop, declick
from moodgen.journey import (
    KeyState,
    follow_keys,
    key_changes,
    mood_curve,
    parse_path,
    preset_path,
    validate_waypoints,
)
from moodgen.keys import parse_key
from moodgen.pipeline import MoodPipeline

SR = MelParams().sample_rate
PATH = [(0.0, -0.6, -0.6), (4.0, 0.7, 0.7), (10.0, -0.6, 0.8)]


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def within_own_jumps(audio: np.ndarray, at: int, percentile: float = 99.9) -> bool:
    """The sample jump between audio[at - 1] and audio[at] is no larger than the clip's own `percentile` jump."""
    jumps = np.abs(np.diff(audio.astype(np.float64)))
    return abs(float(audio[at]) - float(audio[at - 1])) <= np.percentile(jumps, percentile) + 1e-9


@pytest.mark.parametrize("waypoints, message", [
    ([(0, 0, 0)], "at least two"),
    ([(0, 0, 0), (0, 0.5, 0.5)], "waypoint 2: times must increase, got 0 s after 0 s"),
    ([(0, 0, 0), (20, 0.5, 0.5), (15, 0, 0)], "waypoint 3: times must increase"),
    ([(0, 0, 0), (20, float("nan"), 0)], "waypoint 2: valence must be a number in .-1, 1., got NaN"),
    ([(0, 0, 0), (20, 0, 1.5)], "waypoint 2: arousal must be in .-1, 1., got 1.5"),
    ([(0, 0, 0), (float("nan"), 0, 0)], "waypoint 2 seconds must be a number .* got NaN"),
    ([(-1, 0, 0), (20, 0, 0)], "waypoint 1 seconds must be between 0 and 600"),
    ([(0, 0, 0), (601, 0, 0)], "waypoint 2 seconds must be between 0 and 600, got 601"),
    ([(0, 0, 0), (5, 0, 0)], "journey length .the last waypoint's time. must be between 10 and 600, got 5"),
    ([(0, 0)], "at least two"),
    ([(0, 0), (20, 0, 0)], r"waypoint 1 must be \(seconds, valence, arousal\), got \(0, 0\)"),
    (5, "waypoints must be a list"),
])
def test_bad_waypoints_name_the_value(waypoints, message):
    with pytest.raises(ValueError, match=message):
        validate_waypoints(waypoints, Limits())


def test_paths_and_presets_parse():
    assert parse_path("0:-0.6,-0.6 30:0.7,0.7") == [(0.0, -0.6, -0.6), (30.0, 0.7, 0.7)]
    with pytest.raises(ValueError, match="--path: '30:0.7' is not seconds:valence,arousal"):
        parse_path("0:0,0 30:0.7")
    assert preset_path("sad,relaxed,happy", 90) == [(0.0, -0.7, -0.7), (45.0, 0.7, -0.7), (90.0, 0.7, 0.7)]
    with pytest.raises(ValueError, match="at least two presets"):
        preset_path("sad", 90)
    with pytest.raises(ValueError, match="unknown preset 'gloomy'"):
        preset_path("sad,gloomy", 90)


def test_mood_curve_passes_the_waypoints_smoothly():
    curve = mood_curve(PATH, 161, 16.0)
    assert curve.shape == (161, 2)
    for t, v, a in PATH:
        np.testing.assert_allclose(curve[int(t * 16)], [v, a], atol=1e-6)
    assert np.all(np.diff(curve[:64, 1]) >= 0)  # no overshoot between waypoints
    steps = np.abs(np.diff(curve, axis=0)).max(axis=0)
    assert steps.max() <= 1.5 * 1.3 / 64 + 1e-9  # smoothstep: at most 1.5x the mean slope, no lurch
    assert abs(curve[1, 0] - curve[0, 0]) < 0.01  # eases out of a waypoint
    held = mood_curve(PATH, 200, 16.0)
    np.testing.assert_allclose(held[-1], [-0.6, 0.8], atol=1e-6)  # holds after the last waypoint


def test_keys_follow_valence_with_hysteresis_at_phrase_boundaries():
    rate = 16.0
    c_major = parse_key("C major")
    valence = np.concatenate([np.full(40, 0.5), np.full(10, -0.1), np.full(30, -0.5), np.full(60, 0.05)])
    keys, state = follow_keys(valence, KeyState.start(c_major, 0.5), rate)
    changes = key_changes(keys, rate)
    # -0.1 is inside the hysteresis band: no change; -0.5 from frame 50 -> C minor at the next 2 s boundary (64);
    # +0.05 never passes the band, so the key stays minor
    assert changes == [(0.0, c_major), (4.0, parse_key("C minor"))]
    assert state.frame == len(valence) and state.side == -1
    drawn_minor, _ = follow_keys(np.full(100, 0.7), KeyState.start(parse_key("A minor"), 0.7), rate)
    assert set(drawn_minor) == {parse_key("A minor")}  # a key drawn against the mood stays until valence crosses
    split = follow_keys(valence[:45], KeyState.start(c_major, 0.5), rate)
    rest = follow_keys(valence[45:], split[1], rate)
    assert np.array_equal(np.concatenate([split[0], rest[0]]), keys)  # continuing gives the same keys


def test_declick_and_close_loop_leave_no_jump():
    t = np.arange(4000) / SR
    head, tail = np.sin(2 * np.pi * 220 * t[:2000]), 0.5 + np.sin(2 * np.pi * 220 * t[2000:] + 1.0)
    joined = np.concatenate([head, declick(head, tail.astype(np.float32), SR)])
    assert within_own_jumps(joined, 2000)
    assert np.allclose(joined[2000 + int(0.005 * SR) + 1:], tail[int(0.005 * SR) + 1:])  # only the fade changes
    y = np.sin(2 * np.pi * 3.3 * np.arange(6000) / 1000).astype(np.float32)
    loop = close_loop(y, 5000, 500)
    assert len(loop) == 5000 and within_own_jumps(np.concatenate([loop, loop]), 5000)
    with pytest.raises(ValueError, match="a loop needs 5500 samples"):
        close_loop(y[:5200], 5000, 500)


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_journey_length_curve_keys_and_determinism(pipe, engine):
    j = pipe.journey(PATH, seed=3, engine=engine)
    eng = pipe.engine(engine)
    assert j.audio.shape == (10 * SR,) and j.seconds == 10.0 and j.waypoints == tuple(PATH)
    assert j.curve.shape == (eng.frames_for(10.0), 2) and j.frame_rate == eng.frame_rate
    for t, v, a in PATH[:2]:
        np.testing.assert_allclose(j.curve[int(round(t * eng.frame_rate))], [v, a], atol=0.02)
    assert (j.valence, j.arousal) == pytest.approx((-0.6, 0.8), abs=0.02)  # where it ends
    # the tiny prior draws A minor for the first (negative) mood; valence crosses to +0.7 and back
    assert [k for _, k in j.key_changes] == ["A minor", "A major", "A minor"]
    assert j.key == "A minor"
    params = j.params()
    assert params["waypoints"] == [list(p) for p in PATH] and params["loop"] is False
    assert params["mood_curve"][0] == [0.0, -0.6, -0.6] and params["key_changes"][1][1] == "A major"
    if eng.makes_midi:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(j.midi))
        assert [k.key_number for k in pm.key_signature_changes] == [parse_key(k) for _, k in j.key_changes]
        assert pm.instruments[0].notes
    else:
        assert j.midi is None and j.mel.shape == (MelParams().n_mels, j.curve.shape[0])
    again = pipe.journey(PATH, seed=3, engine=engine)
    assert np.array_equal(again.audio, j.audio)
    assert not np.array_equal(pipe.journey(PATH, seed=4, engine=engine).audio, j.audio)


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_extend_keeps_the_first_part_and_joins_without_a_jump(pipe, engine):
    clip = pipe.generate(0.6, 0.6, seconds=3.0, seed=5, engine=engine)
    longer = pipe.extend(clip, 4.0, valence=-0.7)
    n = len(clip.audio)
    assert longer.audio.shape == (7 * SR,) and longer.seconds == 7.0
    assert np.array_equal(longer.audio[:n], clip.audio)  # the first part, sample for sample
    assert within_own_jumps(longer.audio, n)
    assert longer.extensions == ({"seconds": 4.0, "valence": -0.7, "arousal": None},)  # as asked, to remake it
    assert longer.curve[0].tolist() == [0.6, 0.6] and longer.curve[-1].tolist() == [-0.7, 0.6]
    assert (longer.valence, longer.arousal) == (-0.7, 0.6)
    assert [k for _, k in longer.key_changes] == ["C major", "C minor"]  # in its key until valence crosses
    twice = pipe.extend(longer, 3.0)
    assert np.array_equal(twice.audio[:len(longer.audio)], longer.audio) and len(twice.extensions) == 2
    assert np.array_equal(pipe.extend(clip, 4.0, valence=-0.7).audio, longer.audio)  # deterministic


def test_extend_refuses_what_it_cannot_continue(pipe, tiny_checkpoints):
    clip = pipe.generate(0.1, 0.1, seconds=2.0, seed=1)
    with pytest.raises(ValueError, match="seconds must be between 1 and 600"):
        pipe.extend(clip, 0.5)
    with pytest.raises(ValueError, match="valence must be in"):
        pipe.extend(clip, 2.0, valence=3.0)
    with pytest.raises(ValueError, match="would last 601 s, over the 600 s limit"):
        pipe.extend(replace(clip, seconds=599.0), 2.0)
    other = MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")
    other.engines_by_name["notes"].sha256 = "0" * 64
    with pytest.raises(ValueError, match="generation: made with checkpoint"):
        other.extend(clip, 2.0)


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_loops_flow_from_end_to_start(pipe, engine):
    loop = pipe.generate(0.5, 0.5, seconds=4.0, seed=2, engine=engine, loop=True)
    eng = pipe.engine(engine)
    frames = int(round(4.0 * eng.frame_rate))
    assert abs(len(loop.audio) - 4 * SR) <= MelParams().hop_length and loop.loop and loop.params()["loop"]
    assert np.abs(loop.audio).max() > 0
    assert within_own_jumps(np.concatenate([loop.audio, loop.audio]), len(loop.audio))
    assert loop.curve.shape == (frames, 2)
    if eng.makes_midi:
        texts = {t.text: t.time for t in pretty_midi.PrettyMIDI(io.BytesIO(loop.midi)).text_events}
        assert texts == {"loopStart": 0.0, "loopEnd": pytest.approx(4.0)}
    plain = pipe.generate(0.5, 0.5, seconds=4.0, seed=2, engine=engine)
    assert not plain.loop and "loop" not in plain.params()  # the old clip and its JSON, unchanged
    j = pipe.journey([(0, 0.5, 0.5), (10, -0.5, -0.5)], seed=1, engine=engine, loop=True)
    assert within_own_jumps(np.concatenate([j.audio, j.audio]), len(j.audio))
    assert math.isclose(j.seconds, 10.0)
