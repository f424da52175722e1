"""Warm latency of a 10 s clip from the shipped checkpoint on N CPU threads: generation (the model) and
rendering/inversion (to audio) separately, median of several runs; peak RSS; training throughput from the run logs.

    python -m benchmarks.latency --threads 2 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.results import command, machine, update_section
from moodgen import audio, midi
from moodgen.keys import sample_keys
from moodgen.flow_model import sample
from moodgen.note_model import sample_roll
from moodgen.pipeline import MoodPipeline


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def throughput(log: Path) -> str:
    """Steps per second over a training run, from its log.jsonl (probe time included)."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    if len(records) < 2:
        return "n/a"
    a, b = records[0], records[-1]
    return f"{(b['step'] - a['step']) / max(b['time_s'] - a['time_s'], 1e-9):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--runs", type=Path, default=Path("runs"))
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
        eng = pipe.engines_by_name[name]
        key = None if eng.model.key is None else sample_keys(eng.model.key.prior, mood, seed=0)
        if name == "notes":
            gen_s, (active, onset) = median_time(lambda: sample_roll(
                eng.model, mood, eng.roll_params.frames_for(args.seconds), eng.default_guidance, seed=0, key=key),
                args.repeats)

            def to_audio() -> np.ndarray:
                pm = midi.midi_from_roll(active[0], onset[0], eng.roll_params)
                wav = midi.render_midi(pm, pipe.mel_params.sample_rate)
                audio.mel_from_audio(wav, pipe.mel_params)  # the mel shown beside the clip
                return wav
            what = "roll → MIDI → soundfont → mel"
        else:
            frames = pipe.mel_params.frames_for(args.seconds)
            gen_s, mel = median_time(lambda: sample(eng.model, mood, frames, eng.default_steps,
                                                    eng.default_guidance, seed=0, key=key)[0].numpy(), args.repeats)

            def to_audio() -> np.ndarray:
                return pipe.mel_to_audio(mel)
            what = "learned inverter + fast Griffin-Lim" if pipe.inverter is not None else "fast Griffin-Lim"
        audio_s, _ = median_time(to_audio, args.repeats)
        rows.append(f"| {name} | {gen_s:.3f} | {audio_s:.3f} ({what}) | {gen_s + audio_s:.3f} | "
                    f"{eng.default_steps if name == 'mel' else '-'} | {eng.default_guidance:g} |")
    full_s, _ = median_time(lambda: (pipe._cache.clear(), pipe.generate(0.7, 0.7, args.seconds, seed=1)), args.repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. Warm, {args.threads} threads, {args.seconds:g} s clip, "
        f"median of {args.repeats}.",
        "",
        "| engine | generation (s) | to audio (s) | total (s) | sampler steps | guidance |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Full `MoodPipeline.generate` (default engine, judge included, cache cleared): {full_s:.3f} s. "
        f"Peak RSS of this process: {peak_mb:.0f} MB.",
        "",
        "Training throughput of the shipped runs (steps/s, from runs/*/log.jsonl, probes included): "
        + ", ".join(f"{e}: {throughput(args.runs / e / 'log.jsonl')}" for e in ("notes", "mel")) + ".",
    ])
    update_section("Generation latency (benchmarks/latency.py)", body)
    print(body)


if __name__ == "__main__":
    main()
