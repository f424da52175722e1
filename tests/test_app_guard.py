"""moodgen_app.guard through the app's API on 127.0.0.1: a client flooding the queue cannot lock another out, the
app's own limits hold, nothing is uploaded, live streams end, and Gradio's cache is swept."""
from __future__ import annotations

import time

import httpx
import pytest
from app_server import full_checkpoints, serve
from gradio_client import Client
from gradio_client.exceptions import AppError

from moodgen.config import Limits
from moodgen.pipeline import MoodPipeline
from moodgen_app import guard
from moodgen_app import server as app
from moodgen_app.live import LiveSessions
from moodgen_app.results import AUTO_KEY

CONCURRENCY = 2  # build_demo's default: per client, concurrency + 1 requests may wait or run
FLOOD = 12


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints, tmp_path_factory):
    return full_checkpoints(tiny_checkpoints, tmp_path_factory.mktemp("guard") / "checkpoints")


@pytest.fixture(scope="module")
def url(checkpoints, tmp_path_factory):
    with serve(checkpoints, tmp_path_factory.mktemp("guard-out")) as u:
        yield u


def connect(url: str) -> Client:
    return Client(url, verbose=False, httpx_kwargs={"timeout": 600}, analytics_enabled=False)


def journey_args(path: str, seed: int) -> tuple:
    return (path, seed, False, "notes", 4, 2.0, "mood", AUTO_KEY, "piano")


def test_a_client_flooding_the_queue_delays_another_by_at_most_one_request(url):
    """66 journeys posted at once filled the queue (64): the next user got `Queue is full` for 18-80 minutes."""
    flooder = connect(url)
    jobs = [flooder.submit(*journey_args("0:-0.5,-0.5 30:0.5,0.5", seed), api_name="/journey")
            for seed in range(FLOOD)]
    other = connect(url)
    started = time.monotonic()
    out = other.predict(0.2, 0.2, 5.0, 99, False, "notes", 4, 2.0, "mood", AUTO_KEY, "piano", api_name="/generate")
    waited = time.monotonic() - started
    done_then = [job.done() for job in jobs]
    outcomes = []
    for job in jobs:
        try:
            job.result()
            outcomes.append("served")
        except httpx.HTTPStatusError as exc:  # noqa: PERF203 - refused as it joins the queue: HTTP 400
            assert exc.response.status_code == 400
            assert "busy: this page has 3 requests waiting or running already" in exc.response.text
            outcomes.append("refused")
    assert out[0] == 99 and outcomes.count("served") >= 1
    assert outcomes.count("served") <= CONCURRENCY + 1 and outcomes.count("refused") >= FLOOD - CONCURRENCY - 1
    # the second client was served behind at most the flooder's admitted requests, not behind the whole flood
    served_first = sum(done and o == "served" for done, o in zip(done_then, outcomes))
    assert served_first <= CONCURRENCY + 1
    print(f"\nsecond client served after {waited:.1f} s; the flooder had {served_first} served by then")


def test_the_app_keeps_its_own_limits_below_the_library(url):
    client = connect(url)
    cases = {"0:0,0 130:0.5,0.5": "waypoint 2 seconds must be between 0 and 120",
             " ".join(f"{i}:0,0" for i in range(40)): "and at most 32, got 40",
             "0:0,0 " * 400: "of at most 2000 characters"}
    for path, message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(*journey_args(path, 1), api_name="/journey")
    # the note engine has no sampler steps, but a client sending nonsense for them is told so
    with pytest.raises(AppError, match="steps must be an integer"):
        client.predict(0.2, 0.2, 5.0, 1, False, "notes", "abc", 2.0, "mood", AUTO_KEY, "piano",
                       api_name="/generate")
    assert guard.APP_LIMITS.max_journey_seconds < Limits().max_journey_seconds
    assert guard.APP_LIMITS.max_waypoints < Limits().max_waypoints


def test_nothing_is_uploaded_and_bodies_are_bounded(url):
    """The upload route kept any file up to 1 KB forever: one client wrote 2,138 files a second."""
    with httpx.Client(base_url=url, timeout=60) as http:
        for content in (b"", b"x" * 10, b"\0" * 4096):
            assert http.post("gradio_api/upload", files={"files": ("a.wav", content)}).status_code == 403
        big = http.post("gradio_api/queue/join", content=b"{" + b" " * (guard.MAX_BODY_BYTES + 1) + b"}",
                        headers={"content-type": "application/json"})
        assert big.status_code == 413


def test_gradio_cache_is_swept_on_a_schedule_and_at_exit(checkpoints, tmp_path):
    pipeline = MoodPipeline.from_checkpoint(checkpoints, device="cpu")
    demo = app.build_demo(pipeline, out_dir=tmp_path, make_examples=False)
    assert demo.delete_cache == guard.CACHE_SWEEP
    # what the guard reads of Gradio's queue (private in the pinned version): a change of Gradio fails here
    admission = guard.Admission(demo, 3)
    assert admission.events("nobody") == 0 and not admission.reading("nobody")


@pytest.mark.parametrize("ends", ["idle", "unread", "at its length"])
def test_a_live_stream_ends_when_nobody_steers_or_reads_it(checkpoints, ends):
    """A live stream nobody stopped ran 600 s; two held open unread took both live slots."""
    pipeline = MoodPipeline.from_checkpoint(checkpoints, device="cpu")
    kept = []
    live = LiveSessions(pipeline, lambda key, generation: kept.append(generation) or ("kept",),
                        max_seconds=3.0 if ends == "at its length" else 600.0,
                        reading=lambda session: ends != "unread", idle_seconds=0.0 if ends == "idle" else 600.0)
    chunks = list(live.play("session", (0.5, 0.5), pipeline.settings(seed=1, engine="notes")))
    played = sum(len(audio) for _, audio in chunks) / pipeline.mel_params.sample_rate
    if ends == "at its length":
        assert 3.0 <= played < 4.0
    else:
        assert len(chunks) == 1  # the check after the first chunk ends it
    assert len(kept) == 1 and kept[0].seconds == pytest.approx(len(chunks), abs=0.1)  # what played is kept
