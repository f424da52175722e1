"""Measures of musical structure in audio: how often the harmony moves, how often new pitch classes enter, how
varied the rhythm is, how much the sound changes from beat to beat. Regular pulses over a sustained chord score
near zero on each; real piano music does not. Pure functions of (S,) audio at a sample rate; S samples, T frames.

Pitch-class *variety* (how many strong pitch classes sound in a 1 s window) was tried and dropped: a sustained
triad scores 3, inside the range of real EMOPIA clips (1.9-3.3 on four of them); *turnover* (strong pitch classes that
were not strong in the previous window) separates them.
"""
from __future__ import annotations

import librosa
import numpy as np

HOP = 512  # 23 ms at 22.05 kHz: librosa's default for onsets and beats
BLOCK_S = 0.25  # chroma is compared between blocks this long (a frame-to-frame distance is mostly noise)
WINDOW_S = 1.0  # pitch-class turnover window
QUIET_DB = 40.0  # blocks this far below the clip's loudest block carry no pitch (decay tails, silence)
STRONG = 0.5  # a pitch class is strong in a window at >= this fraction of the window's strongest
FLOOR_DB = 80.0  # spectra are floored this far below their peak before comparing beats
IOI_BIN_FRAMES = 4  # inter-onset-interval bins of 4 onset frames (93 ms); see ioi_entropy
MIN_BEATS = 4  # with fewer beats found, spectra are compared every FALLBACK_BEAT_S instead
FALLBACK_BEAT_S = 0.5

MEASURES = ("chroma_change", "pitch_class_turnover", "ioi_entropy", "beat_spectral_change")


def structure_measures(y: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Four structure measures of a (S,) waveform (see MEASURES):

    - chroma_change: summed cosine distance between the constant-Q chroma of consecutive 1/4 s blocks, per second
      (0 when the pitch content never moves);
    - pitch_class_turnover: pitch classes per second that become strong in a 1 s window without being strong in
      the window before;
    - ioi_entropy: entropy in bits of the histogram of inter-onset intervals (0 for a regular pulse);
    - beat_spectral_change: mean absolute dB difference of the constant-Q spectrum between consecutive beats.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be (S,) mono, got shape {y.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio contains NaN or infinite samples")
    if len(y) < 2 * HOP:
        raise ValueError(f"audio is too short for structure measures: {len(y)} samples, need {2 * HOP}")
    duration = len(y) / sample_rate
    cqt = constant_q(y, sample_rate)
    chroma = librosa.feature.chroma_cqt(C=cqt, sr=sample_rate, bins_per_octave=36,
                                        n_octaves=cqt.shape[0] // 36, norm=None)
    power = (cqt ** 2).sum(axis=0)
    envelope = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=HOP)
    beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate, hop_length=HOP)[1]
    if len(beats) < MIN_BEATS:
        beats = np.arange(0, cqt.shape[1], max(1, round(FALLBACK_BEAT_S * sample_rate / HOP)))
    return {
        "chroma_change": chroma_change(chroma, power, frames(BLOCK_S, sample_rate)) / duration,
        "pitch_class_turnover": pitch_class_turnover(chroma, power, frames(WINDOW_S, sample_rate)) / duration,
        "ioi_entropy": ioi_entropy(onsets),
        "beat_spectral_change": beat_spectral_change(cqt, beats),
    }


def frames(seconds: float, sample_rate: int) -> int:
    return max(1, round(seconds * sample_rate / HOP))


def constant_q(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """(36 * octaves, T) constant-Q magnitude from C1, 3 bins per semitone, as many octaves (<= 7) as fit below
    Nyquist (the same transform librosa's chroma_cqt runs)."""
    octaves = min(7, int(np.log2(sample_rate / 2 / librosa.note_to_hz("C1"))) - 1)
    return np.abs(librosa.cqt(y, sr=sample_rate, hop_length=HOP, fmin=librosa.note_to_hz("C1"),
                              n_bins=36 * octaves, bins_per_octave=36))


def blocks(x: np.ndarray, size: int) -> np.ndarray:
    """(..., T) -> (..., T // size) sums over consecutive blocks of `size` frames (a partial last block dropped)."""
    n = x.shape[-1] // size
    return x[..., : n * size].reshape(*x.shape[:-1], n, size).sum(axis=-1)


def loud_blocks(power: np.ndarray, size: int) -> np.ndarray:
    """(T,) frame energy -> (T // size,) bool: the block is within QUIET_DB of the loudest block (digital silence
    is never loud)."""
    energy = blocks(power, size)
    return (energy > 0) & (10 * np.log10(energy + 1e-30) >= 10 * np.log10(energy.max() + 1e-30) - QUIET_DB)


def chroma_change(chroma: np.ndarray, power: np.ndarray, block: int) -> float:
    """Summed cosine distance between consecutive blocks of a (12, T) chroma; pairs with a quiet block count 0.
    `power`: (T,) frame energy."""
    c, loud = blocks(chroma, block), loud_blocks(power, block)
    if c.shape[1] < 2:
        return 0.0
    norms = np.linalg.norm(c, axis=0) + 1e-12
    cosine = (c[:, 1:] * c[:, :-1]).sum(axis=0) / (norms[1:] * norms[:-1])
    return float(np.where(loud[1:] & loud[:-1], 1.0 - cosine, 0.0).sum())


def pitch_class_turnover(chroma: np.ndarray, power: np.ndarray, window: int) -> float:
    """Count of pitch classes strong in one window of a (12, T) chroma and not in the window before; quiet windows
    have none. `power`: (T,) frame energy."""
    c = blocks(chroma, window)
    strong = (c >= STRONG * c.max(axis=0, keepdims=True)) & loud_blocks(power, window)
    return float((strong[:, 1:] & ~strong[:, :-1]).sum())


def ioi_entropy(onset_frames: np.ndarray) -> float:
    """Entropy (bits) of the inter-onset intervals' histogram, bins IOI_BIN_FRAMES onset frames wide.

    Onset detection jitters by a frame, so a steady pulse's intervals can straddle a bin edge; the histogram is
    taken at every bin phase and the lowest entropy kept, which gives a steady pulse (detected within a frame) 0 bits
    at any tempo."""
    intervals = np.diff(np.asarray(onset_frames))
    if len(intervals) < 2:
        return 0.0
    best = np.inf
    for phase in range(IOI_BIN_FRAMES):
        counts = np.unique((intervals + phase) // IOI_BIN_FRAMES, return_counts=True)[1]
        p = counts / counts.sum()
        best = min(best, float(-(p * np.log2(p)).sum()))
    return best + 0.0  # -0.0 -> 0.0


def beat_spectral_change(cqt: np.ndarray, beats: np.ndarray) -> float:
    """Mean absolute dB difference between the mean (F, T) spectra of consecutive beat segments."""
    db = librosa.amplitude_to_db(cqt, ref=1.0)
    db = np.maximum(db, db.max() - FLOOR_DB)
    segments = librosa.util.sync(db, np.asarray(beats, dtype=int), aggregate=np.mean)
    if segments.shape[1] < 2:
        return 0.0
    return float(np.abs(np.diff(segments, axis=1)).mean())


def structure_summary(values: list[dict[str, float]], groups: list[str]) -> dict[str, dict[str, float]]:
    """Mean +- standard error of each measure over clips, each group (preset or quadrant) weighted equally, so a
    real row with unequal quadrant counts compares with generated rows of equal ones. No clips: {}."""
    out = {}
    for name in MEASURES if values else ():
        by_group = [np.array([v[name] for v, g in zip(values, groups) if g == group]) for group in sorted(set(groups))]
        means = [x.mean() for x in by_group]
        variances = [x.var(ddof=1) / len(x) if len(x) > 1 else np.nan for x in by_group]
        out[name] = {"mean": float(np.mean(means)), "se": float(np.sqrt(np.sum(variances)) / len(by_group)),
                     "n": int(sum(len(x) for x in by_group))}
    return out
