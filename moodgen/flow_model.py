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
A guidance-distilled model (`guidance_conditioning`, made by `python -m train --teacher ...`) also takes the guidance
scale g (B,) as a condition and makes the guided prediction in one pass, so sampling costs half as much.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moodgen.checkpoint import Component
from moodgen.conditioning import KeyCondition, condition_embedding, mood_mlp
from moodgen.config import check_ranges
from moodgen.threads import PointwiseConv1d


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
    guidance_conditioning: bool = False  # distilled: the guidance scale is a condition, one pass per sampler step

    def __post_init__(self) -> None:
        check_ranges(self, {"in_channels": (1, 4096), "base_channels": (1, 4096), "channel_mults": (1, 64),
                            "blocks_per_level": (0, 16), "kernel_size": (1, 63), "cond_dim": (1, 4096),
                            "mood_frequencies": (0, 32), "attention_heads": (0, 64), "groups": (1, 4096)})
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


# The sampler's times t_i = (i / steps) ** TIME_POWER are denser near the noise, where the guided flow bends most:
# with 10 steps they land nearer 16 even steps than 12 even steps do (benchmarks/studies/distillation.py).
TIME_POWER = 1.25
GUIDANCE_SCALE = 10.0  # guidance scales are embedded as g / GUIDANCE_SCALE, like times in [0, 1]
DISTILLED_AT = 0.5  # the share of a distillation batch at the teacher's exported guidance; the rest is uniform


def time_grid(steps: int, power: float = TIME_POWER) -> list[float]:
    """The sampler's steps + 1 times from 0 (noise) to 1 (data), (i / steps) ** power (1: evenly spaced)."""
    return [(i / steps) ** power for i in range(steps + 1)]


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
        self.skip = PointwiseConv1d(c_in, c_out) if c_in != c_out else nn.Identity()

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
        self.guidance_mlp = None
        if c.guidance_conditioning:  # zero last layer: a student starts as its teacher's conditional model
            self.guidance_mlp = nn.Sequential(nn.Linear(c.cond_dim, c.cond_dim), nn.SiLU(),
                                              nn.Linear(c.cond_dim, c.cond_dim))
            nn.init.zeros_(self.guidance_mlp[-1].weight)
            nn.init.zeros_(self.guidance_mlp[-1].bias)
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

    def condition(self, t: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor, key: torch.Tensor | None = None,
                  guidance: torch.Tensor | None = None) -> torch.Tensor:
        """(B,), (B, 2), (B,) bool, key (B,), guidance (B,) -> (B, cond_dim). Dropped rows use the learned null
        embedding. Only a guidance-distilled model takes (and requires) `guidance`."""
        m = condition_embedding(self.mood_mlp, self.null_mood, self.key, self.config.mood_frequencies, mood, drop, key)
        c = self.t_mlp(timestep_embedding(t, self.config.cond_dim)) + m
        if (guidance is None) != (self.guidance_mlp is None):
            raise ValueError("a guidance-distilled model requires guidance, (B,) float; other models take none")
        if self.guidance_mlp is not None:
            c = c + self.guidance_mlp(timestep_embedding(guidance / GUIDANCE_SCALE, self.config.cond_dim))
        return c

    def forward(self, x: torch.Tensor, t: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                key: torch.Tensor | None = None, guidance: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) -> the network's prediction (B, C, T): x1 or x1 - x0, per `config.prediction`."""
        if x.shape[-1] % self.time_multiple:
            raise ValueError(f"T={x.shape[-1]} must be a multiple of {self.time_multiple}")
        cond = self.condition(t, mood, drop, key, guidance)
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
                 key: torch.Tensor | None = None, guidance: torch.Tensor | None = None) -> torch.Tensor:
        """Flow velocity at (x_t, t), (B, C, T), whatever the parameterization."""
        out = self(x, t, mood, drop, key, guidance)
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


def guidance_distillation_loss(student: FlowModel, teacher: FlowModel, x1: torch.Tensor, mood: torch.Tensor,
                               generator: torch.Generator | None = None, key: torch.Tensor | None = None,
                               default_guidance: float = 3.0) -> torch.Tensor:
    """MSE between a guidance-distilled student's one-pass prediction and its teacher's guided one,
    x1_uncond + g (x1_cond - x1_uncond), at x_t = (1 - t) x0 + t x1 for data x1 (B, C, T), moods (B, 2), keys (B,).

    g is the teacher's exported guidance for a share DISTILLED_AT of the batch, uniform in [0, GUIDANCE_SCALE] for
    the rest. Both models predict data; the guided target is clamped to the data's range [-1, 1], which it
    overshoots where the condition pulls hard and which the student's tanh cannot leave."""
    if student.config.prediction != "data" or teacher.config.prediction != "data":
        raise ValueError("guidance distillation needs data-predicting models (FlowConfig.prediction 'data')")
    b, dev = x1.shape[0], x1.device
    src = generator.device if generator is not None else torch.device("cpu")
    x0 = torch.randn(x1.shape, generator=generator, device=src).to(dev)
    t = torch.rand(b, generator=generator, device=src).to(dev)
    spread = torch.rand(b, generator=generator, device=src).to(dev) * GUIDANCE_SCALE
    at_default = torch.rand(b, generator=generator, device=src).to(dev) < DISTILLED_AT
    g = torch.where(at_default, torch.full_like(spread, default_guidance), spread)
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    with torch.no_grad():
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(dev)
        keys = None if key is None else torch.cat([key, key])
        cond, uncond = teacher(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([mood, mood]), drop, keys).chunk(2)
        target = (uncond + g[:, None, None] * (cond - uncond)).clamp(-1, 1)
    return F.mse_loss(student(xt, t, mood, drop[:b], key, g), target)


@torch.no_grad()
def sample(model: FlowModel, mood: torch.Tensor, frames: int, steps: int = 16, guidance: float = 2.0,
           seed: int = 0, key: torch.Tensor | None = None, known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None, time_power: float = TIME_POWER) -> torch.Tensor:
    """Euler integration of the guided flow from noise over `time_grid(steps, time_power)`; mood (B, 2), key (B,)
    -> x1 (B, C, frames).

    guidance 1 is the plain conditional model, 0 the unconditional one; a guidance-distilled model makes the guided
    prediction in one pass (two otherwise, batched). The noise comes from a CPU generator
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
    times = time_grid(steps, time_power)
    for i in range(steps):
        t = torch.full((b,), times[i], device=dev)
        if known is not None:
            x = torch.where(mask, (1 - times[i]) * noise + times[i] * data, x)
        if model.config.guidance_conditioning:
            v = model.velocity(x, t, mood, drop[:b], key, torch.full((b,), float(guidance), device=dev))
        elif guidance == 1.0:
            v = model.velocity(x, t, mood, drop[:b], key)
        else:
            v_cond, v_uncond = model.velocity(torch.cat([x, x]), torch.cat([t, t]), both_moods, drop,
                                              both_keys).chunk(2)
            v = v_uncond + guidance * (v_cond - v_uncond)
        x = x + v * (times[i + 1] - times[i])
    if known is not None:
        x = torch.where(mask, data, x)
    return x[..., :frames]
