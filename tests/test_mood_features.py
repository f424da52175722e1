import numpy as np
import pytest

from moodgen import audio
from moodgen.config import MelParams
from moodgen.mood_features import FEATURE_NAMES, N_FEATURES, chroma_weights, valence_features

PARAMS = MelParams()
MODE, CHORD_MODE, CENTROID = (FEATURE_NAMES.index(n) for n in ("mode", "chord_mode", "pitch_centroid"))


def chord(root_midi: int, third: int, seconds: float = 3.0) -> np.ndarray:
    """A triad of plain tones with a few decaying partials, like a soft piano chord: (S,)."""
    t = np.arange(int(seconds * PARAMS.sample_rate)) / PARAMS.sample_rate
    y = np.zeros_like(t)
    for pitch in (root_midi, root_midi + third, root_midi + 7):
        f = 440.0 * 2 ** ((pitch - 69) / 12)
        y += sum(0.5 ** k * np.sin(2 * np.pi * f * (k + 1) * t) for k in range(3))
    return (0.1 * y / 3).astype(np.float32)


def cadence(tonic: int, third: int) -> np.ndarray:
    """I-IV-V-I in a major key (third 4) or i-iv-v-i in the natural minor (third 3), one second a chord."""
    return np.concatenate([chord(tonic + step, third, 1.0) for step in (0, 5, 7, 0)])


def cues(y: np.ndarray) -> np.ndarray:
    mel = audio.mel_from_audio(y, PARAMS).numpy()
    return valence_features(mel, PARAMS, chroma_weights(PARAMS))


@pytest.mark.parametrize("root", [60, 66, 71])
def test_major_and_minor_chords_have_opposite_chord_mode(root):
    major, minor = cues(chord(root, 4)), cues(chord(root, 3))
    assert major.shape == (N_FEATURES,) and np.isfinite(major).all()
    assert major[CHORD_MODE] > 0 > minor[CHORD_MODE]


@pytest.mark.parametrize("tonic", [64, 67, 72])  # the cues read 300-2000 Hz: tonic E4 and up
def test_major_and_minor_keys_have_opposite_mode(tonic):
    major, minor = cues(cadence(tonic, 4)), cues(cadence(tonic, 3))
    assert major[MODE] > 0 > minor[MODE]
    assert major[CHORD_MODE] > 0 > minor[CHORD_MODE]


def test_register_follows_pitch():
    assert cues(chord(72, 4))[CENTROID] > cues(chord(55, 4))[CENTROID] + 6


def test_chroma_weights_cover_only_resolvable_bands():
    w = chroma_weights(PARAMS)
    assert w.shape == (12, PARAMS.n_mels) and (w >= 0).all()
    assert 0 < np.count_nonzero(w.sum(0)) < PARAMS.n_mels  # the bass and the top bands are left out


def test_silence_and_bad_shapes():
    silent = np.full((PARAMS.n_mels, 50), -1.0, dtype=np.float32)
    assert np.isfinite(valence_features(silent, PARAMS, chroma_weights(PARAMS))).all()
    with pytest.raises(ValueError, match="mel"):
        valence_features(silent[:10], PARAMS, chroma_weights(PARAMS))
