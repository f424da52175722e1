"""The evaluation protocol: which clips each row of the report judges (real held-out clips, the nearest-label
oracle, every engine, the null models, baselines) and `evaluate`, which scores them all. S samples, M mel bands,
T frames, N clips, D embedding dims."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import librosa
import numpy as np
from tqdm import tqdm

from moodgen import audio
from moodgen.config import MelParams
from moodgen.judge import Assessment, Judge
from moodgen.mood import PRESETS, quadrant_by_number
from train.corpus.cache import CorpusCache
from train.evaluation.correlates import contrasts, correlates_by_group, mood_correlates
from train.evaluation.metrics import EmbeddingSpace, mean_pairwise_distance, nearest_distances
from train.evaluation.rows import Unit, embeddings, row_metrics
from train.evaluation.structure import structure_measures, structure_summary


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


def clip_features(y: np.ndarray, sample_rate: int, key: str | None = None) -> dict[str, float]:
    """Mood correlates and musical-structure measures of one (S,) clip."""
    return {**mood_correlates(y, sample_rate, key), **structure_measures(y, sample_rate)}


def real_units(judge: Judge, cache: CorpusCache, items: list[dict], seconds: float, with_features: bool) -> list[Unit]:
    window = judge.mel_params.frames_for(seconds)
    units = []
    for it in tqdm(items, desc="real clips", unit="clip", leave=False):
        mel, y = center_crop(cache, it, judge.mel_params, seconds)
        feats = clip_features(y, judge.mel_params.sample_rate) if with_features else None
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


def generated_units(generate, judge: Judge, config: EvalConfig, desc: str, with_features: bool = True) -> list[Unit]:
    """Judge the clips `generate(valence, arousal, seed) -> (audio (S,), sample_rate, key or None)` makes for every
    target (with the presets' mood correlates unless `with_features` is False)."""
    window = judge.mel_params.frames_for(config.seconds)
    units = []
    for kind, group, target, seed in tqdm(targets_for(config), desc=desc, unit="clip", leave=False):
        y, sr, key = generate(*target, seed)
        units.append(Unit(target, group, kind, judge_audio(judge, y, sr, window),
                          clip_features(y, sr, key) if kind == "preset" and with_features else None))
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
        # the mastering gain taken back: real clips are dry renders, and the judge reads level as arousal
        return g.at_corpus_level(), int(g.sample_rate), g.key
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
                      "structure": structure_summary([u.features for u in units if u.features],
                                                     [u.group for u in units if u.features]),
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
