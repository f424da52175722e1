"""Shared by every benchmark: the common command-line options (`parser`), and replacing one `## <title>` section of
benchmarks/RESULTS.md, leaving the others alone.

Benchmarks live by purpose: `speed/` (latency, throughput, memory), `studies/` (what a design choice does to the
music: sampler steps, loudness, structure, ...), `checks/` (regression guards such as same_outputs).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
ROOT = Path(__file__).resolve().parents[1]  # the repository
HEADER = ("# Benchmark results\n\nEach section is written by the script it names (`python -m "
          "benchmarks.<purpose>.<name>`); numbers are medians of several runs on the machine stated in the section.\n")


def parser(doc: str | None, checkpoint: bool = False, threads: int | None = None, repeats: int | None = None,
           seconds: float | None = None, seeds: int | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser showing `doc` (a script's __doc__) with --no-write and, where a default is given, the
    options most benchmarks share: --checkpoint, --threads (torch intra-op), --repeats, --seconds, --seeds."""
    ap = argparse.ArgumentParser(prog=f"python -m {script_module()}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if checkpoint:
        ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    if threads is not None:
        ap.add_argument("--threads", type=int, default=threads, help="torch intra-op threads")
    if repeats is not None:
        ap.add_argument("--repeats", type=int, default=repeats)
    if seconds is not None:
        ap.add_argument("--seconds", type=float, default=seconds)
    if seeds is not None:
        ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--no-write", action="store_true", help="print the results without updating RESULTS.md")
    return ap


def script_module() -> str:
    """The running benchmark as a module (benchmarks.speed.latency), from the file it was started as."""
    path = Path(sys.argv[0]).resolve()
    try:
        return ".".join(path.relative_to(ROOT).with_suffix("").parts)
    except ValueError:
        return f"benchmarks.{path.stem}"


def machine() -> str:
    """CPU model, cores usable by this process, and the date, for a section's provenance line."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores, {datetime.date.today().isoformat()}"


def command() -> str:
    """How this benchmark was started (run as `python -m benchmarks.<name> ...`), paths inside the repository
    relative to it (the results speak of the project, not of a machine)."""
    return " ".join(["python -m", script_module(), *(a.replace(f"{ROOT}/", "") for a in sys.argv[1:])])


def threads_title(what: str, threads: int, noun: str = "thread") -> str:
    """A section title naming the thread count and this script: "<what>, 2 threads (benchmarks/<name>.py)"."""
    return f"{what}, {threads} {noun}{'s' if threads > 1 else ''} ({script_module().replace('.', '/')}.py)"


def git_head() -> str:
    """The short commit the benchmarked code is at."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def update_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Write `## title` + body into `path`, replacing that section if present (up to the next `## `), else appending."""
    text = path.read_text() if path.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def publish(title: str, body: str, label: str = "", write: bool = True) -> None:
    """Print a section and, unless `write` is False, store it as `## title[, label]` (a label such as "before the
    app fixes" keeps that run's section beside the later ones)."""
    print(body)
    if write:
        update_section(title + (f", {label}" if label else ""), body)
