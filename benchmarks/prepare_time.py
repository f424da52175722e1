"""Wall time of `python -m train.prepare` for the full EMOPIA corpus into a fresh cache, then of a rerun (no work).

    python -m benchmarks.prepare_time [--root ../shared/data/emopia/EMOPIA_1.0] [--workers 2] [--keep DIR]

Each run is a child process (`python -m train.prepare --source emopia --out <temp dir>`); its wall time, CPU time
(user + system over all its worker processes) and peak resident memory of the largest process are read from
`resource.getrusage(RUSAGE_CHILDREN)`. The temporary cache (~8.5 GB) is deleted afterwards unless --keep is given.
Writes the "prepare" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results import command, machine, update_section


def timed_prepare(root: Path, out: Path, workers: int) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "train.prepare", "--source", "emopia", "--root", str(root),
                           "--out", str(out), "--workers", str(workers)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "max_rss_gb": after.ru_maxrss / 1024 ** 2, "summary": json.loads(proc.stdout.strip().splitlines()[-1])}


def time_v_summary(log: Path) -> str | None:
    """One line from a `/usr/bin/time -v` log of an earlier prepare run, or None when there is no such log."""
    if not log.is_file():
        return None
    wanted = {"Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall", "User time (seconds)": "user s",
              "System time (seconds)": "sys s", "Percent of CPU this job got": "CPU",
              "Maximum resident set size (kbytes)": "peak RSS kB", "Exit status": "exit"}
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in wanted:
            found[wanted[key]] = value
    return ", ".join(f"{k} {v}" for k, v in found.items()) if found else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.prepare_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build the cache here and keep it (must not exist yet)")
    ap.add_argument("--log", type=Path, default=Path("logs/prepare_emopia.log"),
                    help="`/usr/bin/time -v` log of an earlier run, quoted for comparison when present")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    tmp = None if args.keep else Path(tempfile.mkdtemp(prefix="prepare_time_"))
    out = args.keep or tmp / "emopia"
    if out.exists():
        raise SystemExit(f"{out} already exists; the first run must start from an empty cache")
    try:
        runs = [timed_prepare(args.root, out, args.workers) for _ in ("fresh", "rerun")]
        size_gb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1024 ** 3
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    lines = [f"Machine: {machine()}; {args.workers} prepare workers, run with `nice -n 10` while other jobs shared "
             f"the cores. Command: `{command()}`.", "",
             "| run | wall | CPU (user+sys, all processes) | peak RSS (largest process) | summary printed |",
             "|---|---|---|---|---|"]
    for name, r in zip(("fresh cache", "rerun (no changes)"), runs):
        # getrusage keeps the maximum over all children so far, so only the first run's peak is its own
        rss = f"{r['max_rss_gb']:.1f} GB" if name == "fresh cache" else "(not separable)"
        lines.append(f"| {name} | {r['wall_s'] / 60:.1f} min ({r['wall_s']:.0f} s) | {r['cpu_s']:.0f} s | {rss} | "
                     f"`{json.dumps(r['summary'])}` |")
    lines += ["", f"Cache size: {size_gb:.1f} GB. One run each: the fresh run takes minutes and the rerun must "
              "report `processed: 0, consolidated: false`."]
    earlier = time_v_summary(args.log)
    if earlier:
        lines += ["", f"For comparison, the first real build of the shared cache (`/usr/bin/time -v python -m "
                  f"train.prepare`, default 2 workers, machine less loaded; {args.log}): {earlier}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("prepare: EMOPIA cache build time (benchmarks/prepare_time.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
