"""Live latency: from a change of mood to the first sample of the changed music reaching the output, and stalls.

OSC: `python -m moodgen live` in a child process, steered by a python-osc client; each change is timed when the
process received it, and heard when the first chunk made for it was due at the output (with no sound card the
process paces the recording in real time, as it would feed one; a chunk ready late plays late, a stall). Both
from the recording's JSON (`live`: changes, chunk due times, stalls), on the process' clock.
Browser: the app in this process, Debian's Chromium (as the browser tests run it); Shift+Arrow on the pad moves the
mood by 0.25 (a key press is one move; a drag sends the same message). A change is timed at its key press on the
page's clock, and heard when the page's player reaches the start of the first chunk made for it (the player's
position sampled every 5 ms); a stall is 0.1 s or more in which the position stands still while playing.

    python -m benchmarks.speed.live_latency --osc --changes 24
    python -m benchmarks.speed.live_latency --browser --seconds 60 --runs 3 --viewport desktop phone
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from benchmarks.results import RESULTS, machine, update_section

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Live latency (benchmarks/speed/live_latency.py)"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
STALL_S = 0.1


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def heard_chunks(moods: list[tuple[float, float]], changes: list[tuple[float, float]]) -> list[int | None]:
    """For each change (in order), the index of the first chunk after the previous change's that plays it."""
    out, k = [], 0
    for mood in changes:
        found = next((i for i in range(k, len(moods)) if np.allclose(moods[i], mood, atol=1e-5)), None)
        out.append(found)
        k = found if found is not None else k
    return out


def osc_run(changes: int, checkpoints: Path | None, seed: int) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "live.wav"
        cmd = [sys.executable, "-m", "moodgen", "live", "--osc", "127.0.0.1:0", "--out", str(out), "--seconds", "600"]
        cmd += ["--checkpoint", str(checkpoints)] if checkpoints else []
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = proc.stdout.readline()
        if not ready.startswith("live: OSC on"):
            raise SystemExit(f"live did not start: {ready}{proc.stderr.read()}")
        client = SimpleUDPClient("127.0.0.1", int(ready.split(";")[0].rsplit(":", 1)[1]))
        time.sleep(1.0)
        for _ in range(changes):
            client.send_message("/moodgen/mood", [round(rng.uniform(-1, 1), 2), round(rng.uniform(-1, 1), 2)])
            time.sleep(rng.uniform(1.0, 2.0))  # not in step with the chunks
        client.send_message("/moodgen/stop", [])
        proc.communicate(timeout=900)  # it saves (and judges) the recording first
        record = json.loads(out.with_suffix(".json").read_text())
    live, moods = record["live"], [tuple(m) for m in record["stream"]["moods"]]
    chunks = heard_chunks(moods, [tuple(c[1:]) for c in live["changes"]])
    latencies = [live["due"][k] - c[0] for c, k in zip(live["changes"], chunks) if k is not None]
    return {"latencies": latencies, "stalls": len(live["stalls"]), "seconds": record["seconds"],
            "missed": chunks.count(None)}


# The page's instruments: key presses on the pad, and the live player's position, on the page's clock.
INSTRUMENT_JS = """
window.__moves = []; window.__pos = [];
window.addEventListener('keydown', (e) => { if (e.key.startsWith('Arrow')) window.__moves.push(performance.now()); },
                        true);
setInterval(() => { const p = window.moodgenLivePosition ? window.moodgenLivePosition() : null;
                    if (p !== null && p !== undefined) window.__pos.push([performance.now(), p]); }, 5);
"""
# Where the live player is in the recording (seconds), or null before it plays: one per transport.
POSITION_JS = {
    "gradio": """window.moodgenLivePosition = () => { const a = document.querySelector('#live-audio audio');
                   return a && !a.paused && a.currentTime > 0 ? a.currentTime : null; };""",
    "socket": "",  # static/live.js defines window.moodgenLivePosition itself
}


def audible_at(pos: np.ndarray, second: float) -> float | None:
    """Page time when the player's position first reaches `second` of the recording (interpolated)."""
    after = np.flatnonzero(pos[:, 1] >= second)
    if not after.size:
        return None
    i = after[0]
    if i == 0:
        return float(pos[0, 0])
    (t0, p0), (t1, p1) = pos[i - 1], pos[i]
    return float(t0 + (t1 - t0) * (second - p0) / (p1 - p0)) if p1 > p0 else float(t1)


def stalls_in(pos: np.ndarray) -> int:
    """Runs of STALL_S or more where the position stands still."""
    stalls, still_since = 0, None
    for (t0, p0), (_, p1) in zip(pos[:-1], pos[1:]):
        if p1 > p0:
            if still_since is not None and t0 - still_since >= STALL_S * 1000:
                stalls += 1
            still_since = None
        elif still_since is None:
            still_since = t0
    return stalls


def browser_run(seconds: float, viewport: str, transport: str, checkpoints: Path | None, seed: int) -> dict:
    """One live session of `seconds` in Chromium against the app served from this process."""
    from playwright.sync_api import sync_playwright

    from moodgen.pipeline import MoodPipeline
    from moodgen_app import server as app

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    rng = random.Random(seed)
    pipeline = MoodPipeline.from_checkpoint(checkpoints)
    streams = []
    stream = pipeline.stream
    pipeline.stream = lambda *a, **k: streams.append(stream(*a, **k)) or streams[-1]  # what the app plays
    with tempfile.TemporaryDirectory() as tmp:
        demo = app.build_demo(pipeline, out_dir=tmp, make_examples=False)
        port = int(os.environ.get("MOODGEN_BENCH_PORT", 0)) or free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.launch_options(demo))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORTS[viewport])
                page.set_default_timeout(300_000)  # a busy machine
                page.add_init_script(INSTRUMENT_JS + POSITION_JS[transport])
                page.on("pageerror", lambda exc: print(f"page error: {exc}", file=sys.stderr))
                page.on("console", lambda m: m.type == "error" and print(f"console: {m.text}", file=sys.stderr))
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("#mood-pad [data-ready=true] svg.pad").wait_for(timeout=120_000)
                # the first screen's example is made as the page loads: start once it is shown
                page.wait_for_function("document.querySelector('#summary')?.innerText.includes('aimed at')",
                                       timeout=300_000)
                page.evaluate("document.querySelector('#live-play').click()")
                page.wait_for_function("window.__pos.length > 0", timeout=30_000)
                pad = page.locator("#mood-pad svg.pad")
                pad.focus()
                mood, moves, start = [0.7, 0.7], [], time.monotonic()  # the first screen's mood (happy)
                page.wait_for_timeout(1500)
                while time.monotonic() - start < seconds - 2:
                    axis = rng.randrange(2)
                    step = 0.25 if mood[axis] - 0.25 < -1 or (mood[axis] + 0.25 <= 1 and rng.random() < 0.5) else -0.25
                    mood[axis] = round(mood[axis] + step, 2)
                    page.keyboard.press(("Shift+ArrowRight" if step > 0 else "Shift+ArrowLeft") if axis == 0 else
                                        ("Shift+ArrowUp" if step > 0 else "Shift+ArrowDown"))
                    moves.append(tuple(mood))
                    page.wait_for_timeout(rng.uniform(1000, 2000))
                pressed = page.evaluate("window.__moves")
                pos = np.array(page.evaluate("window.__pos"))
                page.evaluate("document.querySelector('#live-play').click()")  # Stop
                page.wait_for_timeout(2000)
                browser.close()
        finally:
            demo.close()
    played = streams[-1]
    starts = np.cumsum([0] + [len(a) for a in played.audio[:-1]]) / played.sample_rate
    chunks = heard_chunks([tuple(m) for m in played.moods], moves)
    latencies = []
    for t, k in zip(pressed, chunks):
        heard = None if k is None else audible_at(pos, starts[k])
        if heard is not None:
            latencies.append((heard - t) / 1000)
    playing_s = (pos[-1, 0] - pos[0, 0]) / 1000 if len(pos) else 0.0
    if os.environ.get("MOODGEN_BENCH_DUMP"):  # the raw timings, to look into one run
        Path(os.environ["MOODGEN_BENCH_DUMP"]).write_text(json.dumps(
            {"pressed": pressed, "moves": moves, "pos": pos.tolist(), "starts": starts.tolist(),
             "moods": [list(m) for m in played.moods], "chunks": chunks}))
    return {"latencies": latencies, "stalls": stalls_in(pos), "seconds": playing_s,
            "missed": len(moves) - len(latencies)}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row(name: str, runs: list[dict], settings: str) -> str:
    lat = [x for r in runs for x in r["latencies"]]
    minutes = sum(r["seconds"] for r in runs) / 60
    stalls = sum(r["stalls"] for r in runs)
    return (f"| {name} | {settings} | {len(runs)} | {len(lat)} | {statistics.median(lat):.3f} | "
            f"{percentile(lat, 95):.3f} | {max(lat):.3f} | "
            f"{stalls} in {minutes:.1f} min ({stalls / minutes:.2f}/min) | "
            f"{sum(r['missed'] for r in runs)} | {machine().rsplit(', ', 1)[1]} | {{load}} |")


HEAD = ("| path | chunk / lead s | runs | changes | median s | p95 s | max s | stalls | changes not heard | date | "
        "load before → after |\n|---|---|---|---|---|---|---|---|---|---|---|")


def merged(rows: list[str]) -> str:
    """The section's table with `rows` in place of those of the same path (each row keeps its own date and load)."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    old = text.split(f"## {TITLE}\n", 1)[1].split("\n## ", 1)[0] if f"## {TITLE}\n" in text else ""
    mine = {r.split("|")[1].strip() for r in rows}
    kept = [line for line in old.splitlines() if line.startswith("| ") and not line.startswith("| path")
            and line.split("|")[1].strip() not in mine]
    return "\n".join([HEAD, *sorted(kept + rows)])


def describe(table: str) -> str:
    return ("Each row: its own run of `python -m benchmarks.speed.live_latency --osc --runs 3 --changes 24 --write` "
            "or `python -m benchmarks.speed.live_latency --browser --viewport desktop phone --runs 3 --seconds 60 "
            f"--write`, on "
            f"{machine().rsplit(', ', 1)[0]}; other jobs shared the cores: the 1-minute load average is in each row "
            "(2 cores: a load of 30 leaves each job about a fifteenth of a core). Seconds from a change of mood to "
            "the first sample of the music made for it reaching the output (OSC: when the chunk was due at the "
            "output, fed in real time as to a sound card; browser: the page's Web Audio player in Debian's "
            "Chromium, from the key press). A stall: the output ran dry (OSC: a chunk ready more than 10 ms after "
            f"it was due; browser: the player's position still for {STALL_S} s or more). Before, the page played "
            "live mode through Gradio's streamed audio (1 s chunks, 1 s ahead): a move was heard 5.4 s and 12.1 s "
            "later (medians of two runs, 20 s and 30 s, 9 and 11 moves, at a load of 13-18 on the same machine, "
            "this script at commit e501f72 with --transport gradio): the player buffers seconds before it plays, "
            "and the server, pacing on its own clock, runs that far ahead of what is heard.\n\n" + table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--osc", action="store_true")
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--transport", nargs="+", default=["socket"], choices=sorted(POSITION_JS))
    ap.add_argument("--changes", type=int, default=24, help="OSC changes per run")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of one browser run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--viewport", nargs="+", default=["desktop"], choices=sorted(VIEWPORTS))
    ap.add_argument("--checkpoints", type=Path, default=None)
    ap.add_argument("--write", action="store_true", help="write the rows into benchmarks/RESULTS.md")
    args = ap.parse_args()
    from moodgen.live import CHUNK_SECONDS, LEAD_SECONDS

    settings = f"{CHUNK_SECONDS} / {LEAD_SECONDS}"
    rows = []
    if args.osc:
        before = os.getloadavg()[0]
        runs = [osc_run(args.changes, args.checkpoints, seed) for seed in range(args.runs)]
        rows.append(row("OSC (python -m moodgen live)", runs, settings).format(
            load=f"{before:.1f} → {os.getloadavg()[0]:.1f}"))
        print(rows[-1], flush=True)
    if args.browser:
        for transport in args.transport:
            for viewport in args.viewport:
                before = os.getloadavg()[0]
                runs = [browser_run(args.seconds, viewport, transport, args.checkpoints, seed)
                        for seed in range(args.runs)]
                rows.append(row(f"browser, {transport}, {viewport}", runs, settings).format(
                    load=f"{before:.1f} → {os.getloadavg()[0]:.1f}"))
                print(rows[-1], flush=True)
    body = describe(merged(rows))
    print(body)
    if args.write:
        update_section(TITLE, body)


if __name__ == "__main__":
    main()
