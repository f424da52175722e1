"""Memory under a long run: `python app.py` on the shipped checkpoints (127.0.0.1), 300 distinct requests through
the API from 2 clients at once (every 5th a 30 s clip, every 4th on the mel engine, nearest by mood and by sound in
turn), the server's resident memory (VmRSS) sampled every 10 requests. With --library the same requests go to a
`MoodPipeline` in this process from a pool of 40 threads, 2 at a time, as a web server calls it: what the library
itself keeps, without the app.

Target: after the first 30 requests, RSS grows by at most 100 MB over the rest, and never exceeds 1.2 GB.

    python -m benchmarks.speed.soak --requests 300 --sample-every 10
    python -m benchmarks.speed.soak --library --requests 300
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from gradio_client import Client

from benchmarks.results import command, git_head, machine, publish
from benchmarks.speed.app_latency import add_app_arguments, api_engines, launch, memory_mb, stop
from benchmarks.speed.load import AUTO_KEY
from moodgen.pipeline import MoodPipeline

TITLE = "Memory soak (benchmarks/speed/soak.py)"
LIBRARY_TITLE = "Memory soak of the library alone (benchmarks/speed/soak.py --library)"
WARM = 30  # requests before the baseline: caches fill, allocators settle
MAX_GROWTH_MB, MAX_RSS_MB = 100.0, 1200.0


def request_args(i: int, engines: list[str], long_every: int, mel_every: int) -> tuple:
    """The i-th request: a distinct mood and seed; some long clips, some on the second engine."""
    golden = 0.6180339887
    v, a = ((i * golden) % 1.0) * 1.8 - 0.9, ((i * golden * golden + 0.37) % 1.0) * 1.8 - 0.9
    engine = engines[1] if len(engines) > 1 and i % mel_every == mel_every - 1 else engines[0]
    seconds = 30.0 if i % long_every == 0 else 5.0
    return (round(v, 3), round(a, 3), seconds, 1000 + i, False, engine, 16, 2.0, ("mood", "sound")[i % 2], AUTO_KEY)


class AppTarget:
    """`python app.py` in its own process, called through the API; one `gradio_client.Client` per calling thread."""

    def __init__(self, checkpoints: Path, threads: int):
        self.cache = Path(tempfile.mkdtemp(prefix="moodgen-soak-cache-"))  # the app's own Gradio cache, to measure
        os.environ["GRADIO_TEMP_DIR"] = str(self.cache)  # launch() hands the environment to app.py
        self.proc, self.url, *_ = launch(checkpoints, threads, 600.0,
                                           log=Path(tempfile.mkdtemp(prefix="moodgen-soak-")) / "app.log")
        self.pid, self.local = self.proc.pid, threading.local()
        self.engines = api_engines(Client(self.url, verbose=False, analytics_enabled=False))
        self.what = f"`python app.py` on 127.0.0.1 with OMP_NUM_THREADS={threads}, called through the API"

    def call(self, args: tuple) -> None:
        if not hasattr(self.local, "client"):
            self.local.client = Client(self.url, verbose=False, ssl_verify=False,  # plain HTTP on loopback
                                       download_files=tempfile.mkdtemp(prefix="moodgen-soak-"),
                                       httpx_kwargs={"timeout": 600.0}, analytics_enabled=False)
        self.local.client.predict(*args, api_name="/generate")

    def close(self) -> None:
        stop(self.proc)

    def temp_files(self) -> tuple[int, int]:
        """(files, bytes) in the app's Gradio cache."""
        files = [p for p in self.cache.rglob("*") if p.is_file()]
        return len(files), sum(p.stat().st_size for p in files)


class LibraryTarget:
    """The pipeline in this process, as the app uses it (generate, then the nearest clip), without the app."""

    def __init__(self, checkpoints: Path, threads: int):
        torch.set_num_threads(threads)
        self.pipe = MoodPipeline.from_checkpoint(checkpoints, device="cpu")
        self.pipe.warmup()
        self.pid, self.engines = os.getpid(), list(self.pipe.engines)
        self.what = f"`MoodPipeline` in-process with {threads} torch threads, no app"

    def call(self, args: tuple) -> None:
        valence, arousal, seconds, seed, _, engine, steps, guidance, nearest_by, _ = args
        gen = self.pipe.generate(valence, arousal, seconds, seed=seed, steps=steps, guidance=guidance,
                                 engine=engine)
        self.pipe.nearest(gen, nearest_by)

    def close(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--clients", type=int, default=2, help="requests at once (the app runs 2 at once)")
    ap.add_argument("--long-every", type=int, default=5, help="every n-th request is a 30 s clip")
    ap.add_argument("--mel-every", type=int, default=4, help="every n-th request uses the second engine")
    ap.add_argument("--max-minutes", type=float, default=9.5, help="stop early (and say so) after this long")
    ap.add_argument("--library", action="store_true",
                    help="soak the pipeline in this process instead of the app: what the library itself keeps")
    ap.add_argument("--caller-threads", type=int, default=40,
                    help="with --library: the threads requests come from, --clients at a time (a web server's pool; "
                         "Gradio's has 40)")
    add_app_arguments(ap)
    args = ap.parse_args()

    target = (LibraryTarget if args.library else AppTarget)(args.checkpoints, args.threads)
    callers = args.caller_threads if args.library else args.clients
    samples: list[tuple[int, float]] = [(0, memory_mb(target.pid, "VmRSS"))]
    failures: list[str] = []
    done, lock, gate, t0 = 0, threading.Lock(), threading.Semaphore(args.clients), time.perf_counter()

    def request(i: int) -> None:
        nonlocal done
        with gate:
            if time.perf_counter() - t0 > args.max_minutes * 60:
                return
            try:
                target.call(request_args(i, target.engines, args.long_every, args.mel_every))
            except Exception as exc:  # noqa: BLE001 - a failed request is counted, the soak goes on
                with lock:
                    failures.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            with lock:
                done += 1
                if done % args.sample_every == 0:
                    samples.append((done, memory_mb(target.pid, "VmRSS")))
                    print(f"{done} requests, {time.perf_counter() - t0:.0f} s, RSS {samples[-1][1]:.0f} MB",
                          flush=True)

    try:
        with ThreadPoolExecutor(callers) as pool:
            list(pool.map(request, range(args.requests)))
        peak = memory_mb(target.pid, "VmHWM")
        cached = target.temp_files() if not args.library else None
    finally:
        target.close()
    if not args.library:
        cached_after_exit = target.temp_files()
    wall = time.perf_counter() - t0

    rss = dict(samples)
    base_n = min((n for n in rss if n >= WARM), default=samples[-1][0])
    last_n = samples[-1][0]
    growth = rss[last_n] - rss[base_n]
    met = done >= args.requests and growth <= MAX_GROWTH_MB and peak <= MAX_RSS_MB and not failures
    engines = target.engines
    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. Code at git {git_head()}: {target.what}; "
        f"{args.clients} requests at once from {callers} threads: every {args.long_every}th a 30 s clip (else 5 s), "
        f"every {args.mel_every}th on `{engines[-1]}` (else `{engines[0]}`), nearest by mood and by sound in turn. "
        f"{done} requests in {wall / 60:.1f} min; 5-minute load average at the end {os.getloadavg()[1]:.1f}.",
        "",
        f"**{'met' if met else 'NOT met'}** (target: growth <= {MAX_GROWTH_MB:.0f} MB after the first {WARM} "
        f"requests, peak <= {MAX_RSS_MB:.0f} MB, all {args.requests} requests served)"
        + (f"; stopped at the {args.max_minutes:g}-minute bound after {done} requests" if done < args.requests
           else "") + (f"; {len(failures)} failed, first: `{failures[0]}`" if failures else "") + ".",
        "",
        "| RSS at start | after " + f"{base_n} | after {last_n} | growth | peak (VmHWM) |",
        "|---|---|---|---|---|",
        f"| {rss[0]:.0f} MB | {rss[base_n]:.0f} MB | {rss[last_n]:.0f} MB | {growth:+.0f} MB | {peak:.0f} MB |",
        "",
        "RSS every " + f"{args.sample_every} requests (MB): " + ", ".join(f"{n}: {mb:.0f}" for n, mb in samples[1:]),
        *(["", f"Gradio's cache (the app's own folder): {cached[0]} files, {cached[1] / 1e6:.1f} MB at the end; "
           f"{cached_after_exit[0]} files, {cached_after_exit[1] / 1e6:.1f} MB once the app had exited."]
          if not args.library else []),
    ])
    publish(LIBRARY_TITLE if args.library else TITLE, body, args.label, not args.no_write)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
