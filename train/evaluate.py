"""Evaluation: agreement measures for the mood judge, and the report that puts moodgen beside real audio.

    python -m train.evaluate --checkpoint checkpoints/ [--quick]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy import linalg, stats
from tqdm import tqdm

from moodgen import audio, midi
from moodgen.config import MelParams
from moodgen.judge import Assessment, Judge
from moodgen.mood import PRESETS, quadrant_by_number
from train.corpus.cache import CorpusCache
from moodgen.keys import parse_key
from train.corpus.features import key_profile_scores

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
            pm = midi.apply_sustain(midi.load_midi(path))
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        for inst in pm.instruments:  # pm is apply_sustain's copy; later notes would only be cut off again
            inst.notes = [n for n in inst.notes if n.start < max_seconds]
        y = midi.render_midi(pm, params.sample_rate)[: int(max_seconds * params.sample_rate)]
        assessments.append(judge.assess_windows(audio.mel_from_audio(y, params).numpy(), window))
        targets.append([float(row["valence"]), float(row["arousal"])])
    metrics = agreement_of(assessments, np.array(targets))
    for axis in AXES:
        metrics.pop(f"r2_{axis}")
        metrics.pop(f"mae_unit_{axis}")
    metrics.pop("mae_unit")
    metrics.update(skipped=skipped, window_seconds=window_seconds, max_seconds=max_seconds)
    return metrics


# --------------------------------------------------------------------------------------------- the report

@dataclass(frozen=True)
class EvalConfig:
    checkpoint: str = "checkpoints"
    cache_dir: str = ".cache/corpus/emopia"
    out_dir: str = "reports"
    seeds: int = 8  # per preset
    grid: int = 5  # grid x grid targets for the Spearman columns
    grid_extent: float = 0.8  # grid targets span [-extent, extent] on both axes
    seconds: float = 10.0  # length of every generated clip and of every real crop
    real_per_quadrant: int = 0  # held-out clips per quadrant for the real rows (0 = all)
    train_clips: int = 0  # train clips whose windows form the memorization set (0 = all)
    null_guidance: bool = True  # also generate unconditionally (guidance 0) with the default engine
    threads: int = 2
    seed: int = 0  # song-level split of the test set into reference / real halves, null-model shuffle

    def __post_init__(self) -> None:
        if self.seeds < 2 or self.grid < 2 or self.seconds <= 0 or not 0 < self.grid_extent <= 1:
            raise ValueError(f"need seeds >= 2, grid >= 2, seconds > 0, grid_extent in (0, 1]: {self}")


QUICK = {"seeds": 2, "grid": 2, "seconds": 2.0, "real_per_quadrant": 3, "train_clips": 24}  # CI smoke run


@dataclass(frozen=True)
class Unit:
    """One judged clip of a row. kind: "preset" (a preset target), "grid" (a grid target) or "real" (a held-out
    clip, whose target is its own label and which counts for every column)."""

    target: tuple[float, float]
    group: str  # preset / quadrant name; "" for grid targets
    kind: str
    assessment: Assessment
    features: dict[str, float] | None  # mood correlates of the audio (None for sets that only need embeddings)


def mood_correlates(y: np.ndarray, sample_rate: int, key: str | None = None) -> dict[str, float]:
    """Simple audio correlates of mood for a (S,) waveform: level, note density, tempo, major/minor key profile.

    Chroma comes from the constant-Q transform: on 1,076 real EMOPIA clips its major-minor separates positive from
    negative valence better than STFT chroma (AUC 0.69 vs 0.66; benchmarks/correlate_validity.py). With the `key`
    an engine was conditioned on ("A minor"), `in_mode` says whether the heard mode matches it (1/0)."""
    y = np.asarray(y, dtype=np.float32)
    duration = max(len(y) / sample_rate, 1e-3)
    envelope = librosa.onset.onset_strength(y=y, sr=sample_rate)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate)
    tempo = np.atleast_1d(librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate)[0])[0]
    octaves = min(7, int(np.log2(sample_rate / 2 / librosa.note_to_hz("C1"))) - 1)  # librosa's 7, below Nyquist
    chroma = np.nan_to_num(librosa.feature.chroma_cqt(y=y, sr=sample_rate, n_octaves=octaves)).mean(axis=1)
    major, minor = key_profile_scores(chroma)
    out = {"loudness_db": audio.rms_db(y), "onset_rate": len(onsets) / duration, "tempo_bpm": float(tempo),
           "mode": major - minor, "key_clarity": max(major, minor)}
    if key is not None:
        out["in_mode"] = float((major >= minor) == (parse_key(key) < 12))
    return out


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
    def fit(cls, bank: np.ndarray) -> "EmbeddingSpace":
        return cls(bank.mean(0), np.maximum(bank.std(0), 1e-6))

    def __call__(self, embedding: np.ndarray) -> np.ndarray:
        return (embedding - self.mean) / self.std


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


def correlates_by_group(units: list[Unit]) -> dict[str, dict[str, float]]:
    """Mean mood correlates per preset (or per quadrant for real clips)."""
    out = {}
    for g in sorted({u.group for u in units if u.group and u.features}):
        feats = [u.features for u in units if u.group == g and u.features]
        out[g] = {k: float(np.mean([f[k] for f in feats])) for k in feats[0]}
    return out


# Contrasts between presets that real music predicts the sign of: (name, correlate, groups +, groups -).
CONTRASTS = (
    ("arousal: loudness", "loudness_db", ("happy", "angry"), ("relaxed", "sad")),
    ("arousal: onsets/s", "onset_rate", ("happy", "angry"), ("relaxed", "sad")),
    ("arousal: tempo", "tempo_bpm", ("happy", "angry"), ("relaxed", "sad")),
    ("valence: major-minor", "mode", ("happy", "relaxed"), ("angry", "sad")),
    ("valence: major-minor, high arousal", "mode", ("happy",), ("angry",)),
    ("valence: major-minor, low arousal", "mode", ("relaxed",), ("sad",)),
)


def contrasts(units: list[Unit]) -> dict[str, dict[str, float]]:
    """Mean difference (+ groups minus - groups) of each correlate over clips, with its standard error."""
    out = {}
    for name, key, plus, minus in CONTRASTS:
        a = np.array([u.features[key] for u in units if u.features and u.group in plus])
        b = np.array([u.features[key] for u in units if u.features and u.group in minus])
        if len(a) < 2 or len(b) < 2:
            continue
        out[name] = {"diff": float(a.mean() - b.mean()),
                     "se": float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))}
    return out


def judge_audio(judge: Judge, y: np.ndarray, sample_rate: int, window: int) -> Assessment:
    """Judge what a listener hears: the mel of the (S,) audio, resampled to the judge's rate if needed."""
    if sample_rate != judge.mel_params.sample_rate:
        y = librosa.resample(np.asarray(y, dtype=np.float32), orig_sr=sample_rate,
                             target_sr=judge.mel_params.sample_rate)
    return judge.assess_windows(audio.mel_from_audio(y, judge.mel_params).numpy(), window)


def center_crop(cache: CorpusCache, item: dict, mel_params: MelParams, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The middle `seconds` of a cached clip: ((M, T) mel, (S,) audio)."""
    mel = cache.mel(item)
    frames = min(mel_params.frames_for(seconds), mel.shape[1])
    start = (mel.shape[1] - frames) // 2
    y = cache.audio(item)
    s0 = start * mel_params.hop_length
    return mel[:, start:start + frames], y[s0:s0 + (frames - 1) * mel_params.hop_length]


def real_units(judge: Judge, cache: CorpusCache, items: list[dict], seconds: float, with_features: bool) -> list[Unit]:
    window = judge.mel_params.frames_for(seconds)
    units = []
    for it in tqdm(items, desc="real clips", unit="clip", leave=False):
        mel, y = center_crop(cache, it, judge.mel_params, seconds)
        feats = mood_correlates(y, judge.mel_params.sample_rate) if with_features else None
        units.append(Unit((it["valence"], it["arousal"]), quadrant_by_number(it["quadrant"]).name, "real",
                          judge.assess_windows(mel, window), feats))
    return units


def train_bank(judge: Judge, cache: CorpusCache, items: list[dict], seconds: float) -> np.ndarray:
    """(N, D) embeddings of every non-overlapping `seconds` window of the given train clips (memorization set)."""
    frames = judge.mel_params.frames_for(seconds)
    out = []
    for it in tqdm(items, desc="train windows", unit="clip", leave=False):
        mel = cache.mel(it)
        windows = [mel[:, s:s + frames] for s in range(0, max(mel.shape[1] - frames, 0) + 1, frames)]
        out += [a.embedding for a in judge.assess_batch(np.stack(windows))]
    return np.stack(out)


def split_test_songs(items: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Song-level halves of the held-out clips: (reference set for distances, the 'real' row's clips)."""
    songs = sorted({it["song_id"] for it in items})
    order = np.random.default_rng(seed).permutation(len(songs))
    reference_songs = {songs[i] for i in order[: len(songs) // 2]}
    return ([it for it in items if it["song_id"] in reference_songs],
            [it for it in items if it["song_id"] not in reference_songs])


def limit_per_quadrant(items: list[dict], n: int) -> list[dict]:
    if n <= 0:
        return items
    return [it for q in (1, 2, 3, 4) for it in [i for i in items if i["quadrant"] == q][:n]]


def targets_for(config: EvalConfig) -> list[tuple[str, str, tuple[float, float], int]]:
    """(kind, group, target, seed) of every clip a generating row makes: presets x seeds, then the grid."""
    out = [("preset", name, point, seed) for name, point in PRESETS.items() for seed in range(config.seeds)]
    axis = np.linspace(-config.grid_extent, config.grid_extent, config.grid)
    out += [("grid", "", (float(v), float(a)), i) for i, (v, a) in enumerate((v, a) for a in axis for v in axis)]
    return out


def generated_units(generate, judge: Judge, config: EvalConfig, desc: str) -> list[Unit]:
    """Judge the clips `generate(valence, arousal, seed) -> (audio (S,), sample_rate, key or None)` makes for every
    target."""
    window = judge.mel_params.frames_for(config.seconds)
    units = []
    for kind, group, target, seed in tqdm(targets_for(config), desc=desc, unit="clip", leave=False):
        y, sr, key = generate(*target, seed)
        units.append(Unit(target, group, kind, judge_audio(judge, y, sr, window),
                          mood_correlates(y, sr, key) if kind == "preset" else None))
    return units


def retrieval_units(pool: list[Unit], config: EvalConfig) -> list[Unit]:
    """Oracle: for each target, a real held-out clip nearest by mood label (seed k takes the k-th nearest)."""
    labels = np.array([u.target for u in pool])
    out = []
    for kind, group, target, seed in targets_for(config):
        order = np.argsort(np.linalg.norm(labels - np.array(target), axis=1), kind="stable")
        chosen = pool[order[seed % len(pool)] if kind == "preset" else order[0]]
        out.append(Unit(target, group, kind, chosen.assessment, chosen.features))
    return out


def shuffled_units(units: list[Unit], seed: int) -> list[Unit]:
    """Null model: the same clips scored against targets permuted among them (the condition carries nothing)."""
    rng = np.random.default_rng(seed)
    out = []
    for kind in ("preset", "grid"):
        these = [u for u in units if u.kind == kind]
        perm = rng.permutation(len(these))
        out += [Unit(these[p].target, these[p].group, kind, u.assessment, u.features) for u, p in zip(these, perm)]
    return out


def pipeline_generator(pipeline, engine: str, seconds: float, guidance: float | None = None):
    def generate(valence: float, arousal: float, seed: int) -> tuple[np.ndarray, int, str | None]:
        g = pipeline.generate(valence, arousal, seconds=seconds, seed=seed, guidance=guidance, engine=engine)
        return np.asarray(g.audio, dtype=np.float32), int(g.sample_rate), g.key
    return generate


def evaluate(pipeline, judge: Judge, cache: CorpusCache, config: EvalConfig,
             extra_generators: dict | None = None, skipped: list[dict] | None = None) -> dict:
    """All rows and columns of the report as one JSON-able dict (`pipeline` None: no engine rows).

    `extra_generators`: name -> generate(valence, arousal, seed) -> (audio, sample_rate), e.g. the seed's cGAN.
    """
    if judge.mel_params != cache.mel_params:
        raise ValueError("the judge was trained on other MelParams than this cache's; retrain it or use its cache")
    start = time.time()
    skipped = list(skipped or [])
    test = cache.select("test", transpose=0)
    reference_items, real_items = split_test_songs(test, config.seed)
    reference_items = limit_per_quadrant(reference_items, config.real_per_quadrant)
    real_items = limit_per_quadrant(real_items, config.real_per_quadrant)
    train_items = cache.select("train", transpose=0)
    if config.train_clips:
        train_items = train_items[:: max(1, len(train_items) // config.train_clips)][: config.train_clips]
    raw_bank = train_bank(judge, cache, train_items, config.seconds)
    space = EmbeddingSpace.fit(raw_bank)
    bank = space(raw_bank)
    reference = embeddings(real_units(judge, cache, reference_items, config.seconds, with_features=False), space)
    real = real_units(judge, cache, real_items, config.seconds, with_features=True)

    rows: dict[str, list[Unit]] = {"real held-out": real, "nearest real (oracle)": retrieval_units(real, config)}
    notes_by_row = {
        "real held-out": f"{len(real)} held-out EMOPIA clips ({config.seconds:g} s centre crops) against their own "
                         "labels; distances to the other half of the test songs",
        "nearest real (oracle)": "for each target the held-out clip nearest by mood label (k-th nearest for seed k)",
    }
    for engine in pipeline.engines if pipeline else ():
        name = f"moodgen {engine}"
        rows[name] = generated_units(pipeline_generator(pipeline, engine, config.seconds), judge, config, name)
        notes_by_row[name] = f"engine {engine!r}, default steps and guidance"
    if pipeline:
        default = f"moodgen {pipeline.default_engine}"
        rows["null: shuffled targets"] = shuffled_units(rows[default], config.seed)
        notes_by_row["null: shuffled targets"] = f"{default}'s clips scored against targets permuted among them"
    if pipeline and config.null_guidance:
        name = "null: unconditional"
        try:
            gen = pipeline_generator(pipeline, pipeline.default_engine, config.seconds, guidance=0.0)
            rows[name] = generated_units(gen, judge, config, name)
            notes_by_row[name] = f"{default} with guidance 0 (the condition dropped)"
        except ValueError as exc:
            skipped.append({"row": name, "reason": str(exc)})
    for name, gen in (extra_generators or {}).items():
        rows[name] = generated_units(gen, judge, config, name)
        notes_by_row[name] = "baseline"

    real_nearest = nearest_distances(embeddings(real, space), bank)
    close = float(np.percentile(real_nearest, 5))
    table = []
    for name, units in rows.items():
        metrics = row_metrics(units, reference, bank, close, space)
        table.append({"name": name, "note": notes_by_row[name], "metrics": metrics,
                      "correlates": correlates_by_group(units), "contrasts": contrasts(units),
                      "points": [{"kind": u.kind, "group": u.group, "target": list(u.target),
                                  "judged": [u.assessment.valence, u.assessment.arousal],
                                  "quadrant": u.assessment.quadrant} for u in units]})
    return {
        "config": asdict(config),
        "judge": {k: judge.metadata.get("provenance", {}).get(k) for k in ("test", "vgmidi", "git_sha", "steps")},
        "engines": list(pipeline.engines) if pipeline else [],
        "reference": {
            "n_reference_clips": len(reference), "n_train_windows": len(bank),
            "diversity_real_per_quadrant": {
                g: mean_pairwise_distance(embeddings([u for u in real if u.group == g], space))
                for g in sorted({u.group for u in real})},
            "nearest_train_real_median": float(np.median(real_nearest)),
            "nearest_train_real_p05": close,
        },
        "rows": table,
        "skipped": skipped,
        "wall_time_s": round(time.time() - start, 1),
    }


COLUMNS = (("quadrant_accuracy", "quadrant acc", "{:.2f}"), ("spearman_valence", "Spearman V", "{:.2f}"),
           ("spearman_arousal", "Spearman A", "{:.2f}"), ("mae_unit", "MAE (0-1)", "{:.3f}"),
           ("frechet_distance", "FD", "{:.2f}"), ("kid", "KID", "{:.3f}"), ("diversity", "diversity", "{:.2f}"),
           ("nearest_train_median", "nearest-train", "{:.2f}"), ("closer_than_real_p05", "< real p05", "{:.2f}"))
CORRELATES = (("loudness_db", "loudness dBFS", "{:.1f}"), ("onset_rate", "onsets/s", "{:.2f}"),
              ("tempo_bpm", "tempo BPM", "{:.0f}"), ("mode", "major-minor", "{:+.2f}"),
              ("key_clarity", "key clarity", "{:.2f}"), ("in_mode", "in mode", "{:.2f}"))


def _fmt(fmt: str, x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)


def markdown(result: dict, plots: dict[str, str]) -> str:
    c, ref, judge = result["config"], result["reference"], result["judge"]
    lines = ["# moodgen evaluation", "",
             f"`python -m train.evaluate --checkpoint {c['checkpoint']}` ({c['seeds']} seeds x 4 presets, "
             f"{c['grid']}x{c['grid']} target grid, {c['seconds']:g} s clips; {result['wall_time_s'] / 60:.1f} min). "
             "Every number is the mood judge's verdict (checkpoints/judge.safetensors, trained on real EMOPIA renders "
             "only; never used to train, tune or select the generator). Generated clips are judged on their audio.",
             ""]
    if judge.get("test"):
        t, v = judge["test"], judge.get("vgmidi") or {}
        lines += [f"Judge ceiling on held-out EMOPIA test clips: quadrant accuracy {t['quadrant_accuracy']:.2f}, "
                  f"Spearman V {t['spearman_valence']:.2f} / A {t['spearman_arousal']:.2f}"
                  + (f"; on human-labelled VGMIDI phrases (external): quadrant accuracy {v['quadrant_accuracy']:.2f}, "
                     f"sign accuracy V {v['sign_accuracy_valence']:.2f} / A {v['sign_accuracy_arousal']:.2f}"
                     if v else "") + ". See reports/judge.md.", ""]
    lines += ["| row | " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for row in result["rows"]:
        m = row["metrics"]
        lines.append(f"| {row['name']} | " + " | ".join(_fmt(f, m[k]) for k, _, f in COLUMNS) + " |")
    div = ", ".join(f"{g} {d:.2f}" for g, d in ref["diversity_real_per_quadrant"].items())
    lines += ["",
              "Columns: quadrant acc = the judge's quadrant equals the target's, on the four presets x seeds; "
              "Spearman = rank correlation of target and judged value per axis on the grid; MAE on the 0-1 scale "
              "(the seed project reported 0.34-0.45) over every clip; FD / KID = Frechet distance / kernel inception "
              "distance in the judge's embedding (standardized on the train windows) to "
              f"{ref['n_reference_clips']} held-out clips of other songs (FD is biased upward for small sets, KID "
              "is not); diversity = mean pairwise embedding distance among clips of one preset (real clips per "
              f"quadrant: {div}); nearest-train = median embedding distance to the nearest of {ref['n_train_windows']} "
              f"train-clip windows (real held-out clips: {ref['nearest_train_real_median']:.2f}); < real p05 = "
              "share of clips nearer to a train window than all but 5 % of real held-out clips (memorization flag). "
              "For real rows the targets are the clips' own labels.", ""]
    for row in result["rows"]:
        lines.append(f"- **{row['name']}**: {row['note']}")
    for s in result["skipped"]:
        lines.append(f"- **{s['row']}**: not evaluated: {s['reason']}")
    lines += ["", "## Mood correlates per preset (real rows: per quadrant)", "",
              "| row | preset | " + " | ".join(h for _, h, _ in CORRELATES) + " |",
              "|---" * (len(CORRELATES) + 2) + "|"]
    for row in result["rows"]:
        if row["name"].startswith("null: shuffled"):
            continue  # same clips as its engine
        for group, feats in row["correlates"].items():
            cells = " | ".join(_fmt(f, feats.get(k)) for k, _, f in CORRELATES)
            lines.append(f"| {row['name']} | {group} | {cells} |")
    lines += ["", "Loudness = RMS level; onsets/s = librosa onset detection; tempo = librosa beat tracker; "
              "major-minor = best Krumhansl major minus best minor key-profile correlation of the mean constant-Q "
              "chroma; key clarity = the larger of the two; in mode = share of clips whose heard mode (major-minor "
              "sign) is the mode of the key the engine was conditioned on.", ""]
    names = [c[0] for c in CONTRASTS]
    lines += ["## Do the presets differ the way real music does?", "",
              "Difference of the means between presets (real rows: quadrants), +- one standard error; the sign "
              "real music predicts is + for every column (arousal: happy+angry minus relaxed+sad; valence: "
              "happy+relaxed minus angry+sad, then within each arousal level).", "",
              "| row | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in result["rows"]:
        if row["name"].startswith("null: shuffled") or not row.get("contrasts"):
            continue
        cells = [(f"{c['diff']:+.2f} +- {c['se']:.2f}" if (c := row["contrasts"].get(n)) else "-") for n in names]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += [""]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def plot(result: dict, out_dir: Path) -> dict[str, str]:
    """Judged-vs-target scatter per row and per-quadrant confusion per row; returns name -> file name."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    colors = {"happy": "tab:orange", "angry": "tab:red", "sad": "tab:blue", "relaxed": "tab:green"}
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes[0], rows):
        for p in row["points"]:
            (tv, ta), (jv, ja) = p["target"], p["judged"]
            if p["kind"] == "grid":
                ax.plot([tv, jv], [ta, ja], color="0.7", lw=0.6)
                ax.plot(jv, ja, ".", color="0.3", ms=3)
            else:
                ax.plot(jv, ja, "o", color=colors.get(p["group"], "k"), ms=3, alpha=0.7)
        for name, (v, a) in PRESETS.items():
            ax.plot(v, a, "x", color=colors[name], ms=9, mew=2)
        ax.axhline(0, color="0.85", lw=0.8)
        ax.axvline(0, color="0.85", lw=0.8)
        ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", title=row["name"])
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("arousal")
    fig.suptitle("judged (dots) vs target (x = presets, grey lines = grid target -> judged)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "eval_va.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows), 2.8), squeeze=False)
    for ax, row in zip(axes[0], rows):
        cm = np.array(row["metrics"]["confusion"])
        ax.imshow(cm, cmap="Blues")
        for i in range(4):
            for j in range(4):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
        ax.set(xticks=range(4), yticks=range(4), xticklabels=[f"Q{i}" for i in range(1, 5)],
               yticklabels=[f"Q{i}" for i in range(1, 5)], xlabel="judged", title=row["name"])
        ax.title.set_fontsize(8)
    axes[0][0].set_ylabel("target")
    fig.tight_layout()
    fig.savefig(out_dir / "eval_confusion.png", dpi=110)
    plt.close(fig)
    return {"judged vs target": "eval_va.png", "quadrant confusion": "eval_confusion.png"}


def write_report(result: dict, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=1, sort_keys=True, allow_nan=True))
    plots = plot(result, out_dir)
    path = out_dir / "eval.md"
    path.write_text(markdown(result, plots))
    return path


def cgan_rows(checkpoint: Path, seconds: float) -> tuple[dict, list[dict]]:
    """The seed's cGAN baseline as an extra row when checkpoints/cgan.safetensors and its loader exist."""
    path = checkpoint / "cgan.safetensors"
    if not path.is_file():
        return {}, [{"row": "seed cGAN", "reason": f"{path} not found"}]
    try:
        from moodgen import cgan
    except ImportError as exc:
        return {}, [{"row": "seed cGAN", "reason": f"moodgen.cgan not importable ({exc})"}]
    model = cgan.load(path)

    def generate(valence: float, arousal: float, seed: int) -> tuple[np.ndarray, int, None]:
        return *model.generate_audio(valence, arousal, seconds=seconds, seed=seed), None

    return {"seed cGAN": generate}, []


def parse_args(argv: list[str]) -> EvalConfig:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = EvalConfig()
    ap.add_argument("--checkpoint", default=d.checkpoint, help="checkpoints/ folder (engines, judge, optional cgan)")
    ap.add_argument("--cache", default=d.cache_dir, help="prepared EMOPIA cache (real clips)")
    ap.add_argument("--out", default=d.out_dir)
    ap.add_argument("--quick", action="store_true", help="few seeds, coarse grid, short clips (CI)")
    ap.add_argument("--seeds", type=int)
    ap.add_argument("--grid", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--no-null-guidance", action="store_true", help="skip the unconditional (guidance 0) row")
    a = ap.parse_args(argv)
    config = EvalConfig(checkpoint=a.checkpoint, cache_dir=a.cache, out_dir=a.out, threads=a.threads,
                        null_guidance=not a.no_null_guidance, **(QUICK if a.quick else {}))
    explicit = {k: v for k, v in (("seeds", a.seeds), ("grid", a.grid), ("seconds", a.seconds)) if v is not None}
    return replace(config, **explicit)


def run(config: EvalConfig) -> Path:
    from moodgen.pipeline import MoodPipeline  # the pipeline is only needed here, not by the judge's training

    torch.set_num_threads(config.threads)
    extra, skipped = cgan_rows(Path(config.checkpoint), config.seconds)
    try:
        pipeline = MoodPipeline.from_checkpoint(config.checkpoint)
    except (ValueError, FileNotFoundError) as exc:  # no engine yet: the real and baseline rows still make sense
        pipeline = None
        skipped.append({"row": "moodgen engines", "reason": str(exc)})
    judge = (pipeline and pipeline.judge) or Judge.from_file(Path(config.checkpoint) / "judge.safetensors")
    result = evaluate(pipeline, judge, CorpusCache(config.cache_dir), config, extra, skipped)
    return write_report(result, config.out_dir)


def main(argv: list[str] | None = None) -> None:
    print(run(parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
