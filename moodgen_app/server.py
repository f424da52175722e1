"""moodgen's Gradio app: pick a mood on the valence/arousal pad, hear a clip, compare it with the nearest real one.

This module builds the app from its parts and serves it. Widgets and callbacks only; every model decision lives in
`moodgen.pipeline`. The page's widgets are in `moodgen_app.page`; each feature's wiring in its own module (`point`,
`journey`, `live`; what they share in `wiring`); what a request makes in `moodgen_app.results`, what a result shows
in `moodgen_app.views`, its files in `moodgen_app.files`; the page's scripts and styles in static/. The root's
`app.py` (Hugging Face Spaces' entry point) runs `main`: `python app.py` serves on 127.0.0.1:7860 (0.0.0.0 on
Hugging Face Spaces, where SPACE_ID is set). Options: `python app.py --help`.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from moodgen.atlas import Atlas
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline
from moodgen.render import SOUNDFONT_ENV, find_soundfonts
from moodgen_app.fields import wire_fields
from moodgen_app.files import ResultStore
from moodgen_app.guard import CACHE_SWEEP, Admission, Guard
from moodgen_app.journey import wire_journey
from moodgen_app.live import wire_live
from moodgen_app.page import INTRO, STATIC, build_page
from moodgen_app.point import wire_first_screen, wire_point
from moodgen_app.results import FIRST_PRESET, Results, default_inputs, make_examples_now, read_request
from moodgen_app.wiring import Wiring
from moodgen_app.zerogpu import adapt as adapt_to_zerogpu

MAX_UPLOAD = "1kb"  # the app takes no uploads: Gradio's own cap, under the Guard that refuses them all


def build_demo(pipeline: MoodPipeline, atlas: Atlas | None = None, concurrency_limit: int = 2,
               out_dir: str | Path | None = None, make_examples: bool = True,
               server_up: threading.Event | None = None) -> gr.Blocks:
    """The app around a loaded `MoodPipeline`.

    atlas: where nearest real clips come from (default `pipeline.atlas`; `main` passes a DEAM atlas when a DEAM
    folder is configured). concurrency_limit: generations run at once (the rest wait in the queue). out_dir: where
    output files go (default: a per-process temporary folder, removed at exit). make_examples: start making one
    clip per preset (at the default settings) in the background now, so the first screen plays at once; with
    `server_up`, once it is set and only if the server is running (they would slow its start on a small machine).
    """
    store = ResultStore(out_dir)
    results = Results(pipeline, pipeline.atlas if atlas is None else atlas, store)
    # Files are served from the store's folder as they are (written once, never changed): no copy per request.
    gr.set_static_paths([store.root])
    with gr.Blocks(title="moodgen", fill_width=True, delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        # a client may have one request per model slot and one more waiting: a flood delays others by one request
        wiring = Wiring(build_page(pipeline, results), pipeline, results, concurrency_limit,
                        Admission(demo, concurrency_limit + 1))
        wire_point(wiring)
        wire_journey(wiring)
        demo.moodgen_routes = wire_live(wiring)  # served beside Gradio's own (launch_options)
        wire_fields(wiring)
        wire_first_screen(wiring, demo)
    demo.queue(max_size=64)
    if make_examples:
        start_examples(demo, results, server_up)
    return demo


def start_examples(demo: gr.Blocks, results: Results, server_up: threading.Event | None) -> None:
    """One clip per preset (the first screen's first) in the background, once the server is up."""
    pipeline = results.pipeline
    requests = [read_request(pipeline, **default_inputs(pipeline, name))
                for name in sorted(PRESETS, key=lambda name: name != FIRST_PRESET)]

    def make_examples_when_up() -> None:
        if server_up is None or (server_up.wait() and demo.is_running):
            make_examples_now(results, requests)

    # not a daemon: at exit the interpreter waits for it rather than stopping it inside a torch call
    threading.Thread(target=make_examples_when_up, name="moodgen-examples").start()


def launch_options(demo: gr.Blocks) -> dict[str, Any]:
    """What `demo.launch` needs besides the address: the page's theme, CSS and scripts, no uploads, bounded bodies,
    and the routes of `build_demo`'s features (live mode's WebSocket)."""
    theme = gr.themes.Default(primary_hue="indigo").set(  # AA contrast for white text on buttons, grey hints
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        body_text_color_subdued="*neutral_600", block_info_text_color="*neutral_600")
    scripts = ", ".join(f"({(STATIC / name).read_text().strip()})" for name in ("page.js", "live.js"))
    return dict(theme=theme, css_paths=[STATIC / "app.css"], js=f"() => {{ [{scripts}].forEach((f) => f()); }}",
                max_file_size=MAX_UPLOAD, app_kwargs={"middleware": [Middleware(Guard)],
                                                      "routes": list(demo.moodgen_routes)})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve the moodgen Gradio app.")
    p.add_argument("--checkpoints", default=None,
                   help="checkpoints folder (default: ./checkpoints, else the Hub repo in $MOODGEN_HF_REPO)")
    p.add_argument("--deam-dir", default=os.environ.get("MOODGEN_DEAM_DIR"),
                   help="DEAM folder to draw nearest real clips from (default: $MOODGEN_DEAM_DIR)")
    p.add_argument("--deam-embed", action="store_true",
                   help="decode every DEAM mp3 at start to allow nearest by sound (slow for the full set)")
    p.add_argument("--host", default="0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--concurrency", type=int, default=2, help="requests served at once (the rest wait in the queue)")
    p.add_argument("--workers", type=int, default=1,
                   help="threads doing the model work; 1 is fastest per request on a few cores, more let a long "
                        "journey run beside other requests (MoodPipeline's workers)")
    p.add_argument("--soundfont", default=None,
                   help=f"what plays the notes by default; the page offers the others found (default: "
                        f"${SOUNDFONT_ENV}, else the first found: {', '.join(str(f) for f in find_soundfonts())})")
    args = p.parse_args(argv)
    for name in ("concurrency", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def load_models(args: argparse.Namespace) -> tuple[MoodPipeline, Atlas | None]:
    """The pipeline (local checkpoints, else the Hub repo) and, when a DEAM folder is configured, a DEAM atlas."""
    try:
        pipeline = MoodPipeline.from_checkpoint(args.checkpoints, soundfont=args.soundfont, workers=args.workers)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"moodgen app: cannot load the model: {exc}") from exc
    atlas = None
    if args.deam_dir:
        try:
            atlas = Atlas.from_deam(args.deam_dir, pipeline.mel_params, embed=args.deam_embed)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"moodgen app: cannot read the DEAM folder: {exc}") from exc
    return pipeline, atlas


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pipeline, atlas = load_models(args)
    pipeline = adapt_to_zerogpu(pipeline)  # on ZeroGPU hardware its CUDA work runs under spaces.GPU
    server_up = threading.Event()
    demo = build_demo(pipeline, atlas=atlas, concurrency_limit=args.concurrency, server_up=server_up)
    # SIGTERM ends the server like Ctrl-C, so the output folder is removed on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True, **launch_options(demo))
    finally:
        server_up.set()  # the examples start now, or (the launch failed) end at once
    demo.block_thread()


if __name__ == "__main__":
    main()
