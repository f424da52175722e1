"""The written report: eval.json, eval.md (tables of metrics, correlates and contrasts) and two plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from moodgen.mood import PRESETS
from train.evaluation.correlates import CONTRASTS

COLUMNS = (("quadrant_accuracy", "quadrant acc", "{:.2f}"), ("spearman_valence", "Spearman V", "{:.2f}"),
           ("spearman_arousal", "Spearman A", "{:.2f}"), ("mae_unit", "MAE (0-1)", "{:.3f}"),
           ("frechet_distance", "FD", "{:.2f}"), ("kid", "KID", "{:.3f}"), ("diversity", "diversity", "{:.2f}"),
           ("nearest_train_median", "nearest-train", "{:.2f}"), ("closer_than_real_p05", "< real p05", "{:.2f}"))
CORRELATES = (("loudness_db", "loudness dBFS", "{:.1f}"), ("onset_rate", "onsets/s", "{:.2f}"),
              ("tempo_bpm", "tempo BPM", "{:.0f}"), ("mode", "major-minor", "{:+.2f}"),
              ("key_clarity", "key clarity", "{:.2f}"), ("in_mode", "in mode", "{:.2f}"))
STRUCTURE = (("chroma_change", "chroma change /s"), ("pitch_class_turnover", "pitch-class turnover /s"),
             ("ioi_entropy", "onset-interval entropy (bits)"), ("beat_spectral_change", "beat-to-beat change (dB)"))


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
    lines += structure_table(result["rows"])
    lines += ["", "Music whose mood moves (journeys, continuations, loops, streams): see journeys.md.", ""]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def structure_table(rows: list[dict]) -> list[str]:
    """The "Musical structure" section: each measure's mean +- SE per row (groups weighted equally)."""
    lines = ["", "## Musical structure", "",
             "Mean +- one standard error over the clips with correlates (presets x seeds; real rows: the clips, each "
             "quadrant weighted equally). Regular pulses over a sustained chord score near 0 on every column. "
             "Chroma change = summed cosine distance between the constant-Q chroma of consecutive 1/4 s blocks, per "
             "second; pitch-class turnover = pitch classes per second that become strong in a 1 s window; "
             "onset-interval entropy = entropy of the inter-onset-interval histogram (93 ms bins); beat-to-beat "
             "change = mean absolute dB difference of the constant-Q spectrum between consecutive beats "
             "(train/evaluation/structure.py).", "",
             "| row | " + " | ".join(h for _, h in STRUCTURE) + " |", "|---" * (len(STRUCTURE) + 1) + "|"]
    for row in rows:
        if row["name"].startswith("null: shuffled") or not row.get("structure"):
            continue
        cells = [f"{(m := row['structure'][k])['mean']:.2f}" + (f" +- {m['se']:.2f}" if np.isfinite(m["se"]) else "")
                 for k, _ in STRUCTURE]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot(result: dict, out_dir: Path) -> dict[str, str]:
    """Judged-vs-target scatter per row and per-quadrant confusion per row; returns name -> file name.

    Figures are drawn without pyplot, so no process-wide backend or figure registry is touched."""
    rows = result["rows"]
    colors = {"happy": "tab:orange", "angry": "tab:red", "sad": "tab:blue", "relaxed": "tab:green"}
    fig = Figure(figsize=(3.2 * len(rows), 3.4))
    axes = fig.subplots(1, len(rows), squeeze=False)
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

    fig = Figure(figsize=(2.6 * len(rows), 2.8))
    axes = fig.subplots(1, len(rows), squeeze=False)
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
    return {"judged vs target": "eval_va.png", "quadrant confusion": "eval_confusion.png"}


def write_report(result: dict, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=1, sort_keys=True, allow_nan=True))
    plots = plot(result, out_dir)
    path = out_dir / "eval.md"
    path.write_text(markdown(result, plots))
    return path
