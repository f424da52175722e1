"""Pure audio functions: waveform <-> normalized log-mel, Griffin-Lim inversion, quality and loudness measures.

Every function takes the `MelParams` it needs; nothing is cached at module level. Shape notation used throughout:
S samples, F = n_fft/2+1 linear frequency bins, M mel bands, T frames, B batch.
"""
from __future__ import annotations

from typing import TypeVar

import librosa
import numpy as np
import torch

from moodgen.config import MelParams

ArrayLike = np.ndarray | torch.Tensor
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def mel_filterbank(params: MelParams, device: torch.device | str = "cpu") -> torch.Tensor:
    """Slaney-normalized mel filterbank, (M, F)."""
    fb = librosa.filters.mel(sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels,
                             fmin=params.fmin, fmax=params.fmax)
    return torch.from_numpy(fb).to(device)


def _window(params: MelParams, device: torch.device) -> torch.Tensor:
    return torch.hann_window(params.n_fft, device=device)


def stft(audio: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Complex STFT, (..., S) -> (..., F, T), centered, T = S // hop + 1."""
    return torch.stft(audio, params.n_fft, params.hop_length, window=_window(params, audio.device),
                      center=True, return_complex=True)


def istft(spec: torch.Tensor, params: MelParams, length: int | None = None) -> torch.Tensor:
    """Inverse of `stft`, (..., F, T) -> (..., S)."""
    return torch.istft(spec, params.n_fft, params.hop_length, window=_window(params, spec.device),
                       center=True, length=length)


def magnitude_from_audio(audio: ArrayLike, params: MelParams) -> torch.Tensor:
    """Linear STFT magnitude, (..., S) -> (..., F, T)."""
    return stft(_as_tensor(audio), params).abs()


def normalize_db(power: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Power -> absolute dB clamped to [db_min, db_max] -> [-1, 1]."""
    db = 10.0 * torch.log10(power.clamp_min(10 ** (params.db_min / 10)))
    db = db.clamp(params.db_min, params.db_max)
    return 2.0 * (db - params.db_min) / (params.db_max - params.db_min) - 1.0


def denormalize_db(mel: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Inverse of `normalize_db`: [-1, 1] -> power (values outside [-1, 1] are clamped first)."""
    return 10.0 ** (db_from_normalized(mel.clamp(-1.0, 1.0), params) / 10.0)


def db_from_normalized(mel: ArrayT, params: MelParams) -> ArrayT:
    """Normalized log-mel in [-1, 1] -> absolute dB, for a tensor or a numpy array (no torch op: drawing a mel in
    a server thread then starts no OpenMP team there; see moodgen.pipeline)."""
    return (mel + 1.0) / 2.0 * (params.db_max - params.db_min) + params.db_min


def mel_from_magnitude(magnitude: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Normalized log-mel from linear magnitude, (..., F, T) -> (..., M, T) in [-1, 1]."""
    fb = mel_filterbank(params, magnitude.device)
    return normalize_db(torch.matmul(fb, magnitude.pow(params.power)), params)


def mel_from_audio(audio: ArrayLike, params: MelParams) -> torch.Tensor:
    """Normalized log-mel, (..., S) -> (..., M, T) in [-1, 1], T = S // hop + 1."""
    return mel_from_magnitude(magnitude_from_audio(audio, params), params)


def magnitude_from_mel_pinv(mel: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Least-squares linear magnitude from a normalized log-mel, (..., M, T) -> (..., F, T), non-negative."""
    fb = mel_filterbank(params, mel.device)
    power = torch.matmul(torch.linalg.pinv(fb), denormalize_db(mel, params)).clamp_min(0.0)
    return power.pow(1.0 / params.power)


def griffin_lim(magnitude: torch.Tensor, params: MelParams, n_iter: int = 32, momentum: float = 0.99,
                seed: int = 0, length: int | None = None, init_phase: torch.Tensor | None = None) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013) from linear magnitude, (..., F, T) -> (..., S).

    Phases start from `init_phase` (..., F, T) when given, else from a seeded random draw, so the same input and seed
    always give the same audio.
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if init_phase is not None:
        phase = init_phase.to(magnitude.device)
    else:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        phase = torch.rand(magnitude.shape, generator=gen).to(magnitude.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = stft(istft(magnitude * angles, params, length), params)
        # angles = rebuilt - previous * c, then unit modulus: the same operations, in place in `previous`'s
        # buffer, so fewer (F, T) complex arrays are alive at once (10 MB each for a 30 s clip)
        angles = torch.sub(rebuilt, previous.mul_(momentum / (1.0 + momentum)), out=previous)
        angles.div_(angles.abs().clamp_min_(1e-16))
        previous = rebuilt
    return istft(magnitude * angles, params, length)


def mel_to_audio_fast(mel: ArrayLike, params: MelParams, n_iter: int = 32, seed: int = 0) -> torch.Tensor:
    """Pseudo-inverse mel -> magnitude, then torch fast Griffin-Lim; (..., M, T) -> (..., S)."""
    mel = _as_tensor(mel)
    length = (mel.shape[-1] - 1) * params.hop_length
    return griffin_lim(magnitude_from_mel_pinv(mel, params), params, n_iter=n_iter, seed=seed, length=length)


def mel_to_audio_librosa(mel: ArrayLike, params: MelParams, n_iter: int = 32) -> np.ndarray:
    """The seed project's path: librosa `mel_to_audio` (NNLS inverse + 32 Griffin-Lim iterations), (M, T) -> (S,)."""
    power = denormalize_db(_as_tensor(mel), params).cpu().numpy()
    return librosa.feature.inverse.mel_to_audio(
        power, sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length, power=params.power,
        n_iter=n_iter, fmin=params.fmin, fmax=params.fmax, length=(power.shape[-1] - 1) * params.hop_length,
    ).astype(np.float32)


def spectral_convergence(reference: ArrayLike, estimate: ArrayLike, params: MelParams) -> float:
    """‖|S| − |Ŝ|‖_F / ‖|S|‖_F on linear STFT magnitude of two (S,) waveforms (trimmed to the shorter)."""
    ref, est = _as_tensor(reference), _as_tensor(estimate)
    n = min(ref.shape[-1], est.shape[-1])
    a, b = magnitude_from_audio(ref[..., :n], params), magnitude_from_audio(est[..., :n], params)
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp_min(1e-12))


def rms_db(audio: ArrayLike) -> float:
    """Overall RMS level in dBFS of a (S,) waveform (silence gives -120)."""
    x = _as_tensor(audio)
    return float(20.0 * torch.log10(x.pow(2).mean().sqrt().clamp_min(1e-6)))


def peak_normalize(audio: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale a (S,) waveform so its largest absolute sample is `peak` (silence is returned unchanged)."""
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if top < 1e-9 else (audio * (peak / top)).astype(np.float32)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float (S,) in [-1, 1] -> int16 (S,), clipping outside the range."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)
