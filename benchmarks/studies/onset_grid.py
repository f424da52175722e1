"""Do the note engine's onsets fall on the beat? And does playing at a tempo keep the mood?

    python -m benchmarks.studies.onset_grid [--checkpoint checkpoints] [--seconds 20] [--seeds 5]

For the four presets and `--seeds` seeds, clips of `--seconds` made three ways: in the engine's own time (no bpm),
at the tempo drawn for the mood (bpm="mood") and at 96 BPM. For each clip, from its MIDI: the share of note onsets
within 30 ms of the 16th-note grid. At a tempo the grid is the tempo's, starting at 0 (as a DAW lays it out). In the
engine's own time there is no tempo, so the grid is the best-fitting one: every tempo from 60 to 180 BPM in 0.5 BPM
steps and 24 phases, the share of the best; beside it the share random onsets would reach on that grid (60 ms over
the 16th's length), since a fine grid catches many onsets by chance. Also: how many onsets the 16th grid moved and
how far (the time-stretched onset on an odd 32nd played on the 16th before it), and the judge's valence/arousal per
preset each way (mood fidelity must not fall with a tempo set).
"""
from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pretty_midi

from benchmarks.results import command, machine, publish
from moodgen import midi
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline
from moodgen.tempo import FRAMES_PER_SIXTEENTH, Tempo, grid_share

WITHIN = 0.03
WAYS = ("own time", "bpm=mood", "bpm=96")


def onsets(generation) -> np.ndarray:
    pm = pretty_midi.PrettyMIDI(io.BytesIO(generation.midi))
    return np.array(sorted(n.start for i in pm.instruments for n in i.notes))


SEARCHED_TEMPI = np.arange(60.0, 180.01, 0.5)  # BPM, for the best-fitting grid of music without a set tempo


def best_grid(times: np.ndarray, tempi: np.ndarray = SEARCHED_TEMPI) -> tuple[float, float]:
    """(share, bpm) of the 16th-note grid of `tempi` (BPM) and any phase that catches the most onsets."""
    best = (0.0, 0.0)
    for bpm in tempi:
        tempo = Tempo(float(bpm))
        step = 2 * tempo.frame_seconds
        best = max(best, max((grid_share(times, tempo, WITHIN, phase), bpm)
                             for phase in np.arange(24) / 24 * step))
    return best


def moved(generation, tempo: Tempo) -> tuple[float, float]:
    """Share of onsets the 16th grid moved and the mean move in ms over all onsets."""
    _, onset = midi.decode_roll(generation.continuation.frames)
    frames = np.nonzero(onset)[0]
    odd = frames % FRAMES_PER_SIXTEENTH == 1
    step = tempo.frame_seconds - tempo.lay_back_seconds
    return float(odd.mean()), float(odd.mean() * step * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    started = time.time()
    rows = {w: {p: [] for p in PRESETS} for w in WAYS}
    for preset, (v, a) in PRESETS.items():
        for seed in range(args.seeds):
            for way, bpm in zip(WAYS, (None, "mood", 96)):
                g = pipe.generate(v, a, args.seconds, seed=seed, bpm=bpm, dry=True)
                times = onsets(g)
                if g.bpm is None:
                    share, fit = best_grid(times)
                    row = {"share": share, "chance": 2 * WITHIN / (2 * Tempo(fit).frame_seconds), "bpm": fit,
                           "at_96": best_grid(times, (96.0,))[0]}
                else:
                    tempo = Tempo(g.bpm)
                    share_moved, ms = moved(g, tempo)
                    row = {"share": grid_share(times, tempo, WITHIN), "bpm": g.bpm, "moved": share_moved, "ms": ms}
                rows[way][preset].append(row | {"judged": g.judged, "onsets": len(times)})
    lines = [f"Machine: {machine()} (shared with other jobs). Command: `{command()}`. {args.seeds} seeds x 4 presets, "
             f"{args.seconds:g} s clips, dry, the shipped note engine; {time.time() - started:.0f} s in all.", "",
             "| preset | way | BPM (median) | onsets | within 30 ms of the 16th grid | chance on that grid | "
             "onsets moved (mean move) | judge V / A |", "|---|---|---|---|---|---|---|---|"]
    pooled = {}
    for preset in PRESETS:
        for way in WAYS:
            r = rows[way][preset]
            share = np.mean([x["share"] for x in r])
            pooled.setdefault(way, []).extend(x["share"] for x in r)
            chance = f"{np.mean([x['chance'] for x in r]):.0%}" if "chance" in r[0] else "-"
            move = f"{np.mean([x['moved'] for x in r]):.0%} ({np.mean([x['ms'] for x in r]):.0f} ms)" \
                if "moved" in r[0] else "-"
            judged = np.mean([x["judged"] for x in r], axis=0) if r[0]["judged"] is not None else None
            va = "-" if judged is None else f"{judged[0]:+.2f} / {judged[1]:+.2f}"
            lines.append(f"| {preset} | {way} | {np.median([x['bpm'] for x in r]):.1f} | "
                         f"{np.mean([x['onsets'] for x in r]):.0f} | {share:.1%} | {chance} | {move} | {va} |")
    lines.append("")
    own_96 = np.mean([x["at_96"] for p in PRESETS for x in rows[WAYS[0]][p]])
    lines.append("Pooled share within 30 ms: " + ", ".join(f"{w} {np.mean(s):.1%}" for w, s in pooled.items()) +
                 f"; own time against the 96 BPM grid at its best phase {own_96:.1%} (chance 38%).")
    if rows[WAYS[0]][next(iter(PRESETS))][0]["judged"] is not None:
        for way in WAYS:
            err = [np.hypot(*(np.array(x["judged"]) - np.array(PRESETS[p]))) for p in PRESETS for x in rows[way][p]]
            sign = [np.sign(x["judged"][k]) == np.sign(PRESETS[p][k]) for p in PRESETS for x in rows[way][p]
                    for k in (0, 1)]
            lines.append(f"- {way}: judge's distance to the preset {np.mean(err):.3f}, signs of V and A right "
                         f"{np.mean(sign):.0%}")
    publish("Onsets on the beat grid (benchmarks/studies/onset_grid.py)", "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
