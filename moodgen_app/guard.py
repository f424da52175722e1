"""Fair serving and bounded resources: one client cannot lock the others out, nothing grows without bound.

- Requests per client: a browser session (Gradio's session hash; a `gradio_client.Client` is one) may have at most
  `concurrency + 1` requests queued or running; more are refused when they join the queue, before they take a
  place in it. With every model slot busy, a newcomer then waits behind at most one request of each slot's client,
  so a client flooding the queue delays another by at most one request's time.
- The app's own limits (smaller than the library's `Limits`): `APP_LIMITS` (journey length and waypoints), the
  journey text, request bodies, live streams (`LIVE_IDLE_SECONDS`, `LIVE_MAX_SECONDS`).
- Uploads: the app takes none; the route Gradio opens for them answers 403 to everything.

The per-session count is of the session's events in Gradio's queue or running, read from private attributes of
the pinned Gradio version
(tests/test_app_guard.py fails if they move), plus the joins admitted in the last `ADMIT_WINDOW_S`: Gradio records
an event a moment after its check, so a burst of joins could otherwise all pass it.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict, deque

import gradio as gr
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from moodgen.config import Limits

APP_LIMITS = dataclasses.replace(Limits(), max_journey_seconds=120.0, max_waypoints=32)
MAX_JOURNEY_CHARS = 2000  # the journey text, checked before it is split: 32 waypoints take under 700
MAX_BODY_BYTES = 2 << 20  # a request's body: the app's own are under 3 KB; a 1 MB value still gets its field's line
LIVE_IDLE_SECONDS = 120.0  # a live stream whose dot has not moved for this long ends (and is kept as a clip)
LIVE_MAX_SECONDS = 300.0  # and one that has played this long
LIVE_BACKLOG = 8  # messages its reader has not taken: more, and the reader has stopped reading
ADMIT_WINDOW_S = 0.25  # longer than Gradio takes to queue an admitted join, shorter than three requests made
CACHE_SWEEP = (60, 600)  # Gradio's cache (live chunks, files it copies): every 60 s, files older than 10 min go


class Admission:
    """The queue's doorman: `check(request)` raises gr.Error when the request's session has `max_jobs` requests
    queued or running already."""

    def __init__(self, demo: gr.Blocks, max_jobs: int):
        self.demo, self.max_jobs = demo, max_jobs
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def events(self, session: str) -> int:
        """The session's events waiting in Gradio's queue or running. (Not Gradio's per-session record of pending
        events: events made through the plain HTTP API stay in it after they are delivered, so three such calls
        locked that API out for good.)"""
        queue = self.demo._queue
        waiting = [e for line in list(queue.event_queue_per_concurrency_id.values()) for e in list(line.queue)]
        running = [e for job in list(queue.active_jobs) if job for e in job]
        return sum(e.session_hash == session for e in waiting + running)

    def check(self, request: gr.Request | None) -> None:
        session = getattr(request, "session_hash", None) or ""
        now = time.monotonic()
        with self._lock:
            recent = self._recent[session]
            while recent and recent[0] < now - ADMIT_WINDOW_S:
                recent.popleft()
            # the larger of the two: a join admitted a moment ago is in `recent`, and soon in the queue as well
            if max(self.events(session), len(recent)) >= self.max_jobs:
                raise gr.Error(f"busy: this page has {self.max_jobs} requests waiting or running already; wait for "
                               "one to finish", print_exception=False)
            recent.append(now)
            for key in [k for k, times in self._recent.items() if not times]:
                del self._recent[key]

    def reading(self, session: str) -> bool:
        """Whether the session's reader is still there and keeping up: Gradio holds its message queue (it drops it
        when the reader disconnects) with no more than LIVE_BACKLOG messages waiting."""
        messages = self.demo._queue.pending_messages_per_session.get(session)
        return messages is not None and messages.qsize() <= LIVE_BACKLOG

    def validator(self, n_inputs: int):
        """A Gradio `validator` for an event with `n_inputs` inputs: it runs when the event joins the queue."""
        def admit(request: gr.Request, *inputs):
            self.check(request)
            return [gr.validate(True, "") for _ in range(n_inputs)]
        return admit


class Guard:
    """ASGI middleware: the upload route refuses everything (403), and a request body over MAX_BODY_BYTES is
    refused (413) before the app reads it (a 10.9 MB journey of 500,000 waypoints took 27 s and 1 GB)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"].rstrip("/").endswith("/upload"):
                return await PlainTextResponse("this app takes no uploads", status_code=403)(scope, receive, send)
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
                return await PlainTextResponse(f"a request body may hold {MAX_BODY_BYTES} bytes",
                                               status_code=413)(scope, receive, send)
            received = 0

            async def bounded() -> dict:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:  # a body sent without its length
                    raise ValueError(f"a request body may hold {MAX_BODY_BYTES} bytes")
                return message
            return await self.app(scope, bounded, send)
        await self.app(scope, receive, send)
