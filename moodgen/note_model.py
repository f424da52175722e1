"""The note engine's model: an autoregressive causal CNN over piano-roll frames, conditioned on (valence, arousal).

Each frame (1/fps s) it predicts, for every key, an onset probability, a "keeps sounding" probability and the onset
velocity, given the earlier frames (a receptive field of `receptive_field` frames) and the mood. Binary
cross-entropy on rare note events learns far faster on a CPU than a flow model over the whole roll (which, in our
runs, collapsed to the all-silent mean), and dilated causal convolutions train in parallel over time. The mood
enters as Fourier features -> MLP, added inside every layer; dropping it on a fraction of training examples gives
classifier-free guidance on the logits at sampling time. With `key_conditioning` a musical key (see `moodgen.keys`)
is added to the mood and dropped with it.

Shapes: roll x (B, 2K, T) encoded as in `moodgen.midi.encode_roll`; mood (B, 2); key (B,) int64; drop (B,) bool;
logits (B, 3K, T) = onset, sounding and velocity logits (K each); logits at t depend on frames < t only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moodgen.checkpoint import Component
from moodgen.conditioning import KeyCondition, condition_embedding, mood_mlp
from moodgen.midi import ONSET_FLOOR

ONSET_THRESHOLD = (ONSET_FLOOR - 1.0) / 2.0  # midway between "no onset" (-1) and the weakest onset


@dataclass(frozen=True)
class NoteModelConfig:
    n_keys: int = 88
    channels: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16, 32)
    cond_dim: int = 128
    mood_frequencies: int = 8
    dropout: float = 0.1
    key_conditioning: bool = False  # condition on a musical key as well as the mood

    def __post_init__(self) -> None:
        if self.n_keys < 1 or self.channels < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"invalid NoteModelConfig sizes: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        return 1 + sum(self.dilations)


class CausalBlock(nn.Module):
    """Gated dilated causal convolution (kernel 2) with the condition added; (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, dilation: int, cond_dim: int, dropout: float):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.cond = nn.Linear(cond_dim, 2 * channels)
        self.res = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a, g = (self.conv(F.pad(h, (self.dilation, 0))) + self.cond(cond)[:, :, None]).chunk(2, dim=1)
        return h + self.res(self.dropout(torch.tanh(a) * torch.sigmoid(g)))

    def step(self, h: torch.Tensor, past: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One frame: h (B, C) now and `past` (B, C) = this block's input `dilation` frames ago -> (B, C)."""
        w = self.conv.weight  # (2C, C, 2): tap 0 sees t - dilation, tap 1 sees t
        a, g = (past @ w[:, :, 0].T + h @ w[:, :, 1].T + self.conv.bias + self.cond(cond)).chunk(2, dim=1)
        return h + F.linear(torch.tanh(a) * torch.sigmoid(g), self.res.weight[:, :, 0], self.res.bias)


class NoteModel(nn.Module, Component):
    kind = "note_model"
    config_class = NoteModelConfig

    def __init__(self, config: NoteModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Conv1d(2 * c.n_keys, c.channels, 1)
        self.mood_mlp = mood_mlp(c.mood_frequencies, c.cond_dim)
        self.null_mood = nn.Parameter(torch.zeros(c.cond_dim))
        self.key = KeyCondition(c.cond_dim) if c.key_conditioning else None
        self.blocks = nn.ModuleList(CausalBlock(c.channels, d, c.cond_dim, c.dropout) for d in c.dilations)
        self.out = nn.Sequential(nn.SiLU(), nn.Conv1d(c.channels, 3 * c.n_keys, 1))

    def mood_embedding(self, mood: torch.Tensor, drop: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2), (B,) bool, key (B,) -> (B, cond_dim); dropped rows get the learned null embedding."""
        return condition_embedding(self.mood_mlp, self.null_mood, self.key, self.config.mood_frequencies, mood, drop,
                                   key)

    def logits(self, prev: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Frames (B, 2K, T) -> logits (B, 3K, T) for the frame after each one."""
        h = self.inp(prev)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(h)

    def empty_queues(self, batch: int) -> list[list[torch.Tensor]]:
        """Each block's inputs of the last `dilation` frames (fast-WaveNet queues), zero like the causal padding."""
        zeros = torch.zeros(batch, self.config.channels, device=self.inp.weight.device)
        return [[zeros] * block.dilation for block in self.blocks]

    def step(self, frame: torch.Tensor, queues: list[list[torch.Tensor]], cond: torch.Tensor) -> torch.Tensor:
        """Incremental `logits`: the previous frame (B, 2K) -> logits (B, 3K) for the next one; updates `queues`."""
        h = F.linear(frame, self.inp.weight[:, :, 0], self.inp.bias)
        for block, queue in zip(self.blocks, queues):
            queue.append(h)
            h = block.step(h, queue.pop(0), cond)
        return self.out(h[..., None])[..., 0]

    def forward(self, x: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                key: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits for every frame of x (B, 2K, T) -> (B, 3K, T); frame t sees frames < t."""
        prev = F.pad(x, (1, 0), value=-1.0)[..., :-1]  # a silent frame before the first
        return self.logits(prev, self.mood_embedding(mood, drop, key))


def targets_from_encoded(x: torch.Tensor, n_keys: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoded roll (B, 2K, T) -> onset (B, K, T) {0,1}, sounding (B, K, T) {0,1}, velocity in [0, 1] (B, K, T)."""
    onset = (x[:, n_keys:] > ONSET_THRESHOLD).float()
    sounding = (x[:, :n_keys] > 0).float()
    velocity = ((x[:, n_keys:] - ONSET_FLOOR) / (1 - ONSET_FLOOR)).clamp(0, 1)
    return onset, sounding, velocity


def note_loss(model: NoteModel, x: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
              generator: torch.Generator | None = None, key: torch.Tensor | None = None) -> torch.Tensor:
    """BCE on onsets and sounding keys, plus velocity BCE where onsets are; x (B, 2K, T), mood (B, 2), key (B,)."""
    k = model.config.n_keys
    drop = (torch.rand(x.shape[0], generator=generator) < cond_dropout).to(x.device)
    logits = model(x, mood, drop, key)
    onset, sounding, velocity = targets_from_encoded(x, k)
    loss = F.binary_cross_entropy_with_logits(logits[:, :k], onset)
    loss = loss + F.binary_cross_entropy_with_logits(logits[:, k:2 * k], sounding)
    vel = F.binary_cross_entropy_with_logits(logits[:, 2 * k:], velocity, reduction="none")
    return loss + (vel * onset).sum() / onset.sum().clamp_min(1.0)


@torch.no_grad()
def sample_roll(model: NoteModel, mood: torch.Tensor, frames: int, guidance: float = 2.0, temperature: float = 1.0,
                seed: int = 0, key: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample rolls frame by frame; mood (B, 2), key (B,) -> (active, onset), each (B, T, K) uint8 velocities.

    Guidance mixes the conditional and unconditional onset and sounding logits (1: plain conditional, 0: which notes
    play is unconditional). Velocities always come from the conditional velocity head: it predicts a value, not a
    probability, and extrapolating it would push velocities past the corpus range; so loudness follows the mood
    even at guidance 0. A key sounds where it starts, or where it was sounding and the model keeps it. Randomness
    comes from a CPU generator seeded with `seed`, so the same inputs give the same rolls. No process-wide setting
    (such as the torch thread count) is touched: requests may run at once.
    """
    model.eval()
    k = model.config.n_keys
    dev = next(model.parameters()).device
    b = mood.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    mood = mood.to(dev, torch.float32)
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(dev)
    cond = model.mood_embedding(torch.cat([mood, mood]), drop, None if key is None else torch.cat([key, key]))
    queues = model.empty_queues(2 * b)
    frame = torch.full((2 * b, 2 * k), -1.0, device=dev)
    active = np.zeros((b, frames, k), dtype=np.uint8)
    onset = np.zeros_like(active)
    current_vel = torch.zeros(b, k)
    for t in range(frames):
        logits = model.step(frame, queues, cond).cpu()
        lc, lu = logits[:b], logits[b:]
        guided = (lu + guidance * (lc - lu)) / temperature
        p_onset, p_sound = torch.sigmoid(guided[:, :k]), torch.sigmoid(guided[:, k:2 * k])
        vel = torch.sigmoid(lc[:, 2 * k:])
        new = torch.rand(b, k, generator=gen) < p_onset
        keep = (current_vel > 0) & (torch.rand(b, k, generator=gen) < p_sound)
        sounding = new | keep
        current_vel = torch.where(new, (1 + vel * 126).round(), torch.where(sounding, current_vel, 0.0))
        onset[:, t] = torch.where(new, current_vel, 0.0).numpy().astype(np.uint8)
        active[:, t] = current_vel.numpy().astype(np.uint8)
        enc = torch.cat([torch.where(sounding, 1.0, -1.0),
                         torch.where(new, ONSET_FLOOR + (1 - ONSET_FLOOR) * current_vel / 127.0, -1.0)], dim=1)
        frame = torch.cat([enc, enc]).to(dev)
    return active, onset


class NoteSampler:
    """`sample_roll`'s loop a frame at a time with a condition per frame, keeping its state between calls: the
    model's queues, the last frame, the sounding velocities and the random generator. Conditions (T, 2B, D) hold,
    per frame, the B conditional embeddings and then the B unconditional ones (see `conditions`)."""

    def __init__(self, model: NoteModel, guidance: float, seed: int, temperature: float = 1.0, batch: int = 1):
        model.eval()
        self.model, self.guidance, self.temperature, self.batch = model, guidance, temperature, batch
        self.device = next(model.parameters()).device
        k = model.config.n_keys
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.queues = model.empty_queues(2 * batch)
        self.frame = torch.full((2 * batch, 2 * k), -1.0, device=self.device)  # the silent frame before the first
        self.velocity = torch.zeros(batch, k)  # of each sounding key, 0 when silent

    @torch.no_grad()
    def conditions(self, moods: torch.Tensor, keys: torch.Tensor | None) -> torch.Tensor:
        """Per-frame moods (T, 2) and keys (T,) of a single clip -> conditions (T, 2, D)."""
        t = moods.shape[0]
        drop = torch.cat([torch.zeros(t, dtype=torch.bool), torch.ones(t, dtype=torch.bool)]).to(self.device)
        emb = self.model.mood_embedding(torch.cat([moods, moods]).to(self.device), drop,
                                        None if keys is None else torch.cat([keys, keys]))
        return torch.stack([emb[:t], emb[t:]], dim=1)

    @torch.no_grad()
    def prime(self, frames: np.ndarray, conditions: torch.Tensor, sounding: np.ndarray) -> None:
        """Teacher-force known frames (T, 2K) (encoded, one clip) through the model, as if sampled; `sounding` (K,)
        = the last frame's velocities. After a receptive field of frames the state is the sampler's own."""
        for frame, cond in zip(torch.from_numpy(np.asarray(frames, np.float32)), conditions):
            self.model.step(self.frame, self.queues, cond)
            self.frame = frame.to(self.device).expand(2 * self.batch, -1)
        self.velocity = torch.from_numpy(np.asarray(sounding, np.float32)).expand(self.batch, -1).clone()

    @torch.no_grad()
    def run(self, conditions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Sample len(conditions) frames -> (active, onset), each (B, T, K) uint8 velocities."""
        b, k = self.batch, self.model.config.n_keys
        active = np.zeros((b, conditions.shape[0], k), dtype=np.uint8)
        onset = np.zeros_like(active)
        for t, cond in enumerate(conditions):
            logits = self.model.step(self.frame, self.queues, cond).cpu()
            lc, lu = logits[:b], logits[b:]
            guided = (lu + self.guidance * (lc - lu)) / self.temperature
            p_onset, p_sound = torch.sigmoid(guided[:, :k]), torch.sigmoid(guided[:, k:2 * k])
            vel = torch.sigmoid(lc[:, 2 * k:])
            new = torch.rand(b, k, generator=self.generator) < p_onset
            keep = (self.velocity > 0) & (torch.rand(b, k, generator=self.generator) < p_sound)
            sounding = new | keep
            self.velocity = torch.where(new, (1 + vel * 126).round(), torch.where(sounding, self.velocity, 0.0))
            onset[:, t] = torch.where(new, self.velocity, 0.0).numpy().astype(np.uint8)
            active[:, t] = self.velocity.numpy().astype(np.uint8)
            enc = torch.cat([torch.where(sounding, 1.0, -1.0),
                             torch.where(new, ONSET_FLOOR + (1 - ONSET_FLOOR) * self.velocity / 127.0, -1.0)], dim=1)
            self.frame = torch.cat([enc, enc]).to(self.device)
        return active, onset
