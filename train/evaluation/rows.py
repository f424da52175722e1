"""A row of the report: its judged clips (`Unit`) and the metric columns computed from them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodgen.judge import Assessment
from train.evaluation.metrics import (
    EmbeddingSpace,
    agreement_of,
    frechet_distance,
    kernel_inception_distance,
    mean_pairwise_distance,
    nearest_distances,
    quadrant_numbers,
)


@dataclass(frozen=True)
class Unit:
    """One judged clip of a row. kind: "preset" (a preset target), "grid" (a grid target) or "real" (a held-out
    clip, whose target is its own label and which counts for every column)."""

    target: tuple[float, float]
    group: str  # preset / quadrant name; "" for grid targets
    kind: str
    assessment: Assessment
    features: dict[str, float] | None  # mood correlates of the audio (None for sets that only need embeddings)


def embeddings(units: list[Unit], space: EmbeddingSpace) -> np.ndarray:
    """(N, D) standardized embeddings of the units."""
    return space(np.stack([u.assessment.embedding for u in units]))


def row_metrics(units: list[Unit], reference: np.ndarray, train_bank: np.ndarray, close: float,
                space: EmbeddingSpace) -> dict:
    """Every column of the table for one row. `reference`: held-out real embeddings; `train_bank`: train ones
    (both already in `space`); `close`: a nearest-train distance that only 5 % of real held-out clips go below."""
    preset = [u for u in units if u.kind in ("preset", "real")]
    grid = [u for u in units if u.kind in ("grid", "real")]
    targets = lambda us: np.array([u.target for u in us])  # noqa: E731
    presets = agreement_of([u.assessment for u in preset], targets(preset))
    on_grid = agreement_of([u.assessment for u in grid], targets(grid))
    every = agreement_of([u.assessment for u in units], targets(units))
    emb = embeddings(units, space)
    groups = sorted({u.group for u in preset})
    nearest = nearest_distances(emb, train_bank)
    return {
        "n_clips": len(units),
        "quadrant_accuracy": presets["quadrant_accuracy"],
        "sign_accuracy_valence": presets["sign_accuracy_valence"],
        "sign_accuracy_arousal": presets["sign_accuracy_arousal"],
        "spearman_valence": on_grid["spearman_valence"],
        "spearman_arousal": on_grid["spearman_arousal"],
        "mae_unit": every["mae_unit"], "mae_unit_valence": every["mae_unit_valence"],
        "mae_unit_arousal": every["mae_unit_arousal"],
        "frechet_distance": frechet_distance(emb, reference),
        "kid": kernel_inception_distance(emb, reference),
        "diversity": float(np.nanmean([mean_pairwise_distance(embeddings([u for u in preset if u.group == g], space))
                                       for g in groups])),
        "nearest_train_median": float(np.median(nearest)),
        "closer_than_real_p05": float(np.mean(nearest < close)),
        "confusion": confusion(preset),
    }


def confusion(units: list[Unit]) -> list[list[int]]:
    """4x4 counts: rows = target quadrant Q1..Q4, columns = the judge's quadrant."""
    out = np.zeros((4, 4), dtype=int)
    for q, j in zip(quadrant_numbers(np.array([u.target for u in units])), [u.assessment.quadrant for u in units]):
        out[q - 1, j - 1] += 1
    return out.tolist()
