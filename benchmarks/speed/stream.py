"""The live stream of every engine of the shipped checkpoint: real-time factor, time to the first chunk, and how many
chunks the mood correlates (loudness, onset rate, mode) take to move after the mood changes from sad to happy.

    python -m benchmarks.speed.stream --threads 1 --repeats 3
    python -m benchmarks.speed.stream --threads 2 --engines notes   # a section of its own

Each repeat streams `--chunks` chunks of 1 s with a new seed, the mood switching at the middle chunk. Real-time
factor = seconds of audio / seconds of wall time over the whole stream; first chunk = from `pipe.stream(...)` to
the first chunk in hand (model loaded and warmed up). The yardstick, measured in the same run, is the real-time
factor of a plain 10 s `generate` of the same engine: on a loaded machine both slow down together.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.results import command, machine, threads_title, update_section
from moodgen.pipeline import MoodPipeline
from train.evaluation.correlates import mood_correlates

SAD, HAPPY = (-0.7, -0.7), (0.7, 0.7)
CORRELATES = ("loudness_db", "onset_rate", "mode")
SETTLE = 4  # chunks at each end of the stream that set the before and after levels


def play(pipe: MoodPipeline, engine: str, chunks: int, seed: int) -> tuple[float, float, list[np.ndarray]]:
    """(seconds to the first chunk, real-time factor, chunk audio) of one stream switching from sad to happy."""
    moods = iter([SAD] * (chunks // 2) + [HAPPY] * (chunks - chunks // 2))
    start = time.perf_counter()
    stream = pipe.stream(lambda: next(moods), chunk_seconds=1.0, seed=seed, engine=engine)
    played = [next(stream).audio]
    first = time.perf_counter() - start
    played += [next(stream).audio for _ in range(chunks - 1)]
    wall = time.perf_counter() - start
    stream.close()
    return first, sum(len(a) for a in played) / pipe.mel_params.sample_rate / wall, played


def chunks_to_move(values: np.ndarray, change: int) -> int | None:
    """Chunks after the change until a correlate (per chunk) passes halfway from its level before the change to its
    level at the end (means of SETTLE chunks); 1 = the first chunk played in the new mood. None if it never does."""
    before, after = values[change - SETTLE:change].mean(), values[-SETTLE:].mean()
    if abs(after - before) < 1e-9:
        return None
    moved = np.flatnonzero((values[change:] - (before + after) / 2) * np.sign(after - before) > 0)
    return int(moved[0]) + 1 if moved.size else None


def yardstick(pipe: MoodPipeline, engine: str, seed: int) -> float:
    """Real-time factor of a plain 10 s clip through the pipeline (a new seed each time: no cache)."""
    start = time.perf_counter()
    pipe.generate(0.7, 0.7, 10.0, seed=seed, engine=engine)
    return 10.0 / (time.perf_counter() - start)


def soundfont(pipe: MoodPipeline) -> str:
    """The soundfont named in the render record of a clip with notes, or '-' when no engine plays notes."""
    for name in pipe.engines:
        played = pipe.generate(0.0, 0.0, 1.0, engine=name, steps=1).render
        if played.get("soundfont"):
            return played["soundfont"]
    return "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--engines", default=None, help="comma-separated (default: every engine of the checkpoint)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=30)
    ap.add_argument("--mel-chunks", type=int, default=16, help="chunks for engines with flow steps (slower)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    pipe.warmup()
    load_before = os.getloadavg()[0]
    rows, reactions = [], []
    for engine in args.engines.split(",") if args.engines else pipe.engines:
        chunks = args.mel_chunks if pipe.engine(engine).uses_steps else args.chunks  # many flow steps: slower
        firsts, rtfs, moves = [], [], {c: [] for c in CORRELATES}
        ruler = statistics.median(yardstick(pipe, engine, 100 + i) for i in range(2))
        for seed in range(1, args.repeats + 1):
            first, rtf, played = play(pipe, engine, chunks, seed)
            firsts.append(first)
            rtfs.append(rtf)
            values = [mood_correlates(a, pipe.mel_params.sample_rate) for a in played]
            for c in CORRELATES:
                moves[c].append(chunks_to_move(np.array([v[c] for v in values]), chunks // 2))
        rows.append(f"| {engine} | {statistics.median(rtfs):.1f} ({min(rtfs):.1f}-{max(rtfs):.1f}) | "
                    f"{statistics.median(firsts):.3f} ({min(firsts):.3f}-{max(firsts):.3f}) | {ruler:.1f} | "
                    f"{chunks} x {args.repeats} |")
        reactions.append(f"| {engine} | " + " | ".join(
            ", ".join("-" if m is None else str(m) for m in moves[c]) for c in CORRELATES) + " |")
        print(rows[-1], reactions[-1], sep="\n", flush=True)
    load_after = os.getloadavg()[0]
    body = "\n".join([
        f"`{command()}` on {machine()}; torch threads {args.threads}; 1-minute load average {load_before:.1f} "
        f"before, {load_after:.1f} after (other jobs shared the cores). Chunks of 1 s, mastered; notes played on "
        f"{soundfont(pipe)}; the model warmed up, a "
        "loaded synth waiting.", "",
        "| engine | real-time factor, median (range) | first chunk s, median (range) | yardstick: plain 10 s "
        "generate, x real time | chunks x streams |", "|---|---|---|---|---|", *rows, "",
        "Chunks until each correlate moves after the mood switches from sad to happy (1 = the first chunk in the new "
        "mood; per stream; halfway from its level before the switch to its level at the end):", "",
        "| engine | " + " | ".join(CORRELATES) + " |", "|---" * (len(CORRELATES) + 1) + "|", *reactions])
    update_section(threads_title("Live stream", args.threads, noun="torch thread"), body)
    print(body)


if __name__ == "__main__":
    main()
