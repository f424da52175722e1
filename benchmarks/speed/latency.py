"""Warm latency of a 10 s clip on N CPU threads: every engine of the shipped checkpoint and the seed project's path
(its cGAN generator + librosa `mel_to_audio`, 32 Griffin-Lim iterations), measured side by side in one process,
round-robin (each repeat times every path once, so a change in the machine's load hits them alike); medians. Every
path runs on the pipeline's worker thread (`MoodPipeline.run`), where the app's requests run.

    python -m benchmarks.speed.latency --threads 2 --repeats 7
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import results
from benchmarks.results import command, machine, threads_title, update_section
from moodgen import audio, cgan
from moodgen.keys import sample_keys
from moodgen.pipeline import MoodPipeline


def paths(pipe: MoodPipeline, checkpoint: Path, seconds: float) -> dict[str, tuple[Callable[[], object], str]]:
    """{row label: (mood -> audio for one clip, what it includes)}."""
    mood = torch.tensor([[0.7, 0.7]])
    out = {}
    for name in pipe.engines:
        eng = pipe.engine(name)
        key = None if eng.key_prior is None else sample_keys(eng.key_prior, mood, seed=0)
        steps = f"{eng.default_steps} steps, " if eng.uses_steps else ""
        out[f"moodgen {name}"] = (
            lambda eng=eng, key=key: pipe.run(eng.generate, mood, seconds, 0, eng.default_steps, eng.default_guidance,
                                              key),
            f"{eng.label}; {steps}guidance {eng.default_guidance:g}")
    baseline_path = checkpoint / "cgan.safetensors"
    if baseline_path.is_file():
        baseline = cgan.load(baseline_path)

        def seed_path() -> None:
            mel = baseline.generate_mel(0.7, 0.7, seconds, seed=0)
            audio.mel_to_audio_librosa(mel, baseline.mel_params, n_iter=32)
        out["seed's path"] = (lambda: pipe.run(seed_path), "cGAN generator + librosa Griffin-Lim, 32 iterations")
    out["MoodPipeline.generate"] = (lambda: (pipe._clips.clear(), pipe.generate(0.7, 0.7, seconds, seed=1)),
                                    "default engine + judge + nearest clip, cache cleared")
    return out


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, threads=2, repeats=7, seconds=10.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    pipe.warmup()
    todo = paths(pipe, args.checkpoint, args.seconds)
    for fn, _ in todo.values():  # warm every path once
        fn()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {label: [] for label in todo}
    for _ in range(args.repeats):
        for label, (fn, _) in todo.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    load_after = os.getloadavg()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [f"| {label} | {statistics.median(times[label]):.3f} | {min(times[label]):.3f} | {what} |"
            for label, (_, what) in todo.items()]
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. Warm, torch {torch.__version__}, {args.threads} thread(s), "
        f"{args.seconds:g} s clip at valence/arousal (0.7, 0.7), {args.repeats} round-robin repeats. 1-minute load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores "
        "(above ~0.3 other jobs shared the cores: the medians are then upper bounds, the minima nearer an idle "
        "machine).",
        "",
        "| path | mood -> audio, median (s) | min (s) | what it runs |",
        "|---|---:|---:|---|",
        *rows,
        "",
        f"Peak RSS of this process: {peak_mb:.0f} MB.",
    ])
    print(body)
    if not args.no_write:
        update_section(threads_title("Generation latency", args.threads), body)


if __name__ == "__main__":
    main()
