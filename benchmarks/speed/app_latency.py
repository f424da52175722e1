"""The app as a user meets it: `python app.py` from launch to ready (the server answers) and to its first screen
(the first preset's example, made in the background at start, served), a generation's latency through the API
(fresh seeds), a repeated identical request end to end through `gradio_client` on loopback (answer plus the client
downloading every file), and the server's peak RSS. A fixed CPU task timed in the same run is the yardstick for
the machine's load.

    python -m benchmarks.speed.app_latency --launches 3 --repeats 9 --seconds 10
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
from typing import NamedTuple

import httpx
from gradio_client import Client

from benchmarks import results
from benchmarks.results import command, machine, update_section

ROOT = Path(__file__).resolve().parents[2]
TITLE = "App latency (benchmarks/speed/app_latency.py)"
AUTO_KEY = "auto (drawn for the mood)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yardstick_s() -> float:
    """Seconds for a fixed single-threaded CPU task: about 0.1 s on an idle core of the machine below."""
    t0 = time.perf_counter()
    sum(i * i for i in range(1_500_000))
    return time.perf_counter() - t0


class Launch(NamedTuple):
    proc: subprocess.Popen
    url: str
    ready_s: float  # seconds to the server answering
    first_screen_s: float  # seconds to the first screen's example answering
    cpu_at_ready_s: float  # CPU seconds the app process had used when it first answered (all its threads)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch(checkpoints: Path, threads: int, timeout_s: float, log: Path | None = None) -> Launch:
    """Start `python app.py` (its stderr to `log`, else discarded: a pipe nobody reads would stall a long-running
    server) and wait for it to answer, then for its first screen's example."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": str(threads)}
    env.pop("SPACE_ID", None)
    t0 = time.perf_counter()
    with open(log or os.devnull, "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--checkpoints", str(checkpoints),
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""
            raise SystemExit(f"app.py exited with {proc.returncode}: {tail}")
        if time.perf_counter() - t0 > timeout_s:
            proc.kill()
            raise SystemExit(f"app.py not ready after {timeout_s:.0f} s")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    ready, cpu_at_ready = time.perf_counter() - t0, cpu_seconds(proc.pid)
    client = Client(url, verbose=False, httpx_kwargs={"timeout": timeout_s}, analytics_enabled=False)
    client.predict(0.7, 0.7, 10.0, 0, False, first_engine(client), default_steps(client), default_guidance(client),
                   "mood", AUTO_KEY, api_name="/generate")
    return Launch(proc, url, ready, time.perf_counter() - t0, cpu_at_ready)


def api_parameter(client: Client, name: str) -> dict:
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]
    return next(p for p in params if p["parameter_name"] == name)


def first_engine(client: Client) -> str:
    return api_parameter(client, "engine")["parameter_default"]


def default_steps(client: Client) -> int:
    return api_parameter(client, "steps")["parameter_default"]


def default_guidance(client: Client) -> float:
    return api_parameter(client, "guidance")["parameter_default"]


def memory_mb(pid: int, field: str) -> float:
    """A memory line of /proc/<pid>/status in MB: "VmRSS" (resident now) or "VmHWM" (peak resident so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmHWM")


def add_app_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a benchmark that serves the app: which checkpoints, its threads, and where results go."""
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the app process")
    ap.add_argument("--label", default="", help="appended to the section title, e.g. 'before the app fixes'")
    ap.add_argument("--no-write", action="store_true")


def api_engines(client: Client) -> list[str]:
    """The engine names the app's /generate endpoint accepts, in menu order."""
    return api_parameter(client, "engine")["type"]["enum"]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def timed_generate(client: Client, engine: str, seconds: float, seed: int, steps: int) -> float:
    t0 = time.perf_counter()
    client.predict(0.7, 0.7, seconds, seed, False, engine, steps, 2.0, "mood", AUTO_KEY, api_name="/generate")
    return time.perf_counter() - t0


def timed_heard(client: Client, engine: str, seconds: float, seed: int, steps: int) -> tuple[float, float]:
    """Seconds until the clip's audio is on the client's disk (the first update of a new clip carries it), and
    until the whole result is."""
    t0 = time.perf_counter()
    job = client.submit(0.7, 0.7, seconds, seed, False, engine, steps, 2.0, "mood", AUTO_KEY,
                        api_name="/generate_stream")
    while not job.outputs() and not job.done():
        time.sleep(0.001)
    heard = time.perf_counter() - t0
    job.result()
    audio = Path(job.outputs()[0][3])  # the Result's gen_audio
    if not audio.is_file():
        raise RuntimeError(f"the first update's audio {audio} was not downloaded")
    return heard, time.perf_counter() - t0


def main() -> None:
    ap = results.parser(__doc__, repeats=9, seconds=10.0)
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the app process")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    yard, load = [yardstick_s()], [os.getloadavg()[0]]
    launches = [launch(args.checkpoints, args.threads, args.timeout)]
    for _ in range(args.launches - 1):  # every launch but the last is stopped at once
        stop(launches[-1].proc)
        launches.append(launch(args.checkpoints, args.threads, args.timeout))
    proc, url = launches[-1].proc, launches[-1].url
    try:
        # plain HTTP on loopback: no certificate to verify (by default the client builds a TLS context for every
        # call and every downloaded file, which costs more than the app's answer)
        options = dict(verbose=False, httpx_kwargs={"timeout": args.timeout}, analytics_enabled=False)
        client = Client(url, ssl_verify=False, **options)
        clients = {"end to end": client, "end to end, default client": Client(url, **options),
                   "answer only": Client(url, ssl_verify=False, download_files=False, **options)}
        steps = default_steps(client)
        rows = []
        for engine in api_parameter(client, "engine")["type"]["enum"]:
            heard, fresh = zip(*(timed_heard(client, engine, args.seconds, 1000 + i, steps)
                                 for i in range(args.repeats)))
            hits = [[timed_generate(c, engine, args.seconds, 1000, steps) for _ in range(args.repeats)]
                    for c in clients.values()]
            rows.append(f"| {engine} | {statistics.median(heard):.2f} | {min(heard):.2f} | "
                        f"{statistics.median(fresh):.2f} | {min(fresh):.2f} | "
                        + " | ".join(f"{1000 * statistics.median(h):.0f} | {1000 * min(h):.0f}" for h in hits) + " |")
        peak = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    yard.append(yardstick_s())
    load.append(os.getloadavg()[0])

    def spread(values: list[float]) -> str:
        return f"median {statistics.median(values):.1f} s, min {min(values):.1f} s"

    body = "\n".join([
        f"Machine: {machine()}. Command: `{command()}`. App process with OMP_NUM_THREADS={args.threads}, checkpoint "
        f"`{args.checkpoints.name}/`, {args.seconds:g} s clips, V/A (0.7, 0.7), through `gradio_client` on "
        f"loopback. Load: 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end, on "
        f"{os.cpu_count()} cores; the yardstick (a fixed single-threaded CPU task, about 0.1 s on an idle core) took "
        f"{yard[0]:.2f} s before and {yard[1]:.2f} s after: the larger it is, the more other jobs slowed every wall "
        "time here (medians are then upper bounds, minima nearer an idle machine; CPU seconds depend little on load).",
        "",
        f"- Launch to ready (`python app.py` until the server answers: imports, model load, server start; the "
        f"examples are made in the background once it answers), {len(launches)} launches, warm file cache: "
        f"{spread([x.ready_s for x in launches])}; the app process had used "
        f"{spread([x.cpu_at_ready_s for x in launches]).replace(' s', ' CPU s')} by then.",
        f"- Launch to the first screen's example served (the first preset at the default settings, made in the "
        f"background): {spread([x.first_screen_s for x in launches])}.",
        f"- Peak RSS of the app process after the runs below: {peak:.0f} MB.",
        "",
        f"Median and minimum of {args.repeats} API calls each. A generation is a fresh seed each time through "
        "`/generate_stream`: *heard* when its first update (the clip's audio alone) has arrived with the WAV "
        "downloaded, *whole* when every file has. A repeated request (through `/generate`, which answers once) "
        "is one request again: the app answers with the paths of the files it wrote the first time "
        "(nothing re-encoded). *End to end* includes `gradio_client` downloading every output file (two PNGs, the "
        "two players' WAVs, the downloads: WAV, JSON, MIDI) with `Client(url, ssl_verify=False)`, right for plain "
        "HTTP on loopback; the *default client* builds a TLS context for each call and each file although none is "
        "used; *answer only* stops at the answer (`download_files=False`).",
        "",
        "| engine | fresh clip heard, median (s) | min (s) | whole result, median (s) | min (s) "
        "| repeated request, end to end, median (ms) | min (ms) "
        "| the same, default client, median (ms) | min (ms) | repeated request, answer only, median (ms) | min (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        update_section(TITLE, body)


if __name__ == "__main__":
    main()
