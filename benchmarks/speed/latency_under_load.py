"""A 10 s clip's latency through `MoodPipeline.generate` (a new seed each call: nothing cached) while 0, 1 or 2 other
CPU-bound processes share the cores, for every engine, in a fresh process per case whose caller did or did not run
torch first: "plain" (nothing: the app's process), "main" (torch on its main thread), "threads" (torch and numpy on
the main thread and on three threads of its own). Each process times two ways of sizing the worker thread's OpenMP
team, interleaved (each repeat times both, so a change in the machine's load hits them alike): "free cores" (as
shipped: the cores no other task runs on, per task) and "fixed" (the yardstick: torch's thread count, as before).

    python -m benchmarks.speed.latency_under_load --repeats 5
    python -m benchmarks.speed.latency_under_load --repeats 5 --boost 15   # it and its competitors above the rest

The competitors are `python -c "while True: pass"`, each in a session of its own (Linux groups a session's tasks
and shares the cores between groups). `--boost N` gives this benchmark's processes and its competitors the
scheduling weight of nice -N, so other work on a shared machine matters less; the load average is recorded either way.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from benchmarks.results import command, git_head, machine, update_section

CALLERS = ("plain", "main", "threads")
PATHS = ("free cores", "fixed")


def boost(pid: int | str, nice: int) -> None:
    """Give the session (autogroup) of `pid` the weight of nice `-nice`; nothing where the kernel has none."""
    if nice:
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(-nice))
        except OSError as e:
            print(f"cannot boost {pid}: {e}", file=sys.stderr)


def use_torch(caller: str) -> None:
    """What the caller did before making a pipeline: nothing, torch on its main thread, or also on threads."""
    import numpy as np
    import torch
    if caller == "plain":
        return

    def work() -> None:
        a = torch.randn(384, 384)
        for _ in range(5):
            a = torch.tanh(a @ a)
        torch.nn.functional.conv1d(torch.randn(1, 64, 2000), torch.randn(64, 64, 3))
        b = np.random.default_rng(0).standard_normal((384, 384))
        for _ in range(5):
            b = np.tanh(b @ b)
    work()
    if caller == "threads":
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def child(caller: str, checkpoint: Path, repeats: int, seconds: float) -> None:
    """One fresh process: time every engine on both paths, print JSON."""
    from benchmarks.speed.app_latency import yardstick_s
    use_torch(caller)
    from moodgen.pipeline import MoodPipeline
    from moodgen.threads import free_cores, math_threads
    pipe = MoodPipeline.from_checkpoint(checkpoint, device="cpu")
    pipe.warmup()
    arounds = {"free cores": lambda: math_threads(free_cores()), "fixed": nullcontext}
    seed = 1000
    times: dict[str, dict[str, list[float]]] = {p: {e: [] for e in pipe.engines} for p in PATHS}
    load, yard = [os.getloadavg()[0]], [yardstick_s()]
    for i in range(repeats + 1):  # the first round warms each path at the clip's length
        for path in PATHS:
            pipe._workers._around = arounds[path]
            for name in pipe.engines:
                seed += 1
                t0 = time.perf_counter()
                pipe.generate(0.7, 0.7, seconds, seed=seed, engine=name)
                if i:
                    times[path][name].append(time.perf_counter() - t0)
    load.append(os.getloadavg()[0])
    yard.append(yardstick_s())
    print(json.dumps({"times": times, "load": load, "yardstick": yard}))


def run_case(caller: str, competitors: int, args: argparse.Namespace) -> dict:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                for _ in range(competitors)]
    try:
        for s in spinners:
            boost(s.pid, args.boost)
        time.sleep(1.0)
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.speed.latency_under_load", "--child", caller,
                                 "--checkpoint", str(args.checkpoint), "--repeats", str(args.repeats),
                                 "--seconds", str(args.seconds), "--boost", str(args.boost)],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        out, _ = proc.communicate()
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    if proc.returncode:
        raise SystemExit(f"the {caller} case with {competitors} competitors failed")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--callers", default=",".join(CALLERS))
    ap.add_argument("--competitors", default="0,1,2")
    ap.add_argument("--boost", type=int, default=0, help="scheduling boost (nice -N) of this benchmark's processes")
    ap.add_argument("--child", choices=CALLERS, help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    args = ap.parse_args()
    if args.child:
        boost("self", args.boost)
        child(args.child, args.checkpoint, args.repeats, args.seconds)
        return
    rows, quiet = [], {}
    for caller in args.callers.split(","):
        for n in (int(c) for c in args.competitors.split(",")):
            r = run_case(caller, n, args)
            for path in PATHS:
                for engine, ts in r["times"][path].items():
                    med = statistics.median(ts)
                    if n == 0:
                        quiet[caller, path, engine] = med
                    q = quiet.get((caller, path, engine))
                    ratio = f"{med / q:.1f}x" if q and n else ""
                    rows.append(f"| {caller} | {n} | {engine} | {path} | {med:.3f} | {min(ts):.3f} | "
                                f"{max(ts):.3f} | {ratio} | {r['load'][0]:.1f} / {r['load'][1]:.1f} | "
                                f"{r['yardstick'][0]:.2f} / {r['yardstick'][1]:.2f} |")
                    print(rows[-1], flush=True)
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. Code at git {git_head()}. {args.seconds:g} s clips at "
        f"valence/arousal (0.7, 0.7) through `MoodPipeline.generate`, a new seed per call, {args.repeats} repeats "
        f"after one warm round; a fresh process per caller x competitors. Boost: "
        + (f"this benchmark and its competitors at the weight of nice -{args.boost} (other jobs on the machine "
           "mattered less)." if args.boost else "none (other jobs on the machine shared the cores like ours).")
        + " Yardstick: a fixed single-threaded task timed in the case's process (about 0.1 s on an idle core; the "
        "competitors' share included). Team \"free cores\" counts every runnable task, whatever its priority.",
        "",
        "| caller | competitors | engine | team | median (s) | min (s) | max (s) | x its quiet median | "
        "1-min load before / after | yardstick (s) before / after |",
        "|---|---:|---|---|---:|---:|---:|---:|---|---|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        title = "Latency under load (benchmarks/speed/latency_under_load.py)"
        update_section(title + (f", boost {args.boost}" if args.boost else ", no boost"), body)


if __name__ == "__main__":
    main()
