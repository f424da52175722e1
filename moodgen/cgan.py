"""The seed project's conditional GAN, rebuilt in PyTorch as a baseline (kind "cgan"; not loaded by the app).

The seed was a Keras cGAN over mel-spectrogram images: generator = noise (256) + (valence, arousal) -> one dense
layer -> reshape -> transposed 2D convolutions with batch norm, ReLU and dropout -> tanh; discriminator = strided
2D convolutions with LeakyReLU and dropout, flattened, concatenated with (valence, arousal), dense -> logit; trained
with one-sided label smoothing (real target 0.9), Gaussian noise on the discriminator's inputs and four generator
steps per discriminator step. This module keeps that design and changes only the scale:

- Shape: one window of our normalized log-mel, (M, T) = (128, 256) frames = 3.0 s at hop 256 (MelParams), is the
  image. Four stride-2 transposed convolutions grow a (C, M/16, T/16) = (64, 8, 16) grid to (1, 128, 256).
- Size: the seed had ~350M parameters, most in its one dense layer. Here the dense layer is 258 -> 64*8*16
  (2.1M weights, most of the generator's 2.17M); the discriminator has 0.57M. That fits the 2-core CPU
  this project trains on and keeps the fp16 release file near 4 MB.
- Conditioning: as in the seed, the generator sees (v, a) only at its input and the discriminator only after
  its convolutions; a hidden dense layer after the concatenation lets the discriminator relate the mood to the
  content at all (a single linear logit would add a mood-only bias that cannot check the pairing).
- Longer clips: `generate` tiles independent windows (fresh noise each, same mood) and concatenates them along
  time; there is no coherence across the 3 s seams, which is the seed's limitation kept as is.

Shapes: noise z (B, noise_dim), mood (B, 2), mel (B, M, T) with M = config.n_mels, T = config.frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moodgen.checkpoint import Component
from moodgen.config import MelParams, check_ranges
from moodgen.inverter import MelInverter, default_inversion, load_inverter


@dataclass(frozen=True)
class CGANConfig:
    n_mels: int = 128
    frames: int = 256  # one generated window: 3.0 s of mel at 22,050 Hz / hop 256
    noise_dim: int = 256
    upsamplings: int = 4  # stride-2 layers; n_mels and frames must be multiples of 2**upsamplings
    g_channels: int = 64  # channels of the generator's first grid, halved by each transposed convolution
    g_dropout: float = 0.3
    d_channels: tuple[int, ...] = (8, 16, 32, 64)  # one stride-2 convolution each
    d_hidden: int = 64  # dense layer after concatenating (v, a) to the flattened features
    d_dropout: float = 0.3
    d_input_noise: float = 0.1  # std of the Gaussian noise added to the discriminator's inputs (training only)
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        check_ranges(self, {"n_mels": (1, 1024), "frames": (1, 8192), "noise_dim": (1, 4096), "upsamplings": (1, 10),
                            "g_channels": (1, 4096), "d_channels": (1, 4096), "d_hidden": (1, 4096)})
        grid = 2 ** self.upsamplings
        if self.upsamplings < 1 or self.n_mels % grid or self.frames % grid:
            raise ValueError(f"n_mels ({self.n_mels}) and frames ({self.frames}) must be positive multiples of "
                             f"2**upsamplings = {grid}")
        if self.noise_dim < 1 or self.d_hidden < 1 or not self.d_channels or min(self.d_channels) < 1:
            raise ValueError(f"noise_dim, d_hidden and d_channels must be positive: {self}")
        if self.g_channels < 2 ** (self.upsamplings - 1):
            raise ValueError(f"g_channels {self.g_channels} is halved {self.upsamplings - 1} times and must stay >= 1")
        if (self.n_mels % 2 ** len(self.d_channels)) or (self.frames % 2 ** len(self.d_channels)):
            raise ValueError(f"n_mels and frames must be multiples of 2**len(d_channels) = {2 ** len(self.d_channels)}")
        for name in ("g_dropout", "d_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.d_input_noise < 0 or self.leaky_slope < 0:
            raise ValueError(f"d_input_noise and leaky_slope must be >= 0: {self}")

    def check_matches(self, mel_params: MelParams) -> None:
        if mel_params.n_mels != self.n_mels:
            raise ValueError(f"cGAN built for {self.n_mels} mel bands, MelParams has {mel_params.n_mels}")


class CGANGenerator(nn.Module, Component):
    """(z (B, noise_dim), mood (B, 2)) -> mel (B, M, T) in [-1, 1]."""

    kind = "cgan"
    config_class = CGANConfig

    def __init__(self, config: CGANConfig):
        super().__init__()
        self.config = config
        c = config.g_channels
        self.grid = (config.n_mels >> config.upsamplings, config.frames >> config.upsamplings)
        self.dense = nn.Linear(config.noise_dim + 2, c * self.grid[0] * self.grid[1])
        layers: list[nn.Module] = [nn.BatchNorm2d(c), nn.ReLU()]
        for i in range(config.upsamplings):
            last = i == config.upsamplings - 1
            c_out = 1 if last else c // 2
            layers.append(nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(), nn.Dropout(config.g_dropout)]
            c = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, mood: torch.Tensor) -> torch.Tensor:
        h = self.dense(torch.cat([z, mood], dim=1)).view(z.shape[0], self.config.g_channels, *self.grid)
        return self.net(h).squeeze(1)


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) in training mode only (Keras GaussianNoise)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std > 0 else x


class CGANDiscriminator(nn.Module):
    """(mel (B, M, T), mood (B, 2)) -> real/fake logit (B,)."""

    def __init__(self, config: CGANConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [GaussianNoise(config.d_input_noise)]
        c_in = 1
        for c in config.d_channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(config.leaky_slope),
                       nn.Dropout(config.d_dropout)]
            c_in = c
        self.features = nn.Sequential(*layers)
        scale = 2 ** len(config.d_channels)
        flat = c_in * (config.n_mels // scale) * (config.frames // scale)
        self.head = nn.Sequential(nn.Linear(flat + 2, config.d_hidden), nn.LeakyReLU(config.leaky_slope),
                                  nn.Linear(config.d_hidden, 1))

    def forward(self, mel: torch.Tensor, mood: torch.Tensor) -> torch.Tensor:
        h = self.features(mel.unsqueeze(1)).flatten(1)
        return self.head(torch.cat([h, mood], dim=1)).squeeze(1)


@torch.no_grad()
def generate(generator: CGANGenerator, valence: float, arousal: float, frames: int, seed: int = 0) -> np.ndarray:
    """A (M, frames) normalized log-mel for the mood: ceil(frames / window) independent windows concatenated.

    Noise comes from a CPU generator seeded with `seed`, so identical inputs give identical outputs on a device.
    The generator runs in eval mode (batch-norm running statistics, no dropout).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    generator.eval()
    cfg = generator.config
    n = -(-frames // cfg.frames)
    dev = next(generator.parameters()).device
    z = torch.randn((n, cfg.noise_dim), generator=torch.Generator().manual_seed(int(seed))).to(dev)
    mood = torch.tensor([[valence, arousal]], dtype=torch.float32, device=dev).expand(n, 2)
    windows = generator(z, mood)  # (n, M, window)
    return windows.permute(1, 0, 2).reshape(cfg.n_mels, n * cfg.frames)[:, :frames].cpu().numpy()


class CGANBaseline:
    """A loaded baseline: generator, its MelParams and, when found beside it, the learned inverter."""

    def __init__(self, generator: CGANGenerator, mel_params: MelParams, inverter: MelInverter | None = None):
        generator.config.check_matches(mel_params)
        self.generator, self.mel_params, self.inverter = generator.eval(), mel_params, inverter

    def generate_mel(self, valence: float, arousal: float, seconds: float, seed: int = 0) -> np.ndarray:
        """(M, T) normalized log-mel of `seconds` of audio."""
        return generate(self.generator, valence, arousal, self.mel_params.frames_for(seconds), seed)

    def generate_audio(self, valence: float, arousal: float, seconds: float, seed: int = 0) -> tuple[np.ndarray, int]:
        """(S,) float32 audio and its sample rate, inverted the way the pipeline inverts the mel engine."""
        n = int(round(seconds * self.mel_params.sample_rate))
        frames = -(-n // self.mel_params.hop_length) + 1  # inversion gives (T - 1) * hop samples: cover all n
        mel = generate(self.generator, valence, arousal, frames, seed)
        wav = default_inversion(mel, self.mel_params, self.inverter)
        return np.clip(wav[:n], -1.0, 1.0).astype(np.float32), self.mel_params.sample_rate


def load(path: str | Path, device: torch.device | str = "cpu") -> CGANBaseline:
    """checkpoints/cgan.safetensors -> CGANBaseline; uses inverter.safetensors from the same folder if present."""
    generator, meta = CGANGenerator.from_file(path, device)
    return CGANBaseline(generator, meta["mel_params_obj"], load_inverter(Path(path).parent, device))
