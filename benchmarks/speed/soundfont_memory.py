"""What a soundfont costs a process that plays notes with it: the memory its renderer adds (the first loaded copy
and what the renderer keeps to load more), each further loaded copy (one per live stream that plays at once), and
the time to load it on first use. Every soundfont found (`moodgen.render.find_soundfonts`), each measured in a fresh
process per repeat, interleaved, so a change in the machine's load hits them alike; medians. RSS is read after
`malloc_trim`, as the pipeline's workers trim after each task (moodgen.memory).

    python -m benchmarks.speed.soundfont_memory --repeats 3
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.results import command, machine, update_section
from moodgen import render
from moodgen.config import MelParams

FURTHER_COPIES = 3


def rss_mb() -> float:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def measure_one(path: Path) -> dict[str, float]:
    """In this process: the renderer of `path` (and the level trim of one instrument), then further copies."""
    before = rss_mb()
    start = time.perf_counter()
    renderer = render.SoundfontRenderer(MelParams().sample_rate, path)
    renderer.level_trim_db(render.INSTRUMENTS["strings"])  # what the first request on it also waits for
    seconds = time.perf_counter() - start
    first = rss_mb()
    held = [renderer.borrow() for _ in range(FURTHER_COPIES + 1)]  # the idle copy, then new ones
    further = (rss_mb() - first) / FURTHER_COPIES
    del held
    return {"renderer_mb": first - before, "copy_mb": further, "load_s": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process: measure this soundfont, print JSON
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args.one)))
        return
    fonts = render.find_soundfonts()
    runs: dict[Path, list[dict[str, float]]] = {f: [] for f in fonts}
    for _ in range(args.repeats):
        for font in fonts:
            out = subprocess.run([sys.executable, "-m", "benchmarks.speed.soundfont_memory", "--one", str(font)],
                                 capture_output=True, text=True, check=True)
            runs[font].append(json.loads(out.stdout))
    rows = ["| soundfont | file | renderer (first copy + what it keeps) | each further copy | first use |",
            "|---|---|---|---|---|"]
    for font, measured in runs.items():
        med = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
        rows.append(f"| {font.name} | {font.stat().st_size / 2**20:.0f} MiB | {med['renderer_mb']:.0f} MB | "
                    f"{med['copy_mb']:.0f} MB | {med['load_s']:.2f} s |")
    body = "\n".join([f"{machine()}; `{command()}`; load average {os.getloadavg()[0]:.1f} at the end; medians of "
                      f"{args.repeats} fresh processes per soundfont; first use = load, hash, cut down to the "
                      "offered programs, and one instrument's level trim.", "", *rows])
    print(body)
    update_section("Soundfont memory (benchmarks/speed/soundfont_memory.py)", body)


if __name__ == "__main__":
    main()
