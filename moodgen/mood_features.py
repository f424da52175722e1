"""Hand-made valence cues read off a normalized log-mel: mode, harmony and register.

In real music valence shows in mode (major vs minor), in the chords and in register; the judge's CNN hears
loudness and tempo well (arousal) but mode poorly. These features give the judge's valence head that cue directly.
A 12-bin chroma is folded from the mel bands whose centre lies in [300, 2000] Hz: below ~300 Hz a 1024-point FFT
at 22.05 kHz cannot tell neighbouring semitones apart, and above 2 kHz mostly partials remain. Key fit uses the
Krumhansl-Kessler profiles (moodgen.keys); chord mode compares major and minor triad templates on half-second
blocks. Shapes: mel (M, T) in [-1, 1]; chroma weights (12, M); features (N_FEATURES,).
"""
from __future__ import annotations

import librosa
import numpy as np

from moodgen.config import MelParams
from moodgen.keys import MAJOR_PROFILE, MINOR_PROFILE

FEATURE_SET = "chroma-mode-1"  # bump when a formula below changes: judge files record the set they were fit on
FEATURE_NAMES = ("major_fit", "minor_fit", "mode", "key_clarity", "chord_mode", "major_chord_share",
                 "pitch_centroid", "level_db", *(f"interval_{k}" for k in range(1, 7)))
N_FEATURES = len(FEATURE_NAMES)
CHROMA_BAND_HZ = (300.0, 2000.0)
BLOCK_SECONDS = 0.5
MAJOR_TRIAD = np.array([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=float)
MINOR_TRIAD = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=float)


def _band_pitches(params: MelParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M,) centre frequency in Hz, centre as a MIDI pitch, and half the band's width in semitones."""
    edges = librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=params.fmax)
    centre = edges[1:-1]
    return centre, 12.0 * np.log2(centre / 440.0) + 69.0, 6.0 * np.log2(edges[2:] / edges[:-2])


def chroma_weights(params: MelParams) -> np.ndarray:
    """(12, M): how much of each mel band's power goes to each pitch class (0 = C); zero outside CHROMA_BAND_HZ
    and for bands wider than two semitones either side."""
    centre, pitch, half_width = _band_pitches(params)
    weights = np.zeros((12, params.n_mels))
    lo, hi = CHROMA_BAND_HZ
    for m in np.flatnonzero((centre >= lo) & (centre <= hi) & (half_width <= 2.0)):
        distance = (pitch[m] - np.arange(12) + 6.0) % 12.0 - 6.0  # semitones to each pitch class, in [-6, 6)
        weights[:, m] = np.exp(-0.5 * (distance / max(0.5 * half_width[m], 0.25)) ** 2)
    return weights


def _rotations(profile: np.ndarray) -> np.ndarray:
    """(12, 12) z-scored profile rotated to each tonic."""
    rows = np.stack([np.roll(profile, k) for k in range(12)])
    return (rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)


def _correlations(chroma: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """(..., 12) chroma -> (..., 12) Pearson correlation with `profile` in each of the 12 transpositions."""
    z = (chroma - chroma.mean(-1, keepdims=True)) / (chroma.std(-1, keepdims=True) + 1e-12)
    return z @ _rotations(profile).T / 12.0


def valence_features(mel: np.ndarray, params: MelParams, weights: np.ndarray) -> np.ndarray:
    """(M, T) normalized log-mel -> (N_FEATURES,) cues in FEATURE_NAMES order; `weights` from `chroma_weights`."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2 or mel.shape[0] != weights.shape[1]:
        raise ValueError(f"expected a ({weights.shape[1]}, T) mel, got shape {mel.shape}")
    db = (np.clip(mel, -1.0, 1.0) + 1.0) / 2.0 * (params.db_max - params.db_min) + params.db_min
    power = 10.0 ** (db / 10.0)
    chroma = weights @ power  # (12, T)
    mean = chroma.mean(1)
    major, minor = _correlations(mean, MAJOR_PROFILE).max(), _correlations(mean, MINOR_PROFILE).max()
    block = max(int(round(BLOCK_SECONDS * params.frames_per_second)), 1)
    n_blocks = max(chroma.shape[1] // block, 1)
    usable = chroma[:, :n_blocks * block] if chroma.shape[1] >= block else chroma
    blocks = usable.reshape(12, n_blocks, -1).mean(2).T  # (n_blocks, 12)
    energy = blocks.sum(1)
    share = energy / energy.sum() if energy.sum() > 0 else np.full(n_blocks, 1.0 / n_blocks)
    chord_major = _correlations(blocks, MAJOR_TRIAD).max(1)
    chord_minor = _correlations(blocks, MINOR_TRIAD).max(1)
    # how often two pitch classes k semitones apart sound together (1, 2, 6: dissonant; 3, 4, 5: consonant)
    normed = blocks / (blocks.sum(1, keepdims=True) + 1e-12)
    intervals = [float(share @ (normed * np.roll(normed, k, axis=1)).sum(1)) for k in range(1, 7)]
    _, pitch, _ = _band_pitches(params)
    return np.array([major, minor, major - minor, max(major, minor), share @ (chord_major - chord_minor),
                     share @ (chord_major > chord_minor), (pitch @ power.sum(1)) / max(power.sum(), 1e-30),
                     db.mean(), *intervals])
