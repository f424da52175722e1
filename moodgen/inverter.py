"""Mel -> audio: a small learned mel -> linear-magnitude network, a phase-vocoder phase start, fast Griffin-Lim.

The 128-band mel throws away the fine harmonic structure above ~1 kHz; the least-squares (pseudo-inverse) magnitude
smears it, which is what makes Griffin-Lim output sound metallic. `MelInverter` predicts the log linear magnitude
from the normalized log-mel instead. Griffin-Lim from random phases needs ~32+ iterations; starting from
`phase_vocoder_phase` (each bin advanced at the frequency of its spectral peak, neighbours locked to the peak) reaches
the same spectral convergence in ~8, which is what makes the whole path fast enough for interactive use.
Shapes: B batch, M mel bands, F = n_fft/2+1 linear bins, T frames, S samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moodgen import audio
from moodgen.checkpoint import Component
from moodgen.config import MelParams, check_ranges
from moodgen.threads import PointwiseConv1d

METHODS = ("learned", "fast_gl", "librosa")
WEIGHTS_FILE = "inverter.safetensors"  # beside the engines that invert mels
DEFAULT_N_ITER = 8  # learned magnitude + phase-vocoder start; chosen in benchmarks/studies/copy_synthesis.py


@dataclass(frozen=True)
class InverterConfig:
    """Architecture of `MelInverter`. n_mels / n_freqs must match the MelParams it is used with."""

    n_mels: int = 128
    n_freqs: int = 513
    channels: int = 192
    n_blocks: int = 4
    kernel_size: int = 7
    expansion: int = 2
    log_floor: float = -11.5  # natural-log magnitude floor (~ -100 dB); quieter bins carry nothing audible

    def __post_init__(self) -> None:
        check_ranges(self, {"n_mels": (1, 1024), "n_freqs": (1, 8193), "channels": (1, 4096), "n_blocks": (0, 64),
                            "kernel_size": (1, 63), "expansion": (1, 16), "log_floor": (-100, 0)})
        for name in ("n_mels", "n_freqs", "channels", "expansion"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {self.n_blocks}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {self.kernel_size}")
        if self.n_mels > self.n_freqs:
            raise ValueError(f"n_mels ({self.n_mels}) cannot exceed n_freqs ({self.n_freqs})")

    def check_matches(self, params: MelParams) -> None:
        if (self.n_mels, self.n_freqs) != (params.n_mels, params.n_freqs):
            raise ValueError(f"inverter built for n_mels={self.n_mels}, n_freqs={self.n_freqs}; MelParams have "
                             f"n_mels={params.n_mels}, n_freqs={params.n_freqs}")


class _Block(nn.Module):
    """ConvNeXt-style residual block over time: depthwise conv, channel LayerNorm, pointwise MLP. (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int, expansion: int):
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, channels * expansion), nn.GELU(),
                                 nn.Linear(channels * expansion, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2))
        return x + self.mlp(h).transpose(1, 2)


class MelInverter(nn.Module, Component):
    """Normalized log-mel (B, M, T) -> natural-log linear magnitude (B, F, T), at least `config.log_floor`.

    A linear 1x1 skip (mel -> bins) carries the smooth envelope; the blocks add harmonic detail from the context of
    a few neighbouring frames.
    """

    kind = "inverter"
    config_class = InverterConfig

    def __init__(self, config: InverterConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.skip = PointwiseConv1d(config.n_mels, config.n_freqs)
        self.inp = PointwiseConv1d(config.n_mels, c)
        self.blocks = nn.Sequential(*[_Block(c, config.kernel_size, config.expansion) for _ in range(config.n_blocks)])
        self.norm = nn.LayerNorm(c)
        self.out = PointwiseConv1d(c, config.n_freqs)
        nn.init.zeros_(self.out.weight)  # start as the linear skip alone
        nn.init.zeros_(self.out.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp(mel))
        h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        return (self.skip(mel) + self.out(h)).clamp_min(self.config.log_floor)

    @torch.no_grad()
    def magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear magnitude for an (M, T) or (B, M, T) mel, same leading shape with F bins."""
        squeeze = mel.dim() == 2
        param = next(self.parameters())
        out = self(mel.to(param.device, param.dtype).unsqueeze(0) if squeeze else mel.to(param.device, param.dtype))
        mag = out.clamp_max(10.0).exp()  # clamp: an untrained or off-distribution net must not overflow GL
        return mag[0] if squeeze else mag


def phase_vocoder_phase(magnitude: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Initial phase from magnitude alone, (F, T) -> (F, T).

    Per frame, each bin is assigned its nearest spectral peak; the peak's frequency (parabolic interpolation in log
    magnitude) advances the phase by 2*pi*f*hop/n_fft per frame, integrated over time. Bins next to a peak get the
    peak's phase plus pi per bin (the sign alternation of a Hann-windowed sinusoid in a frame-start-referenced STFT).
    """
    # Each (F, T) array is dropped once used (`del`): a 30 s clip's are 5 MB each, and a dozen were alive at once.
    n_freqs, n_frames = magnitude.shape
    logm = magnitude.clamp_min(1e-8).log()
    dtype = logm.dtype
    k = torch.arange(n_freqs, dtype=dtype, device=logm.device).unsqueeze(1).expand(n_freqs, n_frames)
    padded = nn.functional.pad(logm.T, (1, 1), value=-1e9).T  # (F+2, T)
    del logm
    left, mid, right = padded[:-2], padded[1:-1], padded[2:]
    is_peak = (mid > left) & (mid >= right)
    curvature = left - 2 * mid + right
    offset = torch.where(is_peak & (curvature < 0), 0.5 * (left - right) / curvature.clamp_max(-1e-9),
                         torch.zeros_like(mid)).clamp(-0.5, 0.5)
    del curvature, left, mid, right, padded
    below = torch.cummax(torch.where(is_peak, k, torch.full_like(k, -1e9)), dim=0).values
    above = torch.flip(torch.cummin(torch.flip(torch.where(is_peak, k, torch.full_like(k, 1e9)), [0]), dim=0).values,
                       [0])
    del is_peak
    peak = torch.where(k - below <= above - k, below, above).clamp(0, n_freqs - 1).long()
    del below, above
    freq = peak.to(dtype) + torch.gather(offset, 0, peak)  # in bins
    del offset
    advance = torch.cumsum(2 * torch.pi * freq * (params.hop_length / params.n_fft), dim=1)
    del freq
    return torch.remainder(torch.gather(advance, 0, peak) + torch.pi * (k - peak), 2 * torch.pi)


def mel_to_audio(mel: np.ndarray | torch.Tensor, mel_params: MelParams, method: str = "learned",
                 inverter: MelInverter | None = None, n_iter: int = DEFAULT_N_ITER, seed: int = 0,
                 phase_init: str = "vocoder") -> np.ndarray:
    """Normalized log-mel (M, T) -> float32 waveform (S,), S = (T - 1) * hop.

    method: "learned" (MelInverter magnitude, needs `inverter`), "fast_gl" (pseudo-inverse magnitude), both followed
    by `n_iter` fast Griffin-Lim iterations (momentum 0.99); "librosa" (the seed project's NNLS + GL path).
    phase_init (learned / fast_gl): "vocoder" (`phase_vocoder_phase`) or "random" (seeded by `seed`).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mel_t = mel if isinstance(mel, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
    if mel_t.dim() != 2 or mel_t.shape[0] != mel_params.n_mels or mel_t.shape[1] < 2:
        raise ValueError(f"mel must be (n_mels={mel_params.n_mels}, T >= 2), got {tuple(mel_t.shape)}")
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    if method == "librosa":
        return audio.mel_to_audio_librosa(mel_t, mel_params, n_iter=n_iter)
    if phase_init not in ("vocoder", "random"):
        raise ValueError(f"phase_init must be 'vocoder' or 'random', got {phase_init!r}")
    mel_t = mel_t.float()
    if method == "learned":
        if inverter is None:
            raise ValueError("method 'learned' needs an inverter (load checkpoints/inverter.safetensors)")
        inverter.config.check_matches(mel_params)
        magnitude = inverter.magnitude(mel_t).float().cpu()
    else:
        magnitude = audio.magnitude_from_mel_pinv(mel_t.cpu(), mel_params)
    init = phase_vocoder_phase(magnitude, mel_params) if phase_init == "vocoder" else None
    length = (mel_t.shape[-1] - 1) * mel_params.hop_length
    wav = audio.griffin_lim(magnitude, mel_params, n_iter=n_iter, seed=seed, length=length, init_phase=init)
    return wav.numpy().astype(np.float32)


def load_inverter(folder: str | Path, device: torch.device | str = "cpu") -> MelInverter | None:
    """The learned inverter saved in a checkpoints folder, or None when the folder has none."""
    path = Path(folder) / WEIGHTS_FILE
    return MelInverter.from_file(path, device)[0] if path.is_file() else None


def default_inversion(mel: np.ndarray | torch.Tensor, mel_params: MelParams,
                      inverter: MelInverter | None) -> np.ndarray:
    """(M, T) -> (S,): the learned inverter with its default iterations when one is loaded, else 32 fast
    Griffin-Lim iterations from the pseudo-inverse magnitude."""
    if inverter is not None:
        return mel_to_audio(mel, mel_params, method="learned", inverter=inverter)
    return audio.mel_to_audio_fast(mel, mel_params).numpy()
