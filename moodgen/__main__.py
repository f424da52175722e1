"""python -m moodgen generate --preset happy --seconds 10 --seed 1 --out clip.wav

Writes clip.wav (16-bit PCM), clip.json (every parameter, the checkpoint's hash, the judge's estimate) and, for the
note engine, clip.mid.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf

from moodgen.audio import to_pcm16
from moodgen.mood import PRESETS, preset
from moodgen.pipeline import CheckpointNotFound, MoodPipeline


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
    g.add_argument("--engine", choices=["notes", "mel"], default=None, help="default: the checkpoint's best engine")
    g.add_argument("--key", default=None, help="musical key, e.g. 'A minor' (default: drawn for the mood)")
    g.add_argument("--checkpoint", type=Path, default=None, help="checkpoints folder (default: ./checkpoints)")
    g.add_argument("--device", default=None)
    g.add_argument("--out", type=Path, default=Path("clip.wav"))
    args = ap.parse_args(argv)
    if args.preset:
        valence, arousal = preset(args.preset)
    elif args.arousal is None:
        ap.error("--valence needs --arousal")
    else:
        valence, arousal = args.valence, args.arousal
    try:
        pipe = MoodPipeline.from_checkpoint(args.checkpoint, device=args.device)
        gen = pipe.generate(valence, arousal, args.seconds, args.seed, args.steps, args.guidance, args.engine,
                            args.key)
    except (CheckpointNotFound, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, to_pcm16(gen.audio), gen.sample_rate, subtype="PCM_16")
    params = gen.params() | {"preset": args.preset}
    files = [args.out]
    if gen.midi is not None:
        args.out.with_suffix(".mid").write_bytes(gen.midi)
        files.append(args.out.with_suffix(".mid"))
    args.out.with_suffix(".json").write_text(json.dumps(params, indent=1))
    files.append(args.out.with_suffix(".json"))
    print(" ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
