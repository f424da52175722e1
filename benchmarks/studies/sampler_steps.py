"""What fewer sampler steps cost in fidelity and save in time, for every engine whose sampler takes steps: each
preset and seed is generated at the shipped step count and at fewer. Per step count: the median time of a clip,
the mean absolute difference of its representation from the shipped count's (same seed; representation units,
[-1, 1]), the judge's (valence, arousal) of its audio and the engine's correlates, averaged per preset.

    python -m benchmarks.studies.sampler_steps --steps 16,12,10,8 --seeds 3 --threads 2
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from benchmarks import results
from benchmarks.results import command, machine, update_section
from moodgen import audio
from moodgen.config import RollParams
from moodgen.keys import sample_keys
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, threads=2, seconds=10.0, seeds=3)
    ap.add_argument("--steps", default="16,12,10,8", help="step counts, the shipped one first")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    counts = [int(s) for s in args.steps.split(",")]
    lines = []
    for name in pipe.engines:
        eng = pipe.engine(name)
        if not eng.uses_steps:
            continue
        rows: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
        for preset, (v, a) in PRESETS.items():
            mood = torch.tensor([[v, a]], dtype=torch.float32)
            for seed in range(1, args.seeds + 1):
                key = None if eng.key_prior is None else sample_keys(eng.key_prior, mood, seed=seed)
                reference = None
                for n in counts:
                    t0 = time.perf_counter()
                    out = eng.generate(mood, args.seconds, seed, n, eng.default_guidance, key)
                    took = time.perf_counter() - t0
                    reference = out.frames if reference is None else reference
                    jv, ja = pipe.judge.predict(audio.mel_from_audio(out.audio, eng.mel_params).numpy())
                    rows[n].append({"preset": preset, "s": took, "diff": float(np.abs(out.frames - reference).mean()),
                                    "judged_v": jv, "judged_a": ja,
                                    **eng.correlates(out.frames, eng.mel_params, RollParams())})
        names = [k for k in rows[counts[0]][0] if k not in ("preset", "s", "diff", "judged_v", "judged_a")]
        lines += [f"Engine `{name}`, guidance {eng.default_guidance:g}, shipped steps {eng.default_steps}; "
                  f"{len(PRESETS)} presets x {args.seeds} seeds.", "",
                  "| steps | clip s (median) | mean abs diff to first | preset | judged valence | judged arousal | "
                  + " | ".join(names) + " |",
                  "|---:|---:|---:|---|---:|---:|" + "---:|" * len(names)]
        for n in counts:
            med = statistics.median(r["s"] for r in rows[n])
            diff = float(np.mean([r["diff"] for r in rows[n]]))
            for i, preset in enumerate(PRESETS):
                sel = [r for r in rows[n] if r["preset"] == preset]
                cells = [f"{np.mean([r[k] for r in sel]):+.2f}" for k in ("judged_v", "judged_a", *names)]
                lead = f"| {n} | {med:.3f} | {diff:.4f} |" if i == 0 else "| | | |"
                lines.append(f"{lead} {preset} | " + " | ".join(cells) + " |")
        lines.append("")
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. torch {torch.__version__}, {args.threads} thread(s), "
        f"{args.seconds:g} s clips; 1-minute load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} "
        "cores (clip times are upper bounds when other jobs share the cores; their ratios hold). Judged on the "
        "engine's audio before mastering.", "", *lines])
    print(body)
    if not args.no_write:
        update_section("Sampler steps: time against fidelity (benchmarks/studies/sampler_steps.py)", body)


if __name__ == "__main__":
    main()
