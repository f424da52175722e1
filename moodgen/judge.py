"""The mood judge: a small CNN that says where a clip lands on the valence/arousal pad.

Trained only on real audio (EMOPIA renders, `python -m train.judge`); used to report on generated clips, never to
train, tune or select the generator. Input is the normalized log-mel every part of moodgen shares: (B, M, T) in
[-1, 1] with absolute dB levels, so loudness (an arousal cue) reaches the network. Mel bands are the channels of a
1D convolution over time; global mean+max pooling over time makes any clip length work. Outputs: (valence,
arousal) in [-1, 1] (tanh), logits of the four Russell quadrants Q1..Q4, and the penultimate-layer embedding used
for distances between sets of clips (Frechet distance, KID, diversity, memorization).

A judge with a valence head (`JudgeConfig.feature_set`, fit by `python -m train.judge_head`) reads valence as a
linear blend of the CNN's valence and hand-made mode/harmony/register cues (moodgen.mood_features), standardized
with statistics stored in the file. Judge files without one (older files) load as CNN-only judges.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moodgen.checkpoint import Component
from moodgen.config import MelParams, check_ranges
from moodgen.mood_features import FEATURE_SET, N_FEATURES, chroma_weights, valence_features

JUDGE_FILE = "judge.safetensors"  # in a checkpoints folder


@dataclass(frozen=True)
class JudgeConfig:
    n_mels: int = 128
    channels: tuple[int, ...] = (128, 128, 192, 256)
    kernel_sizes: tuple[int, ...] = (5, 5, 3, 3)
    embed_dim: int = 64
    dropout: float = 0.3
    feature_set: str = ""  # "" = valence from the CNN alone; else the mood_features set the valence head reads

    def __post_init__(self) -> None:
        check_ranges(self, {"n_mels": (1, 1024), "channels": (1, 4096), "kernel_sizes": (1, 63),
                            "embed_dim": (1, 4096)})
        if self.feature_set not in ("", FEATURE_SET):
            raise ValueError(f"unknown valence feature set {self.feature_set!r}; this moodgen reads {FEATURE_SET!r}")
        if self.n_mels < 1 or self.embed_dim < 1 or not self.channels:
            raise ValueError(f"invalid JudgeConfig sizes: {self}")
        if len(self.channels) != len(self.kernel_sizes):
            raise ValueError(f"channels and kernel_sizes need the same length, got {self.channels} and "
                             f"{self.kernel_sizes}")
        if any(k % 2 == 0 or k < 1 for k in self.kernel_sizes):
            raise ValueError(f"kernel sizes must be odd, got {self.kernel_sizes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def min_frames(self) -> int:
        """Shortest input the pooling stack accepts; shorter inputs are padded with silence (-1)."""
        return 2 ** (len(self.channels) - 1)


class JudgeNet(nn.Module, Component):
    """(B, M, T) normalized log-mel [, (B, N_FEATURES) valence cues] -> ((B, 2) valence/arousal in [-1, 1],
    (B, 4) quadrant logits, (B, D) embedding)."""

    kind = "judge"
    config_class = JudgeConfig

    def __init__(self, config: JudgeConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.n_mels
        for i, (c, k) in enumerate(zip(config.channels, config.kernel_sizes)):
            layers += [nn.Conv1d(c_in, c, k, padding=k // 2), nn.BatchNorm1d(c), nn.ReLU()]
            if i < len(config.channels) - 1:  # halve time between blocks: ~86 -> ~11 frames/s at the top
                layers.append(nn.MaxPool1d(2))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * c_in, config.embed_dim), nn.ReLU())
        self.mood_head = nn.Linear(config.embed_dim, 2)
        self.quadrant_head = nn.Linear(config.embed_dim, 4)
        if config.feature_set:
            # valence = w . [CNN valence, standardized cues] + b, clamped to the pad
            self.register_buffer("feature_mean", torch.zeros(N_FEATURES))
            self.register_buffer("feature_scale", torch.ones(N_FEATURES))
            self.valence_head = nn.Linear(1 + N_FEATURES, 1)

    def forward(self, mel: torch.Tensor, cues: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if mel.ndim != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"expected (B, {self.config.n_mels}, T) mels, got {tuple(mel.shape)}")
        if self.config.feature_set and (cues is None or tuple(cues.shape) != (mel.shape[0], N_FEATURES)):
            got = None if cues is None else tuple(cues.shape)
            raise ValueError(f"this judge's valence head needs ({mel.shape[0]}, {N_FEATURES}) cues, got {got}")
        if mel.shape[-1] < self.config.min_frames:
            mel = F.pad(mel, (0, self.config.min_frames - mel.shape[-1]), value=-1.0)
        h = self.features(mel)
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        emb = self.embedding(pooled)
        va = torch.tanh(self.mood_head(emb))
        if self.config.feature_set:
            scaled = (cues.to(va) - self.feature_mean) / self.feature_scale
            valence = self.valence_head(torch.cat([va[:, :1], scaled], dim=1)).clamp(-1.0, 1.0)
            va = torch.cat([valence, va[:, 1:]], dim=1)
        return va, self.quadrant_head(emb), emb


def windows_of(mel: np.ndarray, window_frames: int) -> list[np.ndarray]:
    """(M, T) -> consecutive (M, window_frames) windows, then the rest when it is at least half a window (or all)."""
    mel = np.asarray(mel, dtype=np.float32)
    if window_frames < 1:
        raise ValueError(f"window_frames must be positive, got {window_frames}")
    n_full = mel.shape[-1] // window_frames
    windows = [mel[:, i * window_frames:(i + 1) * window_frames] for i in range(n_full)]
    rest = mel[:, n_full * window_frames:]
    if not windows or rest.shape[-1] >= window_frames // 2:
        windows.append(rest)
    return windows


@dataclass(frozen=True)
class Assessment:
    """Everything the judge says about one clip."""

    valence: float
    arousal: float
    quadrant_probs: np.ndarray  # (4,) for Q1..Q4
    embedding: np.ndarray  # (D,)

    @property
    def quadrant(self) -> int:
        return int(np.argmax(self.quadrant_probs)) + 1


class Judge:
    """Inference wrapper around a trained `JudgeNet` (kind "judge" in moodgen.checkpoint)."""

    def __init__(self, net: JudgeNet, mel_params: MelParams, metadata: dict | None = None,
                 device: torch.device | str = "cpu"):
        if net.config.n_mels != mel_params.n_mels:
            raise ValueError(f"judge expects {net.config.n_mels} mel bands, MelParams has {mel_params.n_mels}")
        self.net = net.to(device).eval()
        self.mel_params = mel_params
        self.metadata = metadata or {}
        self.device = torch.device(device)

    @functools.cached_property
    def chroma(self) -> np.ndarray:
        """(12, M) for the valence cues; made on first use, since it loads librosa (0.3-0.6 s of an app's start)."""
        return chroma_weights(self.mel_params)

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu") -> Judge:
        net, meta = JudgeNet.from_file(path, device)
        return cls(net, meta["mel_params_obj"], meta, device)

    def assess_batch(self, mels: np.ndarray | torch.Tensor) -> list[Assessment]:
        """(B, M, T) mels of equal length -> one Assessment each."""
        x = torch.as_tensor(np.asarray(mels, dtype=np.float32), device=self.device)
        if x.ndim != 3:
            raise ValueError(f"expected (B, M, T) mels, got shape {tuple(x.shape)}")
        cues = None
        if self.net.config.feature_set:
            cues = torch.as_tensor(self.cues(x.cpu().numpy()), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            va, logits, emb = self.net(x, cues)
        va, probs, emb = va.cpu().numpy(), logits.softmax(-1).cpu().numpy(), emb.cpu().numpy()
        return [Assessment(float(v[0]), float(v[1]), p, e) for v, p, e in zip(va, probs, emb)]

    def cues(self, mels: np.ndarray) -> np.ndarray:
        """(B, M, T) -> (B, N_FEATURES) the valence cues of moodgen.mood_features."""
        return np.stack([valence_features(m, self.mel_params, self.chroma) for m in mels])

    def assess(self, mel: np.ndarray | torch.Tensor) -> Assessment:
        """(M, T) mel -> Assessment (one forward pass for all outputs)."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2:
            raise ValueError(f"expected an (M, T) mel, got shape {mel.shape}")
        return self.assess_batch(mel[None])[0]

    def assess_windows(self, mel: np.ndarray, window_frames: int) -> Assessment:
        """Judge a long (M, T) mel as the mean over its non-overlapping windows of `window_frames` frames.

        The judge was trained on crops of a few seconds; averaging window verdicts keeps a long piece on the scale
        of a short generated clip. A trailing window shorter than half a window is dropped (unless it is all).
        """
        windows = windows_of(mel, window_frames)
        n_full = sum(w.shape[-1] == window_frames for w in windows)
        parts = self.assess_batch(np.stack(windows[:n_full])) if n_full else []
        if len(windows) > n_full:
            parts.append(self.assess(windows[-1]))
        return Assessment(float(np.mean([p.valence for p in parts])), float(np.mean([p.arousal for p in parts])),
                          np.mean([p.quadrant_probs for p in parts], axis=0),
                          np.mean([p.embedding for p in parts], axis=0))

    def predict(self, mel: np.ndarray) -> tuple[float, float]:
        """(M, T) -> judged (valence, arousal) in [-1, 1]."""
        a = self.assess(mel)
        return a.valence, a.arousal

    def quadrant_probs(self, mel: np.ndarray) -> np.ndarray:
        """(M, T) -> (4,) probabilities of Q1..Q4."""
        return self.assess(mel).quadrant_probs

    def embed(self, mel: np.ndarray) -> np.ndarray:
        """(M, T) -> (D,) penultimate-layer embedding."""
        return self.assess(mel).embedding
