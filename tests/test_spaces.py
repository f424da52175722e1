"""Hugging Face Spaces: the app on ZeroGPU (its CUDA work under `spaces.GPU`, run in a forked worker) and as a Space
starts it (requirements.txt in a fresh venv, SPACE_ID set, serving on 0.0.0.0)."""
from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from moodgen.pipeline import MoodPipeline
from moodgen_app import zerogpu
from tests.app_server import free_port

ROOT = Path(__file__).resolve().parents[1]
FORK = multiprocessing.get_context("fork")


def in_a_forked_worker(fn):
    """What `spaces.GPU` makes of `fn` on ZeroGPU: each call runs in a process forked from this one, on a new thread
    there, and the result comes back pickled. (In the forking thread's copy, torch's first parallel region would
    wait forever for OpenMP threads that were not forked with it.)"""
    def call(*args, **kwargs):
        receive, send = FORK.Pipe(duplex=False)
        worker = FORK.Process(target=lambda: on_a_new_thread(lambda: send.send(fn(*args, **kwargs))))
        worker.start()
        send.close()  # the worker's copy stays open: a worker that dies unanswered ends the pipe
        assert receive.poll(120), "the forked worker gave no answer in 120 s"
        result = receive.recv()
        worker.join()
        return result
    call.forked = True
    return call


def on_a_new_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def test_off_zerogpu_the_app_serves_the_pipeline_as_it_is(pipe, monkeypatch):
    adapted = zerogpu.adapt(pipe)
    if zerogpu.spaces is not None:  # installed (requirements.txt): spaces.GPU gives the function back off ZeroGPU
        assert adapted.generate == pipe.generate and adapted.engines == pipe.engines
    monkeypatch.setattr(zerogpu, "spaces", None)
    assert zerogpu.adapt(pipe) is pipe


def test_on_zerogpu_clips_journeys_and_extensions_run_in_a_forked_worker(pipe, monkeypatch):
    here = pipe.generate(0.5, 0.5, seconds=2.0, seed=3)  # the pipeline's worker thread is running before the fork
    trip_here = pipe.journey([(0, -0.5, -0.5), (10, 0.5, 0.5)], seed=3)
    pipe._clips.clear()
    torch.randn(1000, 1000).exp().sum()  # an OpenMP team in this thread too, as a server's main thread may have
    zero_gpu = SimpleNamespace(GPU=in_a_forked_worker, disable_gradio_auto_wrap=lambda: None)
    monkeypatch.setattr(zerogpu, "spaces", zero_gpu)
    gpu = zerogpu.adapt(pipe)
    assert all(getattr(gpu, name).forked for name in zerogpu.GPU_METHODS)
    there = gpu.generate(0.5, 0.5, seconds=2.0, seed=3)
    np.testing.assert_array_equal(there.audio, here.audio)
    assert there.params() == here.params() and there.midi == here.midi
    trip = gpu.journey([(0, -0.5, -0.5), (10, 0.5, 0.5)], seed=3)
    np.testing.assert_array_equal(trip.audio, trip_here.audio)
    longer = gpu.extend(trip, 2.0, valence=0.2)
    np.testing.assert_array_equal(longer.audio[:len(trip.audio)], trip.audio)
    assert gpu.engines == pipe.engines and gpu.soundfonts == pipe.soundfonts  # the rest is the pipeline's own


def test_a_forked_child_does_the_pipelines_work_itself(pipe):
    pipe.generate(-0.5, 0.5, seconds=1.0, seed=8)  # the pool has a thread, which a forked child lacks
    pipe._clips.clear()
    child = in_a_forked_worker(lambda: (os.getpid(), pipe.run(os.getpid)))
    pid, worked_in = child()
    assert pid != os.getpid() and worked_in == pid


SPACE_VENV = os.environ.get("MOODGEN_SPACE_VENV")


@pytest.mark.skipif(not SPACE_VENV, reason="needs a venv installed as a Space installs it (several minutes): "
                    "python3.11 -m venv V && V/bin/pip install -r requirements.txt && V/bin/pip install --no-deps "
                    "-r requirements-nodeps.txt, then MOODGEN_SPACE_VENV=V (.ci/run does this)")
def test_the_app_starts_as_a_space_starts_it(tmp_path):
    python = Path(SPACE_VENV).resolve() / "bin" / "python"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOODGEN_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"SPACE_ID": "moodgen/test", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
            "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([str(python), "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 180, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:  # Spaces serve on 0.0.0.0: it answers on this machine's own address, not only on loopback
                with urllib.request.urlopen(f"http://{own_address()}:{port}/", timeout=5) as answer:
                    page = answer.status, answer.read().decode()
            except OSError:
                time.sleep(1)
        assert page is not None, f"no answer on port {port}; the app said:\n{stop(server)}"
        assert page[0] == 200 and "moodgen" in page[1]
    finally:
        said = stop(server)
    assert f"0.0.0.0:{port}" in said  # as SPACE_ID asks


def own_address() -> str:
    """An address of this machine other than loopback, where one exists."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def stop(server: subprocess.Popen) -> str:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return server.stdout.read() if server.stdout else ""
