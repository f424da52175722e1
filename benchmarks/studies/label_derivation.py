"""How well do the music-feature scores behind EMOPIA's continuous labels agree with human valence/arousal signs?

    python -m benchmarks.studies.label_derivation [--emopia ../shared/data/emopia/EMOPIA_1.0] \
        [--vgmidi ../shared/data/vgmidi]

Features: moodgen.midi.load_midi + apply_sustain + train.corpus.features.midi_features, per clip. Scores:
train.corpus.features.arousal_score / valence_score (z-scored over the set they are given, as in train.prepare).
Reported per score and per single feature: ROC AUC against the human sign (+1 vs -1), point-biserial r and Spearman
rho, on EMOPIA (quadrant signs; all clips, train split, test split) and on VGMIDI's labelled phrases (external check).
Also lists the best equal-weight sums of two features chosen on EMOPIA train only, so a formula change can be judged.
Writes the "Label derivation" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks.results import command, machine, update_section
from moodgen import midi
from moodgen.mood import quadrant_by_number
from train.corpus import emopia
from train.corpus.features import arousal_score, midi_features, valence_score

# Features that are rates or durations are compared on a log scale (heavy right tails).
LOG_FEATURES = {"duration_s", "note_rate", "onset_rate", "median_ioi_s", "polyphony"}
AXES = ("valence", "arousal")
SCORES = {"valence": valence_score, "arousal": arousal_score}


def features_of(path: Path) -> dict[str, float]:
    return midi_features(midi.apply_sustain(midi.load_midi(path)))


def emopia_rows(root: Path) -> list[dict]:
    clips, _ = emopia.list_clips(root)
    rows = []
    for c in clips:
        q = quadrant_by_number(c.quadrant)
        rows.append({"id": c.clip_id, "split": c.split, "valence": q.valence_sign, "arousal": q.arousal_sign,
                     "features": features_of(c.path)})
    return rows


def vgmidi_rows(root: Path) -> list[dict]:
    rows = []
    with open(root / "vgmidi_labelled.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.append({"id": r["id"], "split": "vgmidi", "valence": int(r["valence"]), "arousal": int(r["arousal"]),
                         "features": features_of(root / r["midi"])})
    return rows


def agreement(score: np.ndarray, sign: np.ndarray) -> dict[str, float]:
    """AUC = P(score of a +1 item > score of a -1 item); r_pb = Pearson(score, sign); rho = Spearman(score, sign)."""
    pos, neg = score[sign > 0], score[sign < 0]
    auc = stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
    return {"auc": float(auc), "r_pb": float(stats.pearsonr(score, sign)[0]),
            "rho": float(stats.spearmanr(score, sign)[0]), "n": len(sign), "n_pos": len(pos)}


def feature_matrix(rows: list[dict]) -> dict[str, np.ndarray]:
    names = rows[0]["features"].keys()
    return {k: np.log(np.array([r["features"][k] for r in rows]) + 1e-3) if k in LOG_FEATURES
            else np.array([r["features"][k] for r in rows]) for k in names}


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def pair_search(train: list[dict], axis: str, top: int = 5) -> list[tuple[str, float]]:
    """Equal-weight z-sums of two features, each oriented by its own train AUC; best `top` by train AUC."""
    fm = feature_matrix(train)
    sign = np.array([r[axis] for r in train])
    orient = {k: 1.0 if agreement(v, sign)["auc"] >= 0.5 else -1.0 for k, v in fm.items()}
    found = []
    for a, b in itertools.combinations(sorted(fm), 2):
        s = orient[a] * zscore(fm[a]) + orient[b] * zscore(fm[b])
        found.append((f"{'+' if orient[a] > 0 else '-'}{a} {'+' if orient[b] > 0 else '-'}{b}", s, a, b))
    found.sort(key=lambda t: -agreement(t[1], sign)["auc"])
    return [(name, agreement(s, sign)["auc"]) for name, s, _, _ in found[:top]]


def formula_on(rows: list[dict], formula: str) -> np.ndarray:
    """Evaluate a pair_search formula ("+a -b") on other rows (z-scored over those rows)."""
    fm = feature_matrix(rows)
    return sum((1.0 if term[0] == "+" else -1.0) * zscore(fm[term[1:]]) for term in formula.split())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.studies.label_derivation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emopia", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--vgmidi", type=Path, default=Path("../shared/data/vgmidi"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    emo = emopia_rows(args.emopia)
    vg = vgmidi_rows(args.vgmidi)
    sets = {"EMOPIA all": emo, "EMOPIA train": [r for r in emo if r["split"] == "train"],
            "EMOPIA test": [r for r in emo if r["split"] == "test"], "VGMIDI": vg}

    lines = [f"Machine: {machine()}. Command: `{command()}`.", "",
             "Agreement of each derived score with the human sign (AUC 0.5 = chance; r_pb point-biserial; "
             "rho Spearman). Scores are z-scored within each set, as train.prepare does for the whole corpus.", "",
             "| score | set | n (+1) | AUC | r_pb | rho |", "|---|---|---|---|---|---|"]
    for axis in AXES:
        for name, rows in sets.items():
            feats = [r["features"] for r in rows]
            a = agreement(SCORES[axis](feats), np.array([r[axis] for r in rows]))
            lines.append(f"| {axis}_score | {name} | {a['n']} ({a['n_pos']}) | {a['auc']:.3f} | {a['r_pb']:+.3f} "
                         f"| {a['rho']:+.3f} |")

    for axis in AXES:
        lines += ["", f"Single features against the human {axis} sign (AUC; log scale for rates/durations):", "",
                  "| feature | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
        per_set = {name: feature_matrix(rows) for name, rows in sets.items()}
        signs = {name: np.array([r[axis] for r in rows]) for name, rows in sets.items()}
        for feat in per_set["EMOPIA all"]:
            cells = [f"{agreement(per_set[n][feat], signs[n])['auc']:.3f}" for n in sets]
            lines.append(f"| {feat} | " + " | ".join(cells) + " |")

    for axis in AXES:
        lines += ["", f"Best two-feature equal-weight sums for {axis}, chosen on EMOPIA train (AUC):", "",
                  "| formula | EMOPIA train | EMOPIA test | VGMIDI |", "|---|---|---|---|"]
        for formula, train_auc in pair_search(sets["EMOPIA train"], axis):
            rest = [agreement(formula_on(sets[n], formula), np.array([r[axis] for r in sets[n]]))["auc"]
                    for n in ("EMOPIA test", "VGMIDI")]
            lines.append(f"| `{formula}` | {train_auc:.3f} | {rest[0]:.3f} | {rest[1]:.3f} |")

    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("Label derivation (benchmarks/studies/label_derivation.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
