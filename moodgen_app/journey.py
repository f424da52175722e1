"""Journeys: a path drawn on the pad becomes waypoints spread over the duration, or waypoints are typed in; either
makes one clip whose mood follows them."""
from __future__ import annotations

import gradio as gr

from moodgen_app.page import static_text
from moodgen_app.results import read_journey
from moodgen_app.wiring import Wiring, checked, checked_each

MODE_TO_PAD_JS = static_text("mode_to_pad.js")
PATH_TO_WAYPOINTS_JS = static_text("path_to_waypoints.js")


def wire_journey(w: Wiring) -> None:
    page, pipeline, results = w.page, w.pipeline, w.results

    def make_journey(path, seed, randomize, engine, steps, guidance, nearest_by, key, instrument=None,
                     soundfont=None, bpm=None, stems=False,
                     progress=gr.Progress()):  # noqa: B008 (Gradio's way to report progress)
        request = checked(read_journey, pipeline, path, randomize, nearest_by, seed=seed, engine=engine,
                          steps=steps, guidance=guidance, key=key, instrument=instrument, soundfont=soundfont,
                          bpm=bpm, stems=stems)
        yield from checked_each(results.stream(request, progress))  # the audio first, then the rest

    inputs = [page.journey, *page.settings()]
    page.pad_mode.change(None, [page.pad_mode, page.pad], page.pad, js=MODE_TO_PAD_JS, show_progress="hidden",
                         queue=False)
    drawn = page.pad.journey(None, [page.pad, page.seconds], page.journey, js=PATH_TO_WAYPOINTS_JS,
                             show_progress="hidden", queue=False)
    w.generation(drawn.then, make_journey, inputs, api_visibility="private")
    w.generation(page.journey.submit, make_journey, inputs, api_name="journey")
