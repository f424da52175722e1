"""Conditional flow-matching generator: a 1D U-Net over time whose channels are the features of one frame
(mel bands for the mel engine, piano-roll key channels for the note engine), conditioned on (valence, arousal).

Shapes: x (B, C, T), t (B,), mood (B, 2), drop (B,) bool. T must be a multiple of `FlowModel.time_multiple`;
`sample` pads and crops for any T.
Rectified flow: x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) noise and x1 data. With prediction "velocity" the
network predicts x1 - x0; with prediction "data" it predicts x1 itself (bounded by tanh, since every feature lives in
[-1, 1]) and the velocity is (x1_hat - x_t) / (1 - t). Data prediction learns far faster on near-binary piano rolls:
the per-feature prior (mostly silent keys) is one saturated tanh away, where a velocity net must cancel the noise.
The condition is dropped (replaced by a learned null embedding) on a fraction of training examples, which gives
classifier-free guidance at sampling time: v = v_uncond + g (v_cond - v_uncond). With `key_conditioning` the
condition also holds a musical key, key (B,) int64 (see `moodgen.keys`), dropped together with the mood.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moodgen.checkpoint import Component
from moodgen.conditioning import KeyCondition, condition_embedding, mood_mlp


@dataclass(frozen=True)
class FlowConfig:
    in_channels: int = 128
    base_channels: int = 96
    channel_mults: tuple[int, ...] = (1, 2, 3, 4)
    blocks_per_level: int = 2
    kernel_size: int = 5
    cond_dim: int = 256
    mood_frequencies: int = 8  # Fourier features of each mood axis: sin/cos at 2^k * pi, k < this
    attention_heads: int = 4  # one self-attention layer at the bottleneck for long-range coherence (0 = none)
    groups: int = 8
    dropout: float = 0.0
    prediction: str = "data"  # "data" (x1, tanh-bounded) or "velocity" (x1 - x0)
    key_conditioning: bool = False  # condition on a musical key as well as the mood

    def __post_init__(self) -> None:
        if self.prediction not in ("data", "velocity"):
            raise ValueError(f"prediction must be 'data' or 'velocity', got {self.prediction!r}")
        if self.in_channels < 1 or self.base_channels < 1 or not self.channel_mults:
            raise ValueError(f"invalid FlowConfig sizes: {self}")
        for m in self.channel_mults:
            if (self.base_channels * m) % self.groups:
                raise ValueError(f"base_channels*{m} = {self.base_channels * m} not divisible by groups={self.groups}")
        bottleneck = self.base_channels * self.channel_mults[-1]
        if self.attention_heads and bottleneck % self.attention_heads:
            raise ValueError(f"bottleneck width {bottleneck} not divisible by attention_heads={self.attention_heads}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1], (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = (t[:, None] * 1000.0) * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice with FiLM from the conditioning vector; (B, Cin, T) -> (B, Cout, T)."""

    def __init__(self, c_in: int, c_out: int, config: FlowConfig):
        super().__init__()
        k = config.kernel_size
        self.norm1 = nn.GroupNorm(config.groups, c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, k, padding=k // 2)
        self.film = nn.Linear(config.cond_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(config.groups, c_out)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = nn.Conv1d(c_out, c_out, k, padding=k // 2)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over time, residual; (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)
        out, _ = self.attn(h, h, h, need_weights=False)
        return x + out.transpose(1, 2)


class FlowModel(nn.Module, Component):
    """Velocity network v(x_t, t, mood) of a conditional rectified flow."""

    kind = "mel_flow"
    config_class = FlowConfig

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        c = config
        widths = [c.base_channels * m for m in c.channel_mults]
        self.t_mlp = nn.Sequential(nn.Linear(c.cond_dim, c.cond_dim), nn.SiLU(), nn.Linear(c.cond_dim, c.cond_dim))
        self.mood_mlp = mood_mlp(c.mood_frequencies, c.cond_dim)
        self.null_mood = nn.Parameter(torch.zeros(c.cond_dim))
        self.key = KeyCondition(c.cond_dim) if c.key_conditioning else None
        self.stem = nn.Conv1d(c.in_channels, widths[0], c.kernel_size, padding=c.kernel_size // 2)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_widths = []
        w_prev = widths[0]
        for i, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(c.blocks_per_level):
                blocks.append(ResBlock(w_prev, w, c))
                w_prev = w
            self.down.append(blocks)
            skip_widths.append(w)
            self.downsample.append(nn.Conv1d(w, w, 4, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity())
        self.mid1 = ResBlock(w_prev, w_prev, c)
        self.mid_attn = SelfAttention(w_prev, c.attention_heads, c.groups) if c.attention_heads else nn.Identity()
        self.mid2 = ResBlock(w_prev, w_prev, c)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for j in range(c.blocks_per_level):
                blocks.append(ResBlock(w_prev + (skip_widths[i] if j == 0 else 0), w, c))
                w_prev = w
            self.up.append(blocks)
            self.upsample.append(nn.Conv1d(w, widths[i - 1], 3, padding=1) if i > 0 else nn.Identity())
            if i > 0:
                w_prev = widths[i - 1]
        self.head = nn.Sequential(nn.GroupNorm(c.groups, w_prev), nn.SiLU(),
                                  nn.Conv1d(w_prev, c.in_channels, c.kernel_size, padding=c.kernel_size // 2))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @property
    def time_multiple(self) -> int:
        return 2 ** (len(self.config.channel_mults) - 1)

    def condition(self, t: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                  key: torch.Tensor | None = None) -> torch.Tensor:
        """(B,), (B, 2), (B,) bool, key (B,) -> (B, cond_dim). Dropped rows use the learned null embedding."""
        m = condition_embedding(self.mood_mlp, self.null_mood, self.key, self.config.mood_frequencies, mood, drop, key)
        return self.t_mlp(timestep_embedding(t, self.config.cond_dim)) + m

    def forward(self, x: torch.Tensor, t: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                key: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) -> the network's prediction (B, C, T): x1 or x1 - x0, per `config.prediction`."""
        if x.shape[-1] % self.time_multiple:
            raise ValueError(f"T={x.shape[-1]} must be a multiple of {self.time_multiple}")
        cond = self.condition(t, mood, drop, key)
        h = self.stem(x)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, cond)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, cond)), cond)
        for blocks, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, cond)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.head(h)
        return torch.tanh(out) if self.config.prediction == "data" else out

    def velocity(self, x: torch.Tensor, t: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                 key: torch.Tensor | None = None) -> torch.Tensor:
        """Flow velocity at (x_t, t), (B, C, T), whatever the parameterization."""
        out = self(x, t, mood, drop, key)
        if self.config.prediction == "velocity":
            return out
        return (out - x) / (1 - t).clamp_min(1e-3)[:, None, None]


def flow_matching_loss(model: FlowModel, x1: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
                       generator: torch.Generator | None = None, key: torch.Tensor | None = None) -> torch.Tensor:
    """Rectified-flow MSE for a batch of data x1 (B, C, T) with moods (B, 2) and keys (B,); t ~ U(0, 1).

    The target is x1 or x1 - x0, per the model's parameterization. Noise is drawn where `generator` lives (the
    CPU without one) and moved to x1's device: a generator on the GPU saves a host draw and copy per step."""
    b = x1.shape[0]
    dev = x1.device
    src = generator.device if generator is not None else torch.device("cpu")
    x0 = torch.randn(x1.shape, generator=generator, device=src).to(dev)
    t = torch.rand(b, generator=generator, device=src).to(dev)
    drop = (torch.rand(b, generator=generator, device=src) < cond_dropout).to(dev)
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    target = x1 if model.config.prediction == "data" else x1 - x0
    return F.mse_loss(model(xt, t, mood, drop, key), target)


@torch.no_grad()
def sample(model: FlowModel, mood: torch.Tensor, frames: int, steps: int = 16, guidance: float = 2.0,
           seed: int = 0, key: torch.Tensor | None = None, known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Euler integration of the guided flow from noise; mood (B, 2), key (B,) -> x1 (B, C, frames).

    guidance 1 is the plain conditional model, 0 the unconditional one. The noise comes from a CPU generator
    seeded with `seed`, so results are identical for identical inputs on the same device.
    Inpainting: with `known` (B, C, frames) and `known_mask` (frames,) bool, the masked frames are kept: before each
    step they are replaced by the known data noised to the current time with the same noise the sample started
    from, so the free frames grow out of them; the result holds the known frames exactly.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = next(model.parameters()).device
    b = mood.shape[0]
    padded = -(-frames // model.time_multiple) * model.time_multiple
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((b, model.config.in_channels, padded), generator=gen).to(dev)
    if known is not None:
        mask = F.pad(known_mask.to(dev), (0, padded - frames))
        data = F.pad(known.to(dev, torch.float32), (0, padded - frames))
        noise = x.clone()
    mood = mood.to(dev, torch.float32)
    both_moods = torch.cat([mood, mood])
    both_keys = None if key is None else torch.cat([key, key])
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(dev)
    for i in range(steps):
        t = torch.full((b,), i / steps, device=dev)
        if known is not None:
            x = torch.where(mask, (1 - i / steps) * noise + (i / steps) * data, x)
        if guidance == 1.0:
            v = model.velocity(x, t, mood, drop[:b], key)
        else:
            v_cond, v_uncond = model.velocity(torch.cat([x, x]), torch.cat([t, t]), both_moods, drop,
                                              both_keys).chunk(2)
            v = v_uncond + guidance * (v_cond - v_uncond)
        x = x + v / steps
    if known is not None:
        x = torch.where(mask, data, x)
    return x[..., :frames]
