"""The app as a user meets it: `python app.py` from launch to ready (model load + warm-up + server), a generation's
latency through the API (fresh seeds), a cache hit's latency (the same request again), and the server's peak RSS.

    python -m benchmarks.app_latency --launches 3 --repeats 5 --seconds 10
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from gradio_client import Client

from benchmarks.results import command, machine, update_section

ROOT = Path(__file__).resolve().parents[1]
TITLE = "App latency (benchmarks/app_latency.py)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(checkpoints: Path, threads: int, timeout_s: float,
           log: Path | None = None) -> tuple[subprocess.Popen, str, float]:
    """Start `python app.py` (its stderr to `log`, else discarded) and wait until it answers; (process, url,
    seconds from start to ready). A file, not a pipe: a pipe nobody reads would stall a long-running server."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": str(threads)}
    env.pop("SPACE_ID", None)
    t0 = time.perf_counter()
    with open(log or os.devnull, "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--checkpoints", str(checkpoints),
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout_s:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""
            raise SystemExit(f"app.py exited with {proc.returncode}: {tail}")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return proc, url, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"app.py not ready after {timeout_s:.0f} s")


def memory_mb(pid: int, field: str) -> float:
    """A memory line of /proc/<pid>/status in MB: "VmRSS" (resident now) or "VmHWM" (peak resident so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmHWM")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def add_app_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a benchmark that serves the app: which checkpoints, its threads, and where results go."""
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the app process")
    ap.add_argument("--label", default="", help="appended to the section title, e.g. 'before the app fixes'")
    ap.add_argument("--no-write", action="store_true")


def api_engines(client: Client) -> list[str]:
    """The engine names the app's /generate endpoint accepts, in menu order."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]
    return next(p["type"]["enum"] for p in info["parameters"] if p["parameter_name"] == "engine")


def timed_generate(client: Client, engine: str, seconds: float, seed: int) -> float:
    t0 = time.perf_counter()
    client.predict(0.7, 0.7, seconds, seed, False, engine, 16, 2.0, "mood", "auto (drawn for the mood)",
                   api_name="/generate")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the app process")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    ready = []
    for _ in range(args.launches - 1):
        proc, _, s = launch(args.checkpoints, args.threads, args.timeout)
        ready.append(s)
        stop(proc)
    proc, url, s = launch(args.checkpoints, args.threads, args.timeout)
    ready.append(s)
    try:
        client = Client(url, verbose=False, httpx_kwargs={"timeout": args.timeout}, analytics_enabled=False)
        engines = api_engines(client)
        rows = []
        for engine in engines:
            fresh = [timed_generate(client, engine, args.seconds, 1000 + i) for i in range(args.repeats)]
            hits = [timed_generate(client, engine, args.seconds, 1000) for _ in range(args.repeats)]
            rows.append(f"| {engine} | {statistics.median(fresh):.2f} | {statistics.median(hits):.3f} |")
        peak = peak_rss_mb(proc.pid)
        load = os.getloadavg()[1]
    finally:
        stop(proc)

    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. App process with OMP_NUM_THREADS={args.threads}, checkpoint "
        f"`{args.checkpoints.name}/`, {args.seconds:g} s clips, V/A (0.7, 0.7), through `gradio_client` on localhost. "
        f"5-minute load average at the end: {load:.1f} (other jobs share the machine: read these as upper bounds).",
        "",
        f"- Launch to ready (`python app.py` until the server answers; model load + warm-up + server start): "
        f"median {statistics.median(ready):.1f} s over {len(ready)} launches.",
        f"- Peak RSS of the app process after the runs below: {peak:.0f} MB.",
        "",
        f"Seconds per API call, median of {args.repeats}. A generation is a fresh seed each time. A cache hit "
        "repeats one request, so the pipeline answers from its LRU; the remaining time is the app's own work "
        "(spectrogram images, nearest clip, download files) plus Gradio.",
        "",
        "| engine | generation (s) | cache hit (s) |",
        "|---|---|---|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        update_section(TITLE, body)


if __name__ == "__main__":
    main()
