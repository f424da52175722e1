"""moodgen.keys: naming, transposing and finding keys, and the mood -> key prior."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from moodgen.keys import (
    MAJOR_PROFILE,
    MINOR_PROFILE,
    N_KEYS,
    estimate_key,
    fit_key_prior,
    key_correlations,
    key_name,
    key_probabilities,
    parse_key,
    sample_keys,
    transpose_key,
)


def test_names_round_trip_and_bad_names():
    assert [parse_key(key_name(k)) for k in range(N_KEYS)] == list(range(N_KEYS))
    assert key_name(9 + 12) == "A minor" and key_name(3) == "Eb major"
    with pytest.raises(ValueError, match="write it like 'C major'"):
        parse_key("H dorian")
    with pytest.raises(ValueError, match="key index must be in"):
        key_name(24)


def test_transpose_keeps_mode_and_wraps():
    assert transpose_key(parse_key("A minor"), 3) == parse_key("C minor")
    assert transpose_key(parse_key("B major"), 1) == parse_key("C major")
    assert transpose_key(parse_key("C major"), -1) == parse_key("B major")


def scale_histogram(tonic: int, minor: bool) -> np.ndarray:
    steps = [0, 2, 3, 5, 7, 8, 11] if minor else [0, 2, 4, 5, 7, 9, 11]  # harmonic minor / major scale
    pcs = np.zeros(12)
    pcs[[(tonic + s) % 12 for s in steps]] = 1.0
    pcs[tonic] += 1.0  # the tonic is heard most
    return pcs


@pytest.mark.parametrize("tonic", range(12))
def test_estimate_key_finds_scales(tonic):
    assert estimate_key(scale_histogram(tonic, minor=False)) == tonic
    assert estimate_key(scale_histogram(tonic, minor=True)) == tonic + 12
    assert estimate_key(np.roll(MINOR_PROFILE, tonic)) == tonic + 12
    assert estimate_key(np.roll(MAJOR_PROFILE, tonic)) == tonic


def test_silence_has_no_key_preference():
    assert np.array_equal(key_correlations(np.zeros(12)), np.zeros(N_KEYS))


def test_prior_fit_recovers_a_mood_to_mode_link():
    gen = torch.Generator().manual_seed(0)
    mood = torch.rand(400, 2, generator=gen) * 2 - 1
    keys = torch.where(mood[:, 0] > 0, parse_key("G major"), parse_key("E minor"))
    weight = fit_key_prior(mood, keys)
    p = key_probabilities(weight, torch.tensor([[0.8, 0.0], [-0.8, 0.0]]))
    assert p.shape == (2, N_KEYS) and torch.allclose(p.sum(1), torch.ones(2))
    assert p[0, parse_key("G major")] > 0.9 and p[1, parse_key("E minor")] > 0.9


def test_sample_keys_is_seeded_and_follows_the_prior():
    weight = torch.zeros(N_KEYS, 4)
    weight[parse_key("D major"), 1] = 10.0
    mood = torch.tensor([[0.9, 0.0]] * 64 + [[-0.9, 0.0]] * 64)
    a, b = sample_keys(weight, mood, seed=5), sample_keys(weight, mood, seed=5)
    assert a.shape == (128,) and a.dtype == torch.int64 and torch.equal(a, b)
    assert (a[:64] == parse_key("D major")).float().mean() > 0.95
    assert (a[64:] == parse_key("D major")).float().mean() < 0.2  # negative valence: nearly uniform over 24 keys
    assert not torch.equal(a, sample_keys(weight, mood, seed=6))
