"""Does the note engine play in the key it is given? Every key x every preset x seeds, key found on the roll.

    python -m benchmarks.studies.key_following [--checkpoint checkpoints] [--seeds 2] [--seconds 10]

For each of the 24 keys and each preset, samples `seeds` clips with that key forced (the checkpoint's default
guidance), finds the key of each clip with the Krumhansl-Schmuckler profiles on its pitch classes (weighted by
duration x velocity, as the training labels are) and counts exact keys, the same mode, the same tonic, and the
relative key (A minor for C major and back), which key finding confuses most. Chance for the exact key is 1/24.
Writes the "Key following (note engine)" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.results import command, machine, update_section
from moodgen.config import RollParams, from_dict
from moodgen.keys import N_KEYS, estimate_key, transpose_key
from moodgen.midi import pitch_class_histogram
from moodgen.mood import PRESETS
from moodgen.note_model import NoteModel, sample_roll


def relative(key: int) -> int:
    """The relative minor of a major key and the relative major of a minor one."""
    return transpose_key(key, -3) + 12 if key < 12 else transpose_key(key, 3) - 12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    model, meta = NoteModel.from_file(args.checkpoint / "note_model.safetensors")
    if model.key is None:
        raise SystemExit("this note model is not conditioned on keys")
    roll = from_dict(RollParams, meta["provenance"]["roll_params"])
    guidance = meta["provenance"]["sampler"]["guidance"]
    moods = torch.tensor(list(PRESETS.values()), dtype=torch.float32)
    counts = {name: np.zeros(4) for name in PRESETS}  # exact, mode, tonic, relative
    for key in range(N_KEYS):
        for seed in range(args.seeds):
            active, _ = sample_roll(model, moods, roll.frames_for(args.seconds), guidance, seed=seed,
                                    key=torch.full((len(moods),), key))
            for name, a in zip(PRESETS, active):
                found = estimate_key(pitch_class_histogram(a, roll))
                counts[name] += [found == key, (found >= 12) == (key >= 12), found % 12 == key % 12,
                                 found == relative(key)]
    n = N_KEYS * args.seeds
    lines = [f"{machine()}; `{command()}`; {n} clips per preset ({N_KEYS} keys x {args.seeds} seeds), "
             f"{args.seconds:g} s, guidance {guidance:g}.", "",
             "| preset | exact key | same mode | same tonic | relative key |", "|---|---|---|---|---|"]
    for name, c in counts.items():
        lines.append(f"| {name} | " + " | ".join(f"{x / n:.2f}" for x in c) + " |")
    total = sum(counts.values()) / (n * len(counts))
    lines.append("| all | " + " | ".join(f"{x:.2f}" for x in total) + " |")
    lines += ["", "Chance: exact key 0.04, same mode 0.50, same tonic 0.08, relative key 0.04."]
    update_section("Key following (note engine)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
