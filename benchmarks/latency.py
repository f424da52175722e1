"""Warm latency of a 10 s clip on N CPU threads, every engine of the shipped checkpoint beside the seed project's
path (its cGAN generator + librosa `mel_to_audio`, 32 Griffin-Lim iterations), median of several runs; peak RSS.

    python -m benchmarks.latency --threads 2 --repeats 5
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from benchmarks.results import command, machine, update_section
from moodgen import audio, cgan
from moodgen.keys import sample_keys
from moodgen.pipeline import MoodPipeline


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    pipe.warmup()
    mood = torch.tensor([[0.7, 0.7]])
    rows = []
    for name in pipe.engines:
        eng = pipe.engine(name)
        key = None if eng.key_prior is None else sample_keys(eng.key_prior, mood, seed=0)
        total = median_time(lambda eng=eng, key=key: eng.generate(mood, args.seconds, 0, eng.default_steps,
                                                                  eng.default_guidance, key), args.repeats)
        rows.append(f"| moodgen {name} | {total:.3f} | {eng.default_steps or '-'} | {eng.default_guidance:g} |")
    baseline_path = args.checkpoint / "cgan.safetensors"
    if baseline_path.is_file():
        baseline = cgan.load(baseline_path)

        def seed_path() -> None:
            mel = baseline.generate_mel(0.7, 0.7, args.seconds, seed=0)
            audio.mel_to_audio_librosa(mel, baseline.mel_params, n_iter=32)
        rows.append(f"| seed's path (cGAN + librosa Griffin-Lim, 32 it) | {median_time(seed_path, args.repeats):.3f} "
                    "| - | - |")
    full_s = median_time(lambda: (pipe._cache.clear(), pipe.generate(0.7, 0.7, args.seconds, seed=1)), args.repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. Warm, {args.threads} threads, {args.seconds:g} s clip, "
        f"median of {args.repeats}.",
        "",
        "| path | mood -> audio (s) | sampler steps | guidance |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Full `MoodPipeline.generate` (default engine, judge included, cache cleared): {full_s:.3f} s. "
        f"Peak RSS of this process: {peak_mb:.0f} MB.",
    ])
    update_section("Generation latency (benchmarks/latency.py)", body)
    print(body)


if __name__ == "__main__":
    main()
