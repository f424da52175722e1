"""Agreement of judged with target moods, and distances between sets of embeddings (FD, KID, diversity,
nearest neighbour). Shapes: N, K set sizes, D embedding dims."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from moodgen.judge import Assessment

AXES = ("valence", "arousal")


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(x) >= 0, 1, -1)  # points on an axis go to the positive side, as in moodgen.mood


def quadrant_numbers(va: np.ndarray) -> np.ndarray:
    """(N, 2) points -> (N,) Russell quadrant numbers 1..4."""
    v, a = _sign(va[:, 0]), _sign(va[:, 1])
    return np.select([(v > 0) & (a > 0), (v < 0) & (a > 0), (v < 0) & (a < 0)], [1, 2, 3], 4)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation; NaN when either side is constant (no ranking to agree with)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def r2_score(target: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((target - np.mean(target)) ** 2))
    return float("nan") if ss_tot == 0 else 1.0 - float(np.sum((target - pred) ** 2)) / ss_tot


def mood_agreement(judged: np.ndarray, target: np.ndarray, judged_quadrant: np.ndarray | None = None) -> dict:
    """How well judged (N, 2) points agree with target (N, 2) points on the [-1, 1] pad.

    quadrant_accuracy uses `judged_quadrant` (the judge's quadrant head) when given, else the signs of `judged`.
    MAE is on the 0-1 scale (moodgen.mood.to_unit_scale), the scale the seed project reported.
    """
    judged, target = np.asarray(judged, dtype=float), np.asarray(target, dtype=float)
    jq = quadrant_numbers(judged) if judged_quadrant is None else np.asarray(judged_quadrant)
    tq = quadrant_numbers(target)
    out = {"n": int(len(target)), "quadrant_accuracy": float(np.mean(jq == tq)),
           "majority_quadrant_accuracy": float(np.bincount(tq).max() / len(tq))}  # always-the-commonest baseline
    for i, axis in enumerate(AXES):
        signs = _sign(target[:, i])
        out[f"majority_sign_accuracy_{axis}"] = float(max(np.mean(signs > 0), np.mean(signs < 0)))
        out[f"spearman_{axis}"] = spearman(target[:, i], judged[:, i])
        out[f"r2_{axis}"] = r2_score(target[:, i], judged[:, i])
        out[f"sign_accuracy_{axis}"] = float(np.mean(_sign(judged[:, i]) == _sign(target[:, i])))
        out[f"mae_unit_{axis}"] = float(np.mean(np.abs(judged[:, i] - target[:, i])) / 2.0)
    out["mae_unit"] = (out["mae_unit_valence"] + out["mae_unit_arousal"]) / 2.0
    return out


def agreement_of(assessments: list[Assessment], target: np.ndarray) -> dict:
    judged = np.array([[a.valence, a.arousal] for a in assessments])
    return mood_agreement(judged, target, np.array([a.quadrant for a in assessments]))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to (N, D) and (K, D) embeddings (biased for small N, K)."""
    mu = a.mean(0) - b.mean(0)
    eps = 1e-6 * np.eye(a.shape[1])  # keeps sqrtm defined when a set has fewer clips than dimensions
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)) + eps, np.atleast_2d(np.cov(b, rowvar=False)) + eps
    covmean = linalg.sqrtm(ca @ cb)
    return float(mu @ mu + np.trace(ca + cb - 2.0 * np.real(covmean)))


def kernel_inception_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y/D + 1)^3 between (N, D) and (K, D) embeddings."""
    d = a.shape[1]
    kaa, kbb, kab = ((x @ y.T / d + 1.0) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                 - 2.0 * kab.mean())


def mean_pairwise_distance(x: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return float(d[np.triu_indices(len(x), 1)].mean())


def nearest_distances(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance from each row of x to its nearest row of bank."""
    return np.sqrt(np.maximum(((x[:, None] - bank[None]) ** 2).sum(-1), 0.0)).min(axis=1)


@dataclass(frozen=True)
class EmbeddingSpace:
    """Per-dimension standardization fitted on the train windows, so every distance (FD, KID, diversity,
    nearest-train) weighs the judge's dimensions alike and the KID kernel works at unit scale."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, bank: np.ndarray) -> EmbeddingSpace:
        return cls(bank.mean(0), np.maximum(bank.std(0), 1e-6))

    def __call__(self, embedding: np.ndarray) -> np.ndarray:
        return (embedding - self.mean) / self.std
