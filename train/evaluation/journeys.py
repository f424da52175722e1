"""The journey section of the evaluation: music whose mood moves, judged on sliding windows against its target.

Each engine plays eight 60 s journeys across the pad; the judge hears every 10 s window (hop 2.5 s) and its verdict
is compared with the target curve's mean over the same window (Spearman per axis, per journey and pooled over all
windows). The real reference is held-out EMOPIA clips of different quadrants joined end to end, judged the same way
against their labels. Joins (an extension's join, a loop's wrap, a stream's chunk boundaries; the real reference's
cuts) are scored against the clip's own distribution: the percentile of the sample jump and of the spectral flux
at the join among all of the clip's samples and frames. S samples, T frames, N windows.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moodgen import audio, midi
from moodgen.config import MelParams
from moodgen.judge import Judge
from moodgen.mood import PRESETS, quadrant_by_number
from train.corpus.emopia import list_clips
from train.evaluation.metrics import spearman

PATHS = (  # (name, waypoints as (fraction of the length, valence, arousal))
    ("sad to happy", ((0, -0.7, -0.7), (1, 0.7, 0.7))),
    ("happy to sad", ((0, 0.7, 0.7), (1, -0.7, -0.7))),
    ("relaxed to angry", ((0, 0.7, -0.7), (1, -0.7, 0.7))),
    ("angry to relaxed", ((0, -0.7, 0.7), (1, 0.7, -0.7))),
    ("calm, lively, calm (positive)", ((0, 0.6, -0.8), (0.5, 0.6, 0.8), (1, 0.6, -0.8))),
    ("lively, calm, lively (negative)", ((0, -0.6, 0.8), (0.5, -0.6, -0.8), (1, -0.6, 0.8))),
    ("round the pad", ((0, 0.7, 0.7), (1 / 3, -0.7, 0.7), (2 / 3, -0.7, -0.7), (1, 0.7, -0.7))),
    ("sad, happy, angry", ((0, -0.6, -0.6), (0.5, 0.7, 0.7), (1, -0.6, 0.8))),
)
REAL_ORDERS = ((3, 4, 1, 2), (1, 2, 3, 4), (4, 2, 3, 1), (2, 1, 4, 3), (3, 1, 2, 4), (4, 3, 2, 1), (1, 3, 4, 2),
               (2, 4, 1, 3))  # quadrant sequences of the real reference, every quadrant in each


@dataclass(frozen=True)
class JourneyConfig:
    journeys: int = 8
    seconds: float = 60.0
    window_seconds: float = 10.0
    hop_seconds: float = 2.5
    join_seconds: float = 20.0  # length of the extended, looped and streamed clips whose joins are scored
    seed: int = 0
    emopia_root: str = "../shared/data/emopia/EMOPIA_1.0"  # real reference when the corpus cache is absent

    def __post_init__(self) -> None:
        if not 1 <= self.journeys <= len(PATHS) or self.seconds < 2 * self.window_seconds or self.hop_seconds <= 0:
            raise ValueError(f"need 1 <= journeys <= {len(PATHS)}, seconds >= 2 windows, hop > 0: {self}")


def judge_windows(judge: Judge, y: np.ndarray, config: JourneyConfig) -> tuple[np.ndarray, np.ndarray]:
    """(S,) audio -> window centres (N,) in seconds and the judge's (valence, arousal) per window (N, 2)."""
    p = judge.mel_params
    mel = audio.mel_from_audio(np.asarray(y, np.float32), p).numpy()
    width, hop = (int(round(s * p.frames_per_second)) for s in (config.window_seconds, config.hop_seconds))
    starts = range(0, mel.shape[1] - width + 1, hop)
    verdicts = judge.assess_batch(np.stack([mel[:, s:s + width] for s in starts]))
    centres = np.array([(s + width / 2) / p.frames_per_second for s in starts])
    return centres, np.array([[v.valence, v.arousal] for v in verdicts])


def window_targets(curve: np.ndarray, rate: float, centres: np.ndarray, width: float) -> np.ndarray:
    """Mean of a (T, 2) curve sampled at `rate` over each window [centre - width/2, centre + width/2) -> (N, 2)."""
    out = []
    for c in centres:
        lo, hi = int(round((c - width / 2) * rate)), int(round((c + width / 2) * rate))
        out.append(curve[max(0, lo):max(lo + 1, hi)].mean(axis=0))
    return np.array(out)


def score(name: str, y: np.ndarray, curve: np.ndarray, rate: float, judge: Judge, config: JourneyConfig) -> dict:
    centres, judged = judge_windows(judge, y, config)
    target = window_targets(curve, rate, centres, config.window_seconds).round(4)  # a held axis is exactly constant
    return {"name": name, "centres": centres.round(3).tolist(), "target": target.tolist(),
            "judged": judged.round(4).tolist(), "spearman_valence": defined(spearman(target[:, 0], judged[:, 0])),
            "spearman_arousal": defined(spearman(target[:, 1], judged[:, 1]))}


def defined(x: float) -> float | None:
    return None if np.isnan(x) else x


def pooled(journeys: list[dict]) -> dict:
    """Spearman over every window of every journey, and the mean of the per-journey values (where defined)."""
    target = np.concatenate([np.array(j["target"]) for j in journeys])
    judged = np.concatenate([np.array(j["judged"]) for j in journeys])
    out = {}
    for i, axis in enumerate(("valence", "arousal")):
        per = [j[f"spearman_{axis}"] for j in journeys if j[f"spearman_{axis}"] is not None]
        out[f"pooled_{axis}"] = defined(spearman(target[:, i], judged[:, i]))
        out[f"mean_{axis}"] = float(np.mean(per)) if per else None
        out[f"journeys_{axis}"] = len(per)
    return out


def join_scores(y: np.ndarray, joins: list[int], sample_rate: int, params: MelParams) -> list[dict]:
    """At each join (a sample index), the percentile of its sample jump among all the clip's sample jumps and of
    the spectral flux there (the largest within a frame of it) among all the clip's frames."""
    y = np.asarray(y, np.float64)
    jumps = np.abs(np.diff(y))
    mel = audio.mel_from_audio(y.astype(np.float32), params).numpy()
    flux = np.concatenate([[0.0], np.clip(np.diff(mel, axis=1), 0, None).sum(axis=0)])
    out = []
    for at in joins:
        frame = int(round(at / params.hop_length))
        near = flux[max(0, frame - 1):frame + 2].max()
        out.append({"seconds": round(at / sample_rate, 3),
                    "jump_percentile": float((jumps < abs(y[at] - y[at - 1])).mean() * 100),
                    "flux_percentile": float((flux < near).mean() * 100)})
    return out


def engine_joins(pipeline, engine: str, config: JourneyConfig) -> dict[str, list[dict]]:
    """An extended journey's join, a looped journey's wrap (the loop played twice) and a stream's chunk joins."""
    sr, params, half = pipeline.mel_params.sample_rate, pipeline.mel_params, config.join_seconds / 2
    path = [(0.0, -0.6, -0.4), (config.join_seconds, 0.6, 0.6)]
    first = pipeline.journey([(0.0, -0.6, -0.4), (max(half, 10.0), 0.0, 0.1)], seed=config.seed, engine=engine)
    longer = pipeline.extend(first, half, valence=0.6, arousal=0.6)
    loop = pipeline.journey(path, seed=config.seed, engine=engine, loop=True)
    moods = iter([(-0.6, -0.4)] * int(half) + [(0.6, 0.6)] * int(half))
    stream = pipeline.stream(lambda: next(moods), seed=config.seed, engine=engine)
    chunks = [next(stream) for _ in range(2 * int(half))]
    stream.close()
    played = np.concatenate([c.audio for c in chunks])
    return {"extend": join_scores(longer.audio, [len(first.audio)], sr, params),
            "loop": join_scores(np.concatenate([loop.audio, loop.audio]), [len(loop.audio)], sr, params),
            "stream": join_scores(played, list(np.cumsum([len(c.audio) for c in chunks[:-1]])), sr, params)}


def engine_section(pipeline, engine: str, judge: Judge, config: JourneyConfig) -> dict:
    start = time.time()
    journeys = []
    for name, fractions in tqdm(PATHS[:config.journeys], desc=f"journeys {engine}", unit="journey", leave=False):
        waypoints = [(f * config.seconds, v, a) for f, v, a in fractions]
        j = pipeline.journey(waypoints, seed=config.seed, engine=engine)
        # judged with the mastering gain taken back: real clips are dry renders, and the judge reads level as arousal
        journeys.append(score(name, j.at_corpus_level(), j.curve, j.frame_rate, judge, config)
                        | {"waypoints": waypoints, "key_changes": [list(k) for k in j.key_changes]})
    made = time.time() - start
    return {"name": f"moodgen {engine}", "render": j.params()["render"], "journeys": journeys, **pooled(journeys),
            "seconds_per_journey": made / len(journeys), "joins": engine_joins(pipeline, engine, config)}


def real_clips(cache, config: JourneyConfig, sample_rate: int) -> tuple[str, dict[int, list]]:
    """Held-out EMOPIA clips per quadrant as (audio, valence, arousal), long enough for a quarter of a journey: from
    the corpus cache when it is prepared, else rendered from EMOPIA's MIDI (labels then: the quadrant's preset)."""
    long_enough = config.seconds / 4 * sample_rate
    by_quadrant: dict[int, list] = {q: [] for q in (1, 2, 3, 4)}
    if cache is not None:
        for item in cache.select("test", transpose=0):
            y = cache.audio(item)
            if len(y) >= long_enough:
                by_quadrant[item["quadrant"]].append((y, item["valence"], item["arousal"]))
        return "the prepared corpus cache (test split), continuous labels", by_quadrant
    clips, _ = list_clips(Path(config.emopia_root))
    for clip in (c for c in clips if c.split == "test"):
        if len(by_quadrant[clip.quadrant]) >= len(REAL_ORDERS):
            continue
        try:
            y = midi.render_midi(midi.apply_sustain(midi.load_midi(clip.path)), sample_rate)
        except ValueError:  # an unreadable or empty file: take the next clip
            continue
        if len(y) >= long_enough:
            by_quadrant[clip.quadrant].append((y, *PRESETS[quadrant_by_number(clip.quadrant).name]))
    return "EMOPIA MIDI (test split) rendered as the corpus is; labels: the quadrant's preset point", by_quadrant


def real_section(judge: Judge, cache, config: JourneyConfig) -> dict:
    """Clips of the four quadrants, `seconds / 4` each from their middle, joined end to end (hard cuts)."""
    sr = judge.mel_params.sample_rate
    source, by_quadrant = real_clips(cache, config, sr)
    per = int(config.seconds / 4 * sr)
    rate = 100.0  # the step curve of labels, sampled at 100 Hz
    journeys, joins = [], []
    for i, order in enumerate(REAL_ORDERS[:config.journeys]):
        parts, curve = [], []
        for q in order:
            pool = by_quadrant[q]
            if not pool:
                raise ValueError(f"no held-out clip of quadrant {q} lasts {config.seconds / 4:g} s")
            y, v, a = pool[(i * 7 + q) % len(pool)]
            mid = (len(y) - per) // 2
            parts.append(y[mid:mid + per])
            curve.append(np.tile([v, a], (int(round(per / sr * rate)), 1)))
        y = np.concatenate(parts)
        journeys.append(score("Q" + "-Q".join(map(str, order)), y, np.concatenate(curve), rate, judge, config))
        joins += join_scores(y, [per * k for k in (1, 2, 3)], sr, judge.mel_params)
    return {"name": "real EMOPIA clips joined", "source": source, "journeys": journeys, **pooled(journeys),
            "joins": {"cuts": joins}}


def evaluate_journeys(pipeline, judge: Judge, cache, config: JourneyConfig) -> dict:
    """The journey section as one JSON-able dict: a row per engine and the real reference."""
    start = time.time()
    rows = [engine_section(pipeline, name, judge, config) for name in (pipeline.engines if pipeline else ())]
    skipped = []
    try:
        rows.append(real_section(judge, cache, config))
    except (OSError, ValueError) as exc:
        skipped.append({"row": "real EMOPIA clips joined", "reason": str(exc)})
    return {"config": asdict(config), "rows": rows, "skipped": skipped, "wall_time_s": round(time.time() - start, 1)}
