"""The note sampler's options (moodgen.note_model.SamplerConfig): each does what it says on a tiny random model, keeps
what it should keep, stays seeded, and is recorded with the clip."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import tiny_note_model

from moodgen.config import RollParams
from moodgen.keys import in_scale
from moodgen.note_model import PLAIN, NoteSampler, SamplerConfig, sample_roll
from moodgen.pipeline import MoodPipeline

PITCHES = RollParams().lowest_pitch + np.arange(RollParams().n_keys)
MOOD = torch.tensor([[0.6, 0.6], [-0.6, -0.6]])
KEYS = torch.tensor([0, 21])  # C major, A minor


def out_of_scale_share(onset: np.ndarray, keys) -> float:
    """onset (B, T, K) -> the share of onsets outside their clip's key scale."""
    outside = ~in_scale(np.asarray(keys), PITCHES)[:, None, :]
    return float(((onset > 0) & outside).sum() / (onset > 0).sum())


def test_in_scale():
    c_major = in_scale(np.array([0]), np.arange(60, 72))[0]
    np.testing.assert_array_equal(np.nonzero(c_major)[0], [0, 2, 4, 5, 7, 9, 11])
    a_minor = in_scale(np.array([21]), np.arange(60, 72))[0]
    np.testing.assert_array_equal(a_minor, c_major)  # the relative minor shares the notes
    with pytest.raises(ValueError, match="key indices"):
        in_scale(np.array([24]), PITCHES)


def test_key_bias_lowers_the_out_of_scale_share():
    model = tiny_note_model(0, keys=True)
    shares = [out_of_scale_share(sample_roll(model, MOOD, 120, 1.5, seed=2, key=KEYS,
                                             sampler=replace(PLAIN, key_bias=bias))[1], KEYS) for bias in (0, 1, 4)]
    assert shares[0] > 0.3  # random weights: about 5 keys in 12 outside
    assert shares[0] > shares[1] > shares[2]
    assert shares[2] < 0.1


def test_key_bias_follows_the_key_of_each_frame():
    model = tiny_note_model(1, keys=True)
    sampler = NoteSampler(model, 1.5, seed=0, config=replace(PLAIN, key_bias=5.0))
    keys = np.repeat([0, 6], 80)  # C major, then F# major
    active, onset = sampler.run(160, sampler.frame_conditions(torch.tensor([[0.5, 0.5]]).repeat(160, 1),
                                                              torch.from_numpy(keys)), keys)
    assert out_of_scale_share(onset[:, :80], [0]) < 0.1 and out_of_scale_share(onset[:, 80:], [6]) < 0.1
    assert out_of_scale_share(onset[:, 80:], [0]) > 0.3
    with pytest.raises(ValueError, match="one per clip"):
        sampler.run(5, sampler.condition(torch.tensor([[0.5, 0.5]]), torch.tensor([0])), np.zeros(3, int))


def test_chord_correlation_keeps_each_keys_draw_uniform_and_makes_onsets_coincide():
    model = tiny_note_model(0, keys=True)
    draws = NoteSampler(model, 1.5, seed=0, config=replace(PLAIN, chord_correlation=0.5)).onset_uniforms(
        np.zeros((4000, 1, 88), np.float32))
    assert draws.min() >= 0 and draws.max() <= 1
    np.testing.assert_allclose(np.percentile(draws, [10, 50, 90]), [0.1, 0.5, 0.9], atol=0.01)  # marginals kept
    p = 0.1
    both = ((draws[:, 0, 0] < p) & (draws[:, 0, 1] < p)).mean()
    assert both > 2.5 * p * p  # independent draws: p * p
    independent = NoteSampler(model, 1.5, seed=0, config=PLAIN).onset_uniforms(np.full((3, 1, 88), 0.25, np.float32))
    assert (independent == 0.25).all()  # without a correlation the uniforms are used as they are


def chord_share(onset: np.ndarray) -> float:
    """Share of onsets that share their frame with another onset of the same clip."""
    counts = (onset > 0).sum(axis=2, keepdims=True)
    return float(((onset > 0) & (counts > 1)).sum() / (onset > 0).sum())


def test_chord_correlation_raises_the_chord_share():
    model = tiny_note_model(0, keys=True)
    with torch.no_grad():
        model.out[-1].bias[:88] = -6.0  # sparse onsets, so that few frames have two by chance
    plain = sample_roll(model, MOOD, 200, 1.5, seed=3, key=KEYS)[1]
    joint = sample_roll(model, MOOD, 200, 1.5, seed=3, key=KEYS, sampler=replace(PLAIN, chord_correlation=0.6))[1]
    assert chord_share(joint) > chord_share(plain) + 0.1  # (note counts may drift: the model hears its chords)


def test_velocity_spread_and_dynamics_widen_velocities_around_the_same_mean():
    model = tiny_note_model(0, keys=True)
    plain = sample_roll(model, MOOD, 200, 1.5, seed=4, key=KEYS)[1]
    spread = sample_roll(model, MOOD, 200, 1.5, seed=4, key=KEYS,
                         sampler=replace(PLAIN, velocity_spread=10.0, dynamics_spread=6.0))[1]
    v0, v1 = plain[plain > 0].astype(float), spread[spread > 0].astype(float)
    assert 0.6 * (10 ** 2 + 6 ** 2) < v1.var() - v0.var() < 1.4 * (10 ** 2 + 6 ** 2)  # independent spreads add
    assert abs(v1.mean() - v0.mean()) < 5
    assert v1.min() >= 1 and v1.max() <= 127


def test_every_option_is_seeded():
    model = tiny_note_model(2, keys=True)
    config = SamplerConfig(key_bias=2.0, chord_correlation=0.4, velocity_spread=8.0, dynamics_spread=5.0)
    a, b, c = (sample_roll(model, MOOD, 60, 1.5, seed=s, key=KEYS, sampler=config) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_plain_is_the_sampler_the_model_was_trained_for():
    assert PLAIN.key_bias == PLAIN.chord_correlation == PLAIN.velocity_spread == PLAIN.dynamics_spread == 0
    model = tiny_note_model(2, keys=True)
    np.testing.assert_array_equal(sample_roll(model, MOOD, 40, 1.5, seed=1, key=KEYS, sampler=PLAIN)[1],
                                  sample_roll(model, MOOD, 40, 1.5, seed=1, key=KEYS)[1])


@pytest.mark.parametrize("bad", [{"key_bias": -1.0}, {"chord_correlation": 1.0}, {"velocity_spread": -2.0},
                                 {"dynamics_seconds": 0.0}, {"guidance": -1.0}])
def test_config_checks(bad):
    with pytest.raises(ValueError):
        SamplerConfig(**bad)


def test_the_settings_are_recorded_with_the_clip(tiny_checkpoints, tmp_path):
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints)
    g = pipe.generate(0.5, 0.5, seconds=2.0, seed=0, engine="notes")
    g.save(tmp_path / "clip.wav")
    record = json.loads((tmp_path / "clip.json").read_text())["render"]["sampler"]
    assert record == pipe.engine("notes").sampler_config.record()
    assert set(record) == {"key_bias", "chord_correlation", "velocity_spread", "dynamics_spread", "dynamics_seconds",
                           "guidance"}
    assert g.guidance == record["guidance"]  # the settings' guidance is the engine's default


def test_without_a_guidance_setting_the_checkpoints_applies(tiny_checkpoints):
    eng = MoodPipeline.from_checkpoint(tiny_checkpoints).engine("notes")
    exported = eng.checkpoint_guidance
    eng.sampler_config = replace(eng.sampler_config, guidance=None)
    assert eng.default_guidance == exported
    eng.sampler_config = replace(eng.sampler_config, guidance=exported + 1.0)
    assert eng.default_guidance == exported + 1.0
