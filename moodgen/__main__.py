"""python -m moodgen generate --preset happy --seconds 10 --seed 1 --out clip.wav

Writes clip.wav (16-bit PCM), clip.json (every parameter, the checkpoint's hash, the judge's estimate) and, for
engines that play notes, clip.mid. Existing files are kept unless --force. Every error is one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from moodgen.config import shown
from moodgen.engines import engine_names
from moodgen.mood import PRESETS, preset
from moodgen.pipeline import CheckpointNotFound, MoodPipeline
from moodgen.render import INSTRUMENTS


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
        raise ValueError(f"--out must name a .wav file, got {shown(str(out))}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name a .wav file inside it")
    existing_parent = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not existing_parent.is_dir():
        raise ValueError(f"--out: {existing_parent} is a file, not a folder")
    if not os.access(existing_parent, os.W_OK):
        raise ValueError(f"--out: folder {existing_parent} is not writable")
    targets = [out, out.with_suffix(".json")] + ([out.with_suffix(".mid")] if has_midi else [])
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"--out: {', '.join(existing)} already exist; pass --force to overwrite")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moodgen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a clip for a mood")
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--preset", choices=list(PRESETS))
    where.add_argument("--valence", type=float)
    g.add_argument("--arousal", type=float)
    g.add_argument("--seconds", type=float, default=10.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the checkpoint's)")
    g.add_argument("--engine", choices=engine_names(), default=None, help="default: the checkpoint's best engine")
    g.add_argument("--key", default=None, help="musical key, e.g. 'A minor' (default: drawn for the mood)")
    g.add_argument("--instrument", choices=list(INSTRUMENTS), default=None,
                   help="what plays the notes (engines with notes; default: piano, what the model learned from)")
    g.add_argument("--soundfont", type=Path, default=None,
                   help="a General MIDI .sf2 (default: $MOODGEN_SOUNDFONT, else FluidR3 GM when installed, else "
                        "the TimGM6mb that pretty_midi ships)")
    g.add_argument("--dry", action="store_true", help="no room, no mastering gain or limiter (research, evaluation)")
    g.add_argument("--checkpoint", type=Path, default=None, help="checkpoints folder (default: ./checkpoints)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--out", type=Path, default=Path("clip.wav"))
    g.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = ap.parse_args(argv)
    if args.preset:
        valence, arousal = preset(args.preset)
    elif args.arousal is None:
        ap.error("--valence needs --arousal")
    else:
        valence, arousal = args.valence, args.arousal
    try:
        pipe = MoodPipeline.from_checkpoint(args.checkpoint, device=parse_device(args.device),
                                            soundfont=args.soundfont)
        check_out(args.out, pipe.engine(args.engine).makes_midi, args.force)
        gen = pipe.generate(valence, arousal, args.seconds, args.seed, args.steps, args.guidance, args.engine,
                            args.key, args.instrument, args.dry)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        files = gen.save(args.out, extra={"preset": args.preset}, overwrite=args.force)
    except (CheckpointNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
