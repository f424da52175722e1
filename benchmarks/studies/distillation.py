"""What the mel engine's guidance distillation and its sampler's time grid change: the teacher (the mel model
before distillation, with classifier-free guidance: two U-Net rows per step) and the shipped guidance-distilled
student (one row per step), each at step counts and time grids, against the teacher as it used to ship (16 evenly
spaced steps). Per sampler: the median time of the sampler for one 10 s clip, the mean absolute difference of its
mel from the reference (same seed and key; normalized log-mel units, [-1, 1]), and per preset the mean level and
the judge's (valence, arousal) of the inverted audio. Round-robin over the samplers, so load hits them alike.

    python -m benchmarks.studies.distillation --teacher TEACHER.safetensors --seeds 3 --threads 2

TEACHER: the teacher's weights (the student's provenance names its SHA-256 and the command that made it).
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import results
from benchmarks.results import command, machine, threads_title, update_section
from moodgen import audio
from moodgen.checkpoint import file_sha256
from moodgen.engines.mel import mel_correlates
from moodgen.flow_model import TIME_POWER, FlowModel, sample
from moodgen.inverter import default_inversion
from moodgen.keys import sample_keys
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, threads=2, seconds=10.0, seeds=3)
    ap.add_argument("--teacher", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    eng = pipe.engine("mel")
    student = eng.model
    teacher, meta = FlowModel.from_file(args.teacher)
    if not student.config.guidance_conditioning:
        raise SystemExit(f"{args.checkpoint}: its mel model is not guidance-distilled")
    recorded = eng.metadata["provenance"].get("teacher", {}).get("sha256")
    if recorded != file_sha256(args.teacher):
        raise SystemExit(f"--teacher {args.teacher} is not the teacher the student records ({recorded})")
    guidance, steps = meta["provenance"]["sampler"]["guidance"], meta["provenance"]["sampler"]["steps"]
    shipped = eng.default_steps
    samplers = {  # label: (model, steps, time power, guidance)
        f"teacher, {steps} even steps (as it shipped)": (teacher, steps, 1.0, guidance),
        f"teacher, {steps} steps, time power {TIME_POWER:g}": (teacher, steps, TIME_POWER, guidance),
        f"teacher, {shipped} even steps": (teacher, shipped, 1.0, guidance),
        f"teacher, {shipped} steps, time power {TIME_POWER:g}": (teacher, shipped, TIME_POWER, guidance),
        f"student, {steps} steps, time power {TIME_POWER:g}": (student, steps, TIME_POWER, guidance),
        f"student, {shipped} steps, time power {TIME_POWER:g} (ships)": (student, shipped, TIME_POWER, guidance),
    }
    # the student ships its teacher's guidance; the guidance its own validation table would pick, beside it
    distances = eng.metadata["provenance"].get("guidance_selection", {}).get("distance_to_validation")
    picked = float(min(distances, key=distances.get)) if distances else guidance
    if picked != guidance:
        samplers[f"student, {shipped} steps, time power {TIME_POWER:g}, guidance {picked:g} (its validation "
                 "table's pick)"] = (student, shipped, TIME_POWER, picked)
    frames = eng.frames_for(args.seconds)
    cases = [(name, torch.tensor([mood], dtype=torch.float32), seed) for name, mood in PRESETS.items()
             for seed in range(1, args.seeds + 1)]
    load = [os.getloadavg()[0]]
    times = {label: [] for label in samplers}
    mels: dict[str, list[np.ndarray]] = {label: [] for label in samplers}
    for _, mood, seed in cases:
        key = sample_keys(eng.key_prior, mood, seed=seed)
        for label, (model, n, power, g) in samplers.items():
            t0 = time.perf_counter()
            x = sample(model, mood, frames, n, g, seed, key, time_power=power)[0].clamp(-1, 1).numpy()
            times[label].append(time.perf_counter() - t0)
            mels[label].append(x)
    load.append(os.getloadavg()[0])
    reference = mels[next(iter(samplers))]
    names = list(PRESETS)
    rows = []
    for label in samplers:
        per_preset = {name: [] for name in names}
        for (name, _, _), x in zip(cases, mels[label]):
            wav = default_inversion(x, eng.mel_params, eng.inverter)
            v, a = pipe.judge.predict(audio.mel_from_audio(wav, eng.mel_params).numpy())
            per_preset[name].append((mel_correlates(x, eng.mel_params)["level_db"], v, a))
        diff = np.mean([np.abs(x - r).mean() for x, r in zip(mels[label], reference)])
        cells = [f"{np.mean([r[0] for r in per_preset[n]]):.1f} dB, {np.mean([r[1] for r in per_preset[n]]):+.2f} / "
                 f"{np.mean([r[2] for r in per_preset[n]]):+.2f}" for n in names]
        rows.append(f"| {label} | {statistics.median(times[label]):.3f} | {diff:.4f} | " + " | ".join(cells) + " |")
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. torch {torch.__version__}, {args.threads} thread(s); "
        f"{len(cases)} clips of {args.seconds:g} s ({len(PRESETS)} presets x {args.seeds} seeds), guidance "
        f"{guidance:g} (the teacher's) unless the row says otherwise; teacher SHA-256 "
        f"{file_sha256(args.teacher)[:12]}, student {eng.sha256[:12]}. 1-minute load "
        f"average {load[0]:.2f} before, {load[1]:.2f} after, on {os.cpu_count()} cores (sampler times are upper "
        "bounds when other jobs share the cores; their ratios hold).",
        "",
        "| sampler | sampler s per clip (median) | mean abs diff to the first row | "
        + " | ".join(f"{n}: level, judged V / A" for n in names) + " |",
        "|---|---:|---:|" + "---|" * len(names),
        *rows,
    ])
    print(body)
    if not args.no_write:
        update_section(threads_title("Mel engine distillation and time grid", args.threads), body)


if __name__ == "__main__":
    main()
