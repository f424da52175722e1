"""python -m moodgen generate --preset happy --seconds 10 --seed 1 --out clip.wav

Writes clip.wav (16-bit PCM), clip.json (every parameter, the checkpoint's hash, the judge's estimate) and, for
engines that play notes, clip.mid. Existing files are kept unless --force. Every error is one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

import torch

from moodgen.config import shown
from moodgen.engines import engine_names
from moodgen.mood import PRESETS, preset
from moodgen.pipeline import CheckpointNotFound, MoodPipeline


def parse_device(name: str | None) -> str | None:
    """A device torch knows and this machine has, or None for the default; ValueError naming --device otherwise."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be a torch device such as cpu or cuda, got {shown(name)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {shown(name)}")
    return name


def check_out(out: Path, has_midi: bool, force: bool) -> None:
    """Refuse, before any work, an --out that cannot be written: wrong suffix, a folder, no writable place for it
    (missing folders are made), or files that exist (without --force)."""
    if out.suffix.lower() != ".wav":
        raise ValueError(f"--out must name a .wav file, got {shown(out.suffix) if out.suffix else 'no suffix'}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name a .wav file inside it")
    existing_parent = next(p for p in out.absolute().parents if p.exists())
    if not existing_parent.is_dir():
        raise ValueError(f"--out: {existing_parent} is a file, not a folder")
    if not os.access(existing_parent, os.W_OK):
        raise ValueError(f"--out: folder {existing_parent} is not writable")
    targets = [out, out.with_suffix(".json")] + ([out.with_suffix(".mid")] if has_midi else [])
    folders = [str(t) for t in targets if t.is_dir()]
    if folders:
        raise ValueError(f"--out: {', '.join(folders)} is a folder, in the way of a file written beside --out")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"--out: {', '.join(existing)} already exist; pass --force to overwrite")


class UsageError(ValueError):
    pass


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that raises its errors (main prints them as one short line) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message if len(message) <= 200 else message[:200] + "...")


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m moodgen", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a clip for a mood")
    # Values stay strings here: the pipeline checks each against moodgen.config.Limits and names the field.
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--preset", help=f"one of {', '.join(PRESETS)}")
    where.add_argument("--valence", help="-1 (unpleasant) to 1 (pleasant); needs --arousal")
    g.add_argument("--arousal", help="-1 (calm) to 1 (energetic)")
    g.add_argument("--seconds", default=10.0)
    g.add_argument("--seed", default=0)
    g.add_argument("--steps", default=None, help="sampling steps (default: the checkpoint's)")
    g.add_argument("--guidance", default=None, help="classifier-free guidance (default: the checkpoint's)")
    g.add_argument("--engine", default=None, help=f"one of {', '.join(engine_names())} (default: the checkpoint's "
                                                  "best engine)")
    g.add_argument("--key", default=None, help="musical key, e.g. 'A minor' (default: drawn for the mood)")
    g.add_argument("--checkpoint", type=Path, default=None, help="checkpoints folder (default: ./checkpoints)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--out", type=Path, default=Path("clip.wav"))
    g.add_argument("--force", action="store_true", help="overwrite existing output files")
    try:
        args = ap.parse_args(argv)
        if args.preset is not None and args.arousal is not None:
            ap.error("--arousal goes with --valence, not --preset")
        if args.valence is not None and args.arousal is None:
            ap.error("--valence needs --arousal")
        valence, arousal = preset(args.preset) if args.preset is not None else (args.valence, args.arousal)
        pipe = MoodPipeline.from_checkpoint(args.checkpoint, device=parse_device(args.device))
        check_out(args.out, pipe.engine(args.engine).makes_midi, args.force)
        gen = pipe.generate(valence, arousal, args.seconds, args.seed, args.steps, args.guidance, args.engine,
                            args.key)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        files = gen.save(args.out, extra={"preset": args.preset}, overwrite=args.force)
    except (CheckpointNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
