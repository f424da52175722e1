"""Evaluation: agreement measures for the mood judge, and the report that puts moodgen beside real audio.

    python -m train.evaluate --checkpoint checkpoints/ [--quick]
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm import tqdm

from moodgen import audio, notes
from moodgen.judge import Assessment, Judge

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
    out = {"n": int(len(target)), "quadrant_accuracy": float(np.mean(jq == quadrant_numbers(target)))}
    for i, axis in enumerate(AXES):
        out[f"spearman_{axis}"] = spearman(target[:, i], judged[:, i])
        out[f"r2_{axis}"] = r2_score(target[:, i], judged[:, i])
        out[f"sign_accuracy_{axis}"] = float(np.mean(_sign(judged[:, i]) == _sign(target[:, i])))
        out[f"mae_unit_{axis}"] = float(np.mean(np.abs(judged[:, i] - target[:, i])) / 2.0)
    out["mae_unit"] = (out["mae_unit_valence"] + out["mae_unit_arousal"]) / 2.0
    return out


def agreement_of(assessments: list[Assessment], target: np.ndarray) -> dict:
    judged = np.array([[a.valence, a.arousal] for a in assessments])
    return mood_agreement(judged, target, np.array([a.quadrant for a in assessments]))


def vgmidi_agreement(judge: Judge, csv_path: str | Path, window_seconds: float = 10.0,
                     max_seconds: float = 60.0) -> dict:
    """Render VGMIDI's labelled phrases and compare the judge with the human (valence, arousal) signs.

    Evaluation only: VGMIDI never trains anything. Each phrase is rendered like the training corpus (sustain
    applied, same soundfont), cut to its first `max_seconds` to bound the cost, and judged as the mean over
    `window_seconds` windows. Labels are in {-1, +1}, so R2 is not reported.
    """
    csv_path = Path(csv_path)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    params = judge.mel_params
    window = params.frames_for(window_seconds)
    assessments, targets, skipped = [], [], []
    for row in tqdm(rows, desc="vgmidi", unit="phrase"):
        path = csv_path.parent / row["midi"]
        try:
            pm = notes.apply_sustain(notes.load_midi(path))
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        for inst in pm.instruments:  # pm is apply_sustain's copy; later notes would only be cut off again
            inst.notes = [n for n in inst.notes if n.start < max_seconds]
        y = notes.render_midi(pm, params.sample_rate)[: int(max_seconds * params.sample_rate)]
        assessments.append(judge.assess_windows(audio.mel_from_audio(y, params).numpy(), window))
        targets.append([float(row["valence"]), float(row["arousal"])])
    metrics = agreement_of(assessments, np.array(targets))
    for axis in AXES:
        metrics.pop(f"r2_{axis}")
        metrics.pop(f"mae_unit_{axis}")
    metrics.pop("mae_unit")
    metrics.update(skipped=skipped, window_seconds=window_seconds, max_seconds=max_seconds)
    return metrics
