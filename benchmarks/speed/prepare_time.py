"""The EMOPIA corpus cache: a fresh build, then a rerun (no work); wall time, CPU, peak memory, size on disk.

    python -m benchmarks.speed.prepare_time --out DIR [--root ../shared/data/emopia/EMOPIA_1.0] [--workers 2] [--nice 5]
                                      [--keep]

Each run is `/usr/bin/time -v nice -n <nice> python -m train.prepare --source emopia --root <root> --out DIR
--workers <workers>`; wall, user and system time, CPU share and the peak resident memory of the largest process
are read from time's report. DIR must not exist (the first run starts from nothing); it is deleted afterwards
unless --keep. The size is the blocks allocated under DIR, as `du` counts them. The machine may be shared, so the
load average before each run is reported beside it. Writes the "prepare" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.results import command, machine, update_section

TIME_FIELDS = {"Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall", "User time (seconds)": "user_s",
               "System time (seconds)": "sys_s", "Percent of CPU this job got": "cpu",
               "Maximum resident set size (kbytes)": "max_rss_kb", "Exit status": "exit"}
# The previous version of this section (cache format 1: float16 mels, raw int16 audio, shards kept beside the
# consolidated arrays), quoted for comparison.
BEFORE = ("Before (cache format 1, same machine, 2026-11-24): 8.5 GB on disk; first real build 10 min 05 s wall, "
          "user 498 s + sys 67 s, peak RSS 7.1 GB (`/usr/bin/time -v`, 2 workers, machine less loaded); a rerun of "
          "`python -m benchmarks.speed.prepare_time` under load took 34.5 min with a 6.8 GB peak.")


def time_v(log: Path) -> dict[str, str]:
    """The fields of a `/usr/bin/time -v` report that this benchmark quotes."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in TIME_FIELDS:
            found[TIME_FIELDS[key]] = value
    return found


def timed_prepare(root: Path, out: Path, workers: int, nice: int, log: Path) -> dict:
    load = os.getloadavg()[0]
    proc = subprocess.run(["/usr/bin/time", "-v", "-o", str(log), "nice", "-n", str(nice), sys.executable, "-m",
                           "train.prepare", "--source", "emopia", "--root", str(root), "--out", str(out),
                           "--workers", str(workers)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    return {**time_v(log), "load": load, "summary": json.loads(proc.stdout.strip().splitlines()[-1])}


def allocated_bytes(folder: Path) -> dict[str, int]:
    """Bytes allocated on disk (as `du`) per top-level entry of `folder`."""
    sizes = {}
    for entry in folder.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.stat().st_blocks * 512 for p in files)
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.speed.prepare_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--out", type=Path, help="cache folder to build (must not exist; default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the cache built in --out")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nice", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="prepare_time_"))
    out = args.out or tmp / "emopia"
    if out.exists():
        raise SystemExit(f"{out} already exists; the first run must start from an empty cache")
    try:
        runs = [timed_prepare(args.root, out, args.workers, args.nice, tmp / f"{name}.log")
                for name in ("fresh", "rerun")]
        sizes = allocated_bytes(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)

    lines = [f"Machine: {machine()}; {args.workers} prepare workers. Command: `{command()}` (each run: "
             f"`/usr/bin/time -v nice -n {args.nice} python -m train.prepare --source emopia --out <new folder>`). "
             "One run each: a fresh build takes minutes; the rerun must report `processed: 0, consolidated: false`.",
             "", "| run | wall | user + sys | CPU | peak RSS (largest process) | load avg before | summary printed |",
             "|---|---|---|---|---|---|---|"]
    for name, r in zip(("fresh cache", "rerun (no changes)"), runs):
        cpu_s = float(r["user_s"]) + float(r["sys_s"])
        lines.append(f"| {name} | {r['wall']} | {cpu_s:.0f} s | {r['cpu']} | {int(r['max_rss_kb']) / 1024 ** 2:.2f} GB "
                     f"| {r['load']:.2f} | `{json.dumps(r['summary'])}` |")
    biggest_first = sorted(sizes.items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{name} {size / 1024 ** 2:.0f} MiB" for name, size in biggest_first if size >= 1024 ** 2)
    lines += ["", f"Cache on disk: {sum(sizes.values()) / 1024 ** 3:.2f} GiB ({parts}).", "", BEFORE]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("prepare: EMOPIA cache build time (benchmarks/speed/prepare_time.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
