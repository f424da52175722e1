"""Check that the shipped weights still give byte-identical WAV and MIDI files for every engine, preset and seed.

    python -m benchmarks.checks.same_outputs            # compare with output_hashes.json beside it; exit 1 on a change
    python -m benchmarks.checks.same_outputs --record   # write the hashes of what the current code produces

Each file is written by the command line (`python -m moodgen generate`, called in-process), as a user would get it,
dry (no mastering) on the soundfont pretty_midi ships: the path the hashes were recorded on before the render chain.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from moodgen.__main__ import main as cli
from moodgen.mood import PRESETS
from moodgen.render import bundled_soundfont

HASHES = Path(__file__).with_name("output_hashes.json")
ENGINES = ("notes", "mel")  # the shipped checkpoint's engines, as the hashes were recorded
SEEDS = (1, 2)


def produce(checkpoint: Path) -> dict[str, str]:
    """{"engine/preset/seed/suffix": sha256} of every file the CLI writes, except the JSON (it names the run)."""
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ENGINES:
            for preset in PRESETS:
                for seed in SEEDS:
                    wav = Path(tmp, f"{engine}_{preset}_{seed}.wav")
                    if cli(["generate", "--engine", engine, "--preset", preset, "--seed", str(seed),
                            "--checkpoint", str(checkpoint), "--out", str(wav), "--dry",
                            "--soundfont", str(bundled_soundfont())]) != 0:
                        raise SystemExit(f"generate failed for {engine} {preset} seed {seed}")
                    for f in (wav, wav.with_suffix(".mid")):
                        if f.is_file():
                            out[f"{engine}/{preset}/{seed}/{f.suffix[1:]}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--record", action="store_true", help="write the hashes instead of checking them")
    args = ap.parse_args(argv)
    hashes = produce(args.checkpoint)
    if args.record:
        HASHES.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(hashes)} hashes in {HASHES}")
        return 0
    expected = json.loads(HASHES.read_text())
    differ = sorted(k for k in expected.keys() | hashes.keys() if expected.get(k) != hashes.get(k))
    for k in differ:
        print(f"differs: {k}")
    print(f"{len(expected) - len(differ)} of {len(expected)} files identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
