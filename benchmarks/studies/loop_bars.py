"""Loops in bars: exactly N bars long, and a join as clean as today's loops by the journey report's join measure.

    python -m benchmarks.studies.loop_bars [--checkpoint checkpoints] [--seeds 3] [--bars 8] [--bpm 96]

For the four presets and `--seeds` seeds: today's loop (`loop=True`, the same length in seconds) and a loop of
`--bars` bars at `--bpm` (`loop_bars`), each played twice; at the wrap, the journey report's join measure
(train.evaluation.journeys.join_scores: the percentile of the sample jump among all the clip's sample jumps and of
the spectral flux among all its frames; lower is smoother, 50 is a typical moment of the music). As a yardstick, the
same measure at the loop's other bar lines (no join there, but notes struck on the downbeat). Also whether the loop
lasts N * 4 * 60 / BPM * sample rate samples exactly.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.results import command, machine, publish
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline
from train.evaluation.journeys import join_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--bpm", type=float, default=96.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    sr, params = pipe.mel_params.sample_rate, pipe.mel_params
    seconds = args.bars * 4 * 60 / args.bpm
    started = time.time()
    rows: dict[str, list[dict]] = {"today's loop": [], f"loop_bars={args.bars} at {args.bpm:g} BPM": []}
    exact, downbeats = [], []
    for v, a in PRESETS.values():
        for seed in range(args.seeds):
            today = pipe.generate(v, a, seconds, seed=seed, loop=True)
            bars = pipe.generate(v, a, seed=seed, bpm=args.bpm, loop_bars=args.bars)
            exact.append(len(bars.audio) == round(seconds * sr))
            lines_at = [round(b * len(bars.audio) / args.bars) for b in range(1, args.bars)]
            downbeats += join_scores(bars.audio, lines_at, sr, params)
            for name, g in zip(rows, (today, bars)):
                rows[name] += join_scores(np.concatenate([g.audio, g.audio]), [len(g.audio)], sr, params)
    lines = [f"Machine: {machine()} (shared with other jobs). Command: `{command()}`. {args.seeds} seeds x 4 presets, "
             f"mastered, the shipped note engine; {time.time() - started:.0f} s in all.", "",
             f"Loops of {args.bars} bars at {args.bpm:g} BPM last exactly {round(seconds * sr)} samples "
             f"({seconds:g} s): {sum(exact)} of {len(exact)}.", "",
             "| loop | joins | jump percentile mean (max) | flux percentile mean (max) |", "|---|---|---|---|"]
    for name, scores in (*rows.items(), ("(yardstick) the other bar lines of the loops in bars", downbeats)):
        jump = [s["jump_percentile"] for s in scores]
        flux = [s["flux_percentile"] for s in scores]
        lines.append(f"| {name} | {len(scores)} | {np.mean(jump):.0f} ({max(jump):.0f}) | "
                     f"{np.mean(flux):.0f} ({max(flux):.0f}) |")
    publish("Loops in bars (benchmarks/studies/loop_bars.py)", "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
