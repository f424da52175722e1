"""The realism report: the note engine's MIDI beside held-out EMOPIA MIDI of the same length, statistic by statistic
(train/evaluation/symbolic.py), per preset (real clips: its quadrant) and pooled, with the overlapping area (OA) of
the two densities and the same for real against real (validation clips against test clips) as the ceiling.

    python -m train.evaluate --checkpoint checkpoints/ --realism      # reports/realism.md, .json and a figure
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pretty_midi
from matplotlib.figure import Figure
from tqdm import tqdm

from moodgen import midi
from moodgen.mood import PRESETS, QUADRANTS
from train.corpus.emopia import list_clips
from train.evaluation.symbolic import NAMES, STATISTICS, midi_statistics, overlapping_area

PLOT = "realism.png"
GATED = ("pitch_classes", "out_of_scale", "velocity_sd", "chord_share")  # means that must lie in real clips' IQR


@dataclass(frozen=True)
class RealismConfig:
    emopia_root: str = "../shared/data/emopia/EMOPIA_1.0"
    seconds: float = 20.0  # generated clips and the real clips' first seconds (shorter real clips are left out)
    seeds: int = 20  # clips per preset
    guidance: float | None = None  # None: the engine's default

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.seeds < 2:
            raise ValueError(f"realism needs seconds > 0 and seeds >= 2: {self}")


def real_statistics(config: RealismConfig, split: str) -> dict[str, list[dict[str, float]]]:
    """Quadrant name -> statistics of each EMOPIA clip of `split` lasting at least `seconds` (its first seconds,
    sustain pedal applied as the corpus is)."""
    clips, _ = list_clips(Path(config.emopia_root))
    out: dict[str, list[dict[str, float]]] = {q.name: [] for q in QUADRANTS}
    names = {q.number: q.name for q in QUADRANTS}
    for clip in tqdm([c for c in clips if c.split == split], desc=f"real {split}", unit="clip", leave=False):
        try:
            pm = midi.apply_sustain(midi.load_midi(clip.path))
        except ValueError:  # unreadable or empty: not a clip to compare with
            continue
        if pm.get_end_time() >= config.seconds:
            out[names[clip.quadrant]].append(midi_statistics(pm, config.seconds))
    return out


def generated_statistics(pipeline, engine: str, config: RealismConfig) -> dict[str, list[dict[str, float]]]:
    """Preset name -> statistics of the engine's MIDI for seeds 0..seeds-1 (keys drawn by the pipeline)."""
    out: dict[str, list[dict[str, float]]] = {}
    for name, (v, a) in tqdm(PRESETS.items(), desc=f"{engine} clips", unit="preset", leave=False):
        out[name] = []
        for seed in range(config.seeds):
            g = pipeline.generate(v, a, seconds=config.seconds, seed=seed, engine=engine, guidance=config.guidance,
                                  dry=True)
            out[name].append(midi_statistics(pretty_midi.PrettyMIDI(io.BytesIO(g.midi)), config.seconds))
    return out


def column(rows: list[dict[str, float]], name: str) -> np.ndarray:
    return np.array([r[name] for r in rows], dtype=float)


def summary(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    q1, q3 = np.percentile(v, [25, 75]) if len(v) else (np.nan, np.nan)
    return {"mean": float(np.mean(v)) if len(v) else float("nan"), "q1": float(q1), "q3": float(q3), "n": len(v)}


def compare(generated: dict[str, list[dict]], test: dict[str, list[dict]], val: dict[str, list[dict]]) -> dict:
    """Per group (the presets and "pooled"), per statistic: generated and real summaries, OA and the real ceiling."""
    quadrant_of = {q.name: q.name for q in QUADRANTS}  # presets are named after their quadrants
    groups = {g: (generated[g], test[quadrant_of[g]], val[quadrant_of[g]]) for g in generated}
    groups["pooled"] = tuple(sum((d[g] for g in generated), []) for d in (generated, test, val))
    out = {}
    for group, (gen, real, other) in groups.items():
        stats = {}
        for name in NAMES:
            g, r, o = column(gen, name), column(real, name), column(other, name)
            stats[name] = {"generated": summary(g), "real": summary(r), "oa": overlapping_area(g, r),
                           "ceiling": overlapping_area(o, r)}
        out[group] = {"statistics": stats, "mean_oa": float(np.nanmean([s["oa"] for s in stats.values()])),
                      "mean_ceiling": float(np.nanmean([s["ceiling"] for s in stats.values()])),
                      "n_generated": len(gen), "n_real": len(real), "n_ceiling": len(other)}
    return out


def checks(groups: dict) -> dict[str, bool | float]:
    """The issue's bar: every OA >= 0.7, each preset's mean OA within 0.07 of its ceiling, and the pooled means of
    the gated statistics inside real clips' interquartile range."""
    presets = [g for g in groups if g != "pooled"]
    pooled = groups["pooled"]["statistics"]
    return {
        "min_oa": float(min(s["oa"] for g in groups.values() for s in g["statistics"].values())),
        "largest_gap_to_ceiling": float(max(groups[g]["mean_ceiling"] - groups[g]["mean_oa"] for g in presets)),
        **{f"{n}_inside_real_iqr": bool(pooled[n]["real"]["q1"] <= pooled[n]["generated"]["mean"]
                                        <= pooled[n]["real"]["q3"]) for n in GATED},
    }


def evaluate_realism(pipeline, config: RealismConfig, real: tuple[dict, dict] | None = None) -> dict:
    """The realism section as one JSON-able dict, one entry per engine that makes MIDI. `real`: the (test, val)
    statistics when already computed (they do not depend on the engine)."""
    start = time.time()
    test, val = real or (real_statistics(config, "test"), real_statistics(config, "val"))
    engines = {}
    for name in pipeline.engines:
        eng = pipeline.engine(name)
        if not eng.makes_midi:
            continue
        clips = generated_statistics(pipeline, name, config)
        groups = compare(clips, test, val)
        engines[name] = {"groups": groups, "checks": checks(groups), "sampler": getattr(eng, "sampler_record", {}),
                         "clips": clips}
    return {"config": asdict(config), "engines": engines, "real_test": test, "real_val": val,
            "wall_time_s": round(time.time() - start, 1)}


def _f(fmt: str, x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else fmt.format(x)


def markdown(section: dict, command: str) -> str:
    c = section["config"]
    lines = ["# moodgen realism: the note engine's MIDI beside real piano music", "",
             f"`{command}` ({section['wall_time_s'] / 60:.1f} min). {c['seeds']} clips of {c['seconds']:g} s per "
             "preset (seeds 0.., keys drawn by the pipeline as for any request) against the first "
             f"{c['seconds']:g} s of every held-out EMOPIA test clip at least that long (sustain pedal applied, as "
             "the corpus is), each preset against its quadrant. OA = overlapping area of the two kernel densities "
             "of the per-clip statistic (1: the same distribution); ceiling = the OA of EMOPIA's validation clips "
             "against the same test clips, what real music of other songs reaches. Pitch statistics by MusPy "
             "(out-of-scale share = 1 - scale consistency); timing and velocity from the notes in seconds "
             "(train/evaluation/symbolic.py).", ""]
    for engine, e in section["engines"].items():
        groups = e["groups"]
        names = list(groups)
        lines += [f"## Engine {engine}", ""]
        if e.get("sampler"):
            lines += ["Sampler: " + ", ".join(f"{k} {v}" for k, v in e["sampler"].items()), ""]
        lines += ["OA per statistic, generated against real (ceiling: real against real):", "",
                  "| statistic | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for s in STATISTICS:
            lines.append(f"| {s.label} | " + " | ".join(
                f"{groups[g]['statistics'][s.name]['oa']:.2f} ({groups[g]['statistics'][s.name]['ceiling']:.2f})"
                for g in names) + " |")
        lines.append("| **mean** | " + " | ".join(f"**{groups[g]['mean_oa']:.2f}** ({groups[g]['mean_ceiling']:.2f})"
                                                 for g in names) + " |")
        n = groups["pooled"]
        lines += ["", f"Pooled means ({n['n_generated']} generated, {n['n_real']} real test clips, "
                  f"{n['n_ceiling']} validation clips for the ceiling); real: mean [interquartile range]:", "",
                  "| statistic | generated | real | OA | ceiling |", "|---|---|---|---|---|"]
        for s in STATISTICS:
            st = n["statistics"][s.name]
            g, r = st["generated"], st["real"]
            lines.append(f"| {s.label} | {_f(s.fmt, g['mean'])} | {_f(s.fmt, r['mean'])} [{_f(s.fmt, r['q1'])}, "
                         f"{_f(s.fmt, r['q3'])}] | {st['oa']:.2f} | {st['ceiling']:.2f} |")
        ch = e["checks"]
        inside = ", ".join(f"{k.removesuffix('_inside_real_iqr')} {'yes' if v else 'no'}"
                           for k, v in ch.items() if k.endswith("_inside_real_iqr"))
        lines += ["", f"Bar: smallest OA {ch['min_oa']:.2f} (>= 0.70 wanted); largest gap of a preset's mean OA below "
                  f"its ceiling {ch['largest_gap_to_ceiling']:+.2f} (<= 0.07 wanted); pooled mean inside real "
                  f"clips' interquartile range: {inside}.", "", f"![densities]({PLOT})", ""]
    return "\n".join(lines)


def plot(section: dict, out: Path) -> Path:
    """Pooled densities (histograms) of every statistic, real test clips against each engine's clips."""
    fig = Figure(figsize=(14, 9))
    axes = fig.subplots(3, 4).ravel()
    pooled_real = sum(section["real_test"].values(), [])
    generated = {e: v["clips"] for e, v in section["engines"].items()}
    for ax, s in zip(axes, STATISTICS):
        r = column(pooled_real, s.name)
        sets = [("real (test)", r)] + [(e, column(sum(g.values(), []), s.name)) for e, g in generated.items()]
        both = np.concatenate([v[np.isfinite(v)] for _, v in sets])
        bins = np.linspace(both.min(), both.max() + 1e-9, 25)
        for label, v in sets:
            ax.hist(v[np.isfinite(v)], bins=bins, density=True, histtype="step", linewidth=1.5, label=label)
        oa = ", ".join(f"{section['engines'][e]['groups']['pooled']['statistics'][s.name]['oa']:.2f}"
                       for e in generated)
        ax.set_title(f"{s.label}\nOA {oa}", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out / PLOT
    fig.savefig(path, dpi=80)
    return path
