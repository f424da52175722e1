"""The tempo of EMOPIA's clips per quadrant: where moodgen.tempo's mood -> tempo prior comes from.

    python -m benchmarks.studies.tempo_prior [--emopia ../shared/data/emopia/EMOPIA_1.0] [--per-quadrant 60]

EMOPIA's MIDI files are transcriptions of recordings: every file says 120 BPM, so the tempo is estimated from the
notes. Two estimators per clip: librosa's beat tracker on an onset envelope made from the notes (onsets weighted
by velocity, 100 frames/s; its tempo prior is centred on 120 BPM) and pretty_midi's `estimate_tempo` (the
strongest inter-onset-interval cluster, known to pick fast subdivisions), on `--per-quadrant` clips of each
quadrant drawn at random (seed 0; about a second of CPU per clip). Reports the median and quartiles of each
per quadrant and by arousal (Q1+Q2 high, Q3+Q4 low), and the numbers moodgen.tempo stores.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import librosa
import numpy as np

from benchmarks.results import command, machine, publish
from moodgen import midi
from train.corpus.emopia import list_clips

ENVELOPE_FPS = 100


def beat_tracked_bpm(pm) -> float:
    """librosa's beat-tracker tempo for the notes of `pm`, from a velocity-weighted onset envelope."""
    starts = np.array([n.start for i in pm.instruments for n in i.notes])
    weights = np.array([n.velocity for i in pm.instruments for n in i.notes], dtype=np.float64)
    env = np.zeros(int(starts.max() * ENVELOPE_FPS) + 2)
    np.add.at(env, np.round(starts * ENVELOPE_FPS).astype(int), weights)
    env = np.convolve(env, np.hanning(5), mode="same")
    tempo, _ = librosa.beat.beat_track(onset_envelope=env, sr=ENVELOPE_FPS, hop_length=1)
    return float(np.atleast_1d(tempo)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emopia", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--per-quadrant", type=int, default=60)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    clips, _ = list_clips(args.emopia)
    rng = np.random.default_rng(0)
    clips = [c for q in (1, 2, 3, 4) for c in rng.permutation([c for c in clips if c.quadrant == q])[
        :args.per_quadrant]]
    rows = []
    for clip in clips:
        pm = midi.load_midi(clip.path)
        rows.append((clip.quadrant, beat_tracked_bpm(pm), float(pm.estimate_tempo())))
    q = np.array([r[0] for r in rows])
    lines = [f"Machine: {machine()}. Command: `{command()}`. {len(rows)} clips ({args.per_quadrant} a quadrant, "
             "all splits, drawn at random).", "",
             "| clips | n | beat tracker median (IQR) BPM | pretty_midi estimate_tempo median (IQR) BPM |",
             "|---|---|---|---|"]
    groups = [(f"Q{k}", q == k) for k in (1, 2, 3, 4)] + [("high arousal (Q1+Q2)", q <= 2),
                                                          ("low arousal (Q3+Q4)", q >= 3)]
    for name, mask in groups:
        cells = []
        for col in (1, 2):
            x = np.array([r[col] for r in rows])[mask]
            lo, mid, hi = np.percentile(x, [25, 50, 75])
            cells.append(f"{mid:.0f} ({lo:.0f}-{hi:.0f})")
        lines.append(f"| {name} | {int(mask.sum())} | {cells[0]} | {cells[1]} |")
    for name, mask in groups[4:]:
        x = np.log(np.array([r[1] for r in rows])[mask])
        lines.append(f"\n{name}: beat tracker log-BPM mean {x.mean():.3f} (= {np.exp(x.mean()):.1f} BPM), "
                     f"SD {x.std():.3f}")
    publish("Tempo of the corpus (benchmarks/studies/tempo_prior.py)", "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
