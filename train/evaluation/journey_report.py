"""The journey section of the written report: its markdown and its plot of target against judged curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

PLOT = "eval_journeys.png"


def _f(x, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _joins(scores: list[dict]) -> str:
    if not scores:
        return "-"
    jumps, flux = [s["jump_percentile"] for s in scores], [s["flux_percentile"] for s in scores]
    return f"{np.median(jumps):.0f} / {max(jumps):.1f} · {np.median(flux):.0f} / {max(flux):.0f}"


def markdown(section: dict) -> str:
    c = section["config"]
    lines = ["## Journeys: music whose mood moves", "",
             f"{c['journeys']} journeys of {c['seconds']:g} s per engine (seed {c['seed']}); the judge hears every "
             f"{c['window_seconds']:g} s window (hop {c['hop_seconds']:g} s) and is compared with the target curve's "
             "mean over the window: Spearman per axis, pooled over every window of every journey and the mean of "
             "the per-journey values (a journey whose target stays constant on an axis has none there). The real "
             "reference joins held-out EMOPIA clips of the four quadrants end to end, a quarter each.", "",
             "| row | Spearman A pooled | A mean per journey | Spearman V pooled | V mean per journey | "
             "s per journey | joins: extend | loop | stream | real cuts |", "|---" * 10 + "|"]
    for row in section["rows"]:
        joins = row.get("joins", {})
        lines.append(f"| {row['name']} | {_f(row['pooled_arousal'])} | {_f(row['mean_arousal'])} "
                     f"({row['journeys_arousal']}) | {_f(row['pooled_valence'])} | {_f(row['mean_valence'])} "
                     f"({row['journeys_valence']}) | {_f(row.get('seconds_per_journey'), '{:.1f}')} | "
                     + " | ".join(_joins(joins.get(k, [])) for k in ("extend", "loop", "stream", "cuts")) + " |")
    lines += ["", "Joins: percentile of the sample jump at the join among all the clip's sample jumps (median / "
              "largest over the joins), then of the spectral flux there among all its frames (median / largest); "
              "50 is typical, 100 the largest in the clip. Extend: a 10 s journey extended by 10 s; loop: a 20 s "
              "looped journey played twice, at the wrap; stream: 20 chunks of 1 s, the mood changing at the middle. "
              "Real cuts: the hard cuts between the joined real clips.", ""]
    for row in section["rows"]:
        if row.get("source"):
            lines.append(f"- **{row['name']}**: from {row['source']}.")
        elif row.get("render", {}).get("soundfont"):
            r = row["render"]
            lines.append(f"- **{row['name']}**: {r['instrument']} on {r['soundfont']}, mastered, judged with the "
                         "mastering gain taken back.")
    for s in section["skipped"]:
        lines.append(f"- **{s['row']}**: not evaluated: {s['reason']}")
    names = [j["name"] for j in section["rows"][0]["journeys"]] if section["rows"] else []
    engines = [r for r in section["rows"] if not r.get("source")]
    if engines:
        lines += ["", "| journey | " + " | ".join(f"{r['name']} A / V" for r in engines) + " |",
                  "|---" * (len(engines) + 1) + "|"]
        for i, name in enumerate(names):
            cells = [f"{_f(r['journeys'][i]['spearman_arousal'])} / {_f(r['journeys'][i]['spearman_valence'])}"
                     for r in engines]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", f"![target (dashed) and judged (solid) curves]({PLOT})", ""])


def plot(section: dict, out_dir: Path) -> str:
    """A panel per journey and row: target (dashed) and judged (solid) valence and arousal over time."""
    rows = section["rows"]
    cols = max(len(r["journeys"]) for r in rows)
    fig = Figure(figsize=(2.4 * cols, 2.0 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False, sharey=True)
    for r, row in enumerate(rows):
        for i, j in enumerate(row["journeys"]):
            ax = axes[r][i]
            t, target, judged = np.array(j["centres"]), np.array(j["target"]), np.array(j["judged"])
            for k, color in ((0, "tab:blue"), (1, "tab:red")):
                ax.plot(t, target[:, k], "--", color=color, lw=1)
                ax.plot(t, judged[:, k], "-", color=color, lw=1.2)
            ax.set_ylim(-1, 1)
            ax.axhline(0, color="0.85", lw=0.6)
            ax.set_title(j["name"], fontsize=6)
            ax.tick_params(labelsize=6)
        axes[r][0].set_ylabel(row["name"], fontsize=7)
    fig.suptitle("valence (blue) and arousal (red): target dashed, judged solid, per 10 s window", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / PLOT, dpi=90)
    return PLOT
