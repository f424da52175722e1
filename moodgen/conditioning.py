"""The condition every engine shares: the mood (valence, arousal) as Fourier features through an MLP, an optional
musical key, and the learned null embedding that replaces both when the condition is dropped (classifier-free
guidance). Shapes: mood (B, 2) in [-1, 1], key (B,) int64 in [0, 24), drop (B,) bool -> embedding (B, D).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from moodgen.keys import N_KEYS, PRIOR_FEATURES


def mood_fourier_features(mood: torch.Tensor, n_freq: int) -> torch.Tensor:
    """(B, 2) in [-1, 1] -> (B, 2 + 4 n_freq): the raw values plus sin/cos at octave-spaced frequencies."""
    freqs = (2.0 ** torch.arange(n_freq, device=mood.device)) * math.pi
    angles = mood[:, :, None] * freqs  # (B, 2, n_freq)
    return torch.cat([mood, angles.sin().flatten(1), angles.cos().flatten(1)], dim=1)


def mood_mlp(n_freq: int, dim: int) -> nn.Sequential:
    """Fourier features (B, 2 + 4 n_freq) -> (B, dim)."""
    return nn.Sequential(nn.Linear(2 + 4 * n_freq, dim), nn.SiLU(), nn.Linear(dim, dim))


class KeyCondition(nn.Module):
    """A learned vector per key, added to the mood embedding, and the prior p(key | mood) as a buffer
    (`moodgen.keys` weight layout) that training fits on the labels and saves with the weights, so the checkpoint
    says which keys each mood tends to."""

    def __init__(self, cond_dim: int):
        super().__init__()
        self.embed = nn.Embedding(N_KEYS, cond_dim, _weight=torch.empty(N_KEYS, cond_dim))
        # nn.Embedding's own init, skipped on the meta device (checkpoint loading builds shapes only there), where
        # normal_ runs Python code that imports torch._dynamo (~1 s of an app's start)
        if not self.embed.weight.is_meta:
            nn.init.normal_(self.embed.weight)
        self.register_buffer("prior", torch.zeros(N_KEYS, PRIOR_FEATURES))


def condition_embedding(mlp: nn.Module, null: torch.Tensor, key_condition: KeyCondition | None, n_freq: int,
                        mood: torch.Tensor, drop: torch.Tensor, key: torch.Tensor | None) -> torch.Tensor:
    """(B, 2) mood, (B,) drop, (B,) key -> (B, D); dropped rows get the learned null embedding `null` (D,).

    Models without a key condition ignore `key`; key-conditioned ones require it."""
    m = mlp(mood_fourier_features(mood, n_freq))
    if key_condition is not None:
        if key is None:
            raise ValueError("this model is conditioned on a musical key: pass key, (B,) int64 in [0, 24)")
        m = m + key_condition.embed(key.to(m.device))
    return torch.where(drop[:, None], null.expand_as(m), m)
