"""Concurrent users against `python app.py` on 127.0.0.1: 16 clients x 3 distinct requests (both engines), then 24
identical requests fired together, then one client flooding the queue with journeys while another asks for a clip
(moodgen_app.guard: the flood beyond the client's share is refused, the other is served after at most one
request). Every request must succeed and every downloaded file must be complete (each WAV
decodes to the length its header declares, and the generated ones to the requested seconds; each PNG decodes; the
JSON parses; the MIDI loads). Reports p50/p95 latency (submit to files on disk, queueing included).

    python -m benchmarks.speed.load --clients 16 --requests 3 --identical 24 --flood 20 --seconds 10
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
from gradio_client import Client
from PIL import Image

from benchmarks.results import command, git_head, machine, publish
from benchmarks.speed.app_latency import add_app_arguments, api_engines, launch, stop
from moodgen.engines import engine_class

TITLE = "Concurrent load (benchmarks/speed/load.py)"
AUTO_KEY = "auto (drawn for the mood)"
SERVER_COMPLAINTS = ("Too little data for declared Content-Length", "Traceback")


def wav_problem(path: str, expected_frames: int | None) -> str | None:
    """None when the WAV decodes whole (and to `expected_frames` when given), else what is wrong."""
    try:
        info = sf.info(path)
        data, _ = sf.read(path, dtype="int16")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        return f"{Path(path).name}: does not decode ({exc})"
    if len(data) != info.frames:
        return f"{Path(path).name}: header declares {info.frames} frames, {len(data)} decode"
    if expected_frames is not None and info.frames != expected_frames:
        return f"{Path(path).name}: {info.frames} frames, expected {expected_frames}"
    return None


def file_problems(result: tuple, seconds: float) -> list[str]:
    """What is incomplete among one /generate result's files (empty when all are whole)."""
    _, gen_png, real_png, gen_wav, real_wav, downloads, params, _ = result
    expected = round(seconds * params["sample_rate"])
    problems = [wav_problem(gen_wav, expected), wav_problem(real_wav, None) if real_wav else None]
    for png in (gen_png, real_png):
        if png:
            try:
                with Image.open(png) as im:
                    im.load()
            except OSError as exc:
                problems.append(f"{Path(png).name}: does not decode ({exc})")
    for path in downloads:
        suffix = Path(path).suffix
        try:
            if suffix == ".wav":
                problems.append(wav_problem(path, expected))
            elif suffix == ".json":
                assert json.loads(Path(path).read_text())["seed"] == params["seed"], "another request's JSON"
            elif suffix == ".mid":
                pretty_midi.PrettyMIDI(path)
        except (ValueError, KeyError, OSError, EOFError, AssertionError) as exc:
            problems.append(f"{Path(path).name}: {type(exc).__name__}: {exc}")
    if len(downloads) != (3 if engine_class(params["engine"]).makes_midi else 2):  # WAV, JSON (+ MIDI)
        problems.append(f"{len(downloads)} download files for engine {params['engine']}")
    return [p for p in problems if p]


class Outcome:
    """Latencies, failures and incomplete files of one phase, collected from many threads."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.incomplete: list[str] = []
        self.audio: list[bytes] = []
        self.lock = threading.Lock()

    def call(self, client: Client, args: tuple) -> None:
        t0 = time.perf_counter()
        try:
            result = client.predict(*args, api_name="/generate")
        except Exception as exc:  # noqa: BLE001 - any failure of a request is what this benchmark counts
            with self.lock:
                self.failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
            return
        elapsed = time.perf_counter() - t0
        problems = file_problems(result, args[2])
        with self.lock:
            self.latencies.append(elapsed)
            self.incomplete.extend(problems)
            if not problems:
                self.audio.append(sf.read(result[3], dtype="int16")[0].tobytes())

    def row(self, name: str, total: int, wall: float) -> str:
        lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
        return (f"| {name} | {total} | {total - len(self.failures)} | {len(self.failures)} | "
                f"{len(self.incomplete)} | {np.percentile(lat, 50):.2f} | {np.percentile(lat, 95):.2f} | {wall:.1f} |")

    def examples(self) -> list[str]:
        """The most frequent failures and incomplete files, a few of each."""
        return [f"  - {n} x `{text}`" for problems in (self.failures, self.incomplete)
                for text, n in Counter(problems).most_common(3)]


def new_client(url: str, timeout: float) -> Client:
    # each client downloads into its own folder: a shared one would let clients overwrite each other's files
    return Client(url, verbose=False, ssl_verify=False, download_files=tempfile.mkdtemp(prefix="moodgen-load-"),
                  httpx_kwargs={"timeout": timeout}, analytics_enabled=False)


def distinct_users(url: str, engines: list[str], clients: int, requests: int, seconds: float,
                   timeout: float) -> tuple[Outcome, float]:
    """`clients` users at once, each sending `requests` distinct requests one after another."""
    outcome = Outcome()

    def user(k: int) -> None:
        client = new_client(url, timeout)
        for j in range(requests):
            v, a = np.cos(2.4 * (k * requests + j)) * 0.9, np.sin(1.7 * (k * requests + j)) * 0.9
            outcome.call(client, (round(v, 2), round(a, 2), seconds, 100 * k + j, False, engines[k % len(engines)],
                                  16, 2.0, "mood", AUTO_KEY))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(user, range(clients)))
    return outcome, time.perf_counter() - t0


def identical_burst(url: str, engine: str, n: int, seconds: float, timeout: float) -> tuple[Outcome, float]:
    """`n` clients sending the same request at the same moment."""
    outcome = Outcome()
    clients = [new_client(url, timeout) for _ in range(n)]
    start = threading.Barrier(n)

    def user(client: Client) -> None:
        start.wait()
        outcome.call(client, (0.3, -0.4, seconds, 7, False, engine, 16, 2.0, "mood", AUTO_KEY))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(user, clients))
    return outcome, time.perf_counter() - t0


def flood(url: str, engine: str, n: int, seconds: float, timeout: float) -> dict[str, float]:
    """A lone journey's latency; then one client posting `n` journeys at once and, while they run, another client
    asking for one clip: its latency, and how many of the flood were admitted and refused."""
    path = f"0:-0.6,-0.6 {max(10.0, seconds):g}:0.6,0.6"
    journey = (path, 0, False, engine, 16, 2.0, "mood", AUTO_KEY)
    t0 = time.perf_counter()
    new_client(url, timeout).predict(*journey, api_name="/journey")
    lone = time.perf_counter() - t0
    flooder = new_client(url, timeout)
    jobs = [flooder.submit(path, 1000 + k, *journey[2:], api_name="/journey") for k in range(n)]
    time.sleep(1.0)  # the flood has joined the queue
    t0 = time.perf_counter()
    new_client(url, timeout).predict(0.1, 0.2, seconds, 4242, False, engine, 16, 2.0, "mood", AUTO_KEY,
                                     api_name="/generate")
    other = time.perf_counter() - t0
    admitted = 0
    for job in jobs:
        try:
            job.result()
            admitted += 1
        except Exception:  # noqa: BLE001, PERF203 - refused when it joined the queue (HTTP 400 "busy: ...")
            pass
    return {"lone": lone, "other": other, "admitted": admitted, "refused": n - admitted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--identical", type=int, default=24)
    ap.add_argument("--flood", type=int, default=20, help="journeys one client posts at once (0: no flood phase)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take")
    add_app_arguments(ap)
    args = ap.parse_args()

    log = Path(tempfile.mkdtemp(prefix="moodgen-load-")) / "app.log"
    proc, url, *_ = launch(args.checkpoints, args.threads, args.timeout, log=log)
    try:
        engines = api_engines(Client(url, verbose=False, analytics_enabled=False))
        distinct, distinct_wall = distinct_users(url, engines, args.clients, args.requests, args.seconds,
                                                 args.timeout)
        same, same_wall = identical_burst(url, engines[0], args.identical, args.seconds, args.timeout)
        flooded = flood(url, engines[0], args.flood, args.seconds, args.timeout) if args.flood else None
    finally:
        stop(proc)
    server_log = log.read_text()
    complaints = {c: server_log.count(c) for c in SERVER_COMPLAINTS}
    same_audio = len(set(same.audio)) <= 1
    failed = any(o.failures or o.incomplete for o in (distinct, same)) or not same_audio

    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. App at git {git_head()}, `python app.py` on 127.0.0.1 "
        f"(default --concurrency, OMP_NUM_THREADS={args.threads}), {args.seconds:g} s clips, each client its own "
        f"`gradio_client.Client` and download folder. 5-minute load average at the end: {os.getloadavg()[1]:.1f} "
        "(other jobs share the machine: latencies are upper bounds).",
        "",
        f"**{'FAILED' if failed else 'passed'}**: every request must succeed and every file be complete.",
        "",
        "| phase | requests | succeeded | failed | incomplete files | p50 (s) | p95 (s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
        distinct.row(f"{args.clients} clients x {args.requests} distinct ({', '.join(engines)})",
                     args.clients * args.requests, distinct_wall),
        same.row(f"{args.identical} identical at once ({engines[0]})", args.identical, same_wall),
        "",
        f"Identical requests got identical audio: {'yes' if same_audio else 'no'}. Server log: "
        + ", ".join(f'"{c}" x {n}' for c, n in complaints.items()) + ".",
        *(["", f"Flood ({engines[0]}): one client posted {args.flood} journeys of {max(10.0, args.seconds):g} s at "
           f"once; {flooded['admitted']} were admitted, {flooded['refused']} refused as they joined the queue. "
           f"Another client's {args.seconds:g} s clip, asked for meanwhile, took {flooded['other']:.1f} s; a lone "
           f"journey took {flooded['lone']:.1f} s."] if flooded else []),
        *(["", "Failures and incomplete files, most frequent first:", *distinct.examples(), *same.examples()]
          if failed else []),
    ])
    publish(TITLE, body, args.label, not args.no_write)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
