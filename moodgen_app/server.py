"""moodgen's Gradio app: pick a mood on the valence/arousal pad, hear a clip, compare it with the nearest real one.

Widgets and callbacks only; every model decision lives in `moodgen.pipeline`, what a request makes in
`moodgen_app.results`, what a result shows in `moodgen_app.views`, its files in `moodgen_app.files`. The root's
`app.py` (Hugging Face Spaces' entry point) runs `main`: `python app.py` serves on
127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces, where SPACE_ID is set). Options: `python app.py --help`.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from moodgen.atlas import Atlas
from moodgen.config import shown
from moodgen.mood import PRESETS, validate_mood
from moodgen.pipeline import NEAREST_BY, MoodPipeline
from moodgen.render import SOUNDFONT_ENV, find_soundfonts
from moodgen_app.files import ResultStore
from moodgen_app.live import LiveSessions
from moodgen_app.results import (
    AUTO_KEY,
    FIRST_PRESET,
    KEYS,
    Results,
    default_inputs,
    instruments,
    make_examples_now,
    read_journey,
    read_request,
    read_settings,
)
from moodgen_app.zerogpu import adapt as adapt_to_zerogpu

STATIC = Path(__file__).with_name("static")
NEAREST_LABELS = {"mood": "by mood (distance on the pad)", "sound": "by sound (spectral embedding)"}
# the preset buttons laid out like the pad: angry | happy over sad | relaxed
PRESET_ORDER = sorted(PRESETS, key=lambda name: (-PRESETS[name][1], PRESETS[name][0]))
INTRO = ("# moodgen\nPick a mood and hear a short clip made for it. **Valence**: how pleasant (left to "
         "right); **arousal**: how energetic (bottom to top).")
MAX_UPLOAD = "1kb"  # the app takes no uploads: the route Gradio opens for them refuses anything bigger
PHONE_WIDTH = 760  # px; the page's one-column layout (static/app.css) starts here

# Client-side glue (no server round trip). The pad's value: its point plus the last result's marks: aimed (the
# request), heard (the judge) with spread (the judge's typical error per axis), real (the nearest real clip).
SLIDERS_TO_PAD_JS = "(v, a, pad) => ({...pad, valence: v, arousal: a})"
PAD_TO_SLIDERS_JS = "(pad) => [pad.valence, pad.arousal]"
BUSY_JS = "() => 'Generating…'"
IDLE_JS = "() => 'Generate'"
MODE_TO_PAD_JS = "(mode, pad) => ({...pad, mode: mode, path: null})"
# a drawn path [[v, a], ...] -> at most 12 waypoints "t:v,a ..." spaced along it, its length spread over the duration
PATH_TO_WAYPOINTS_JS = """(pad, seconds) => {
  const p = pad.path || [], d = [0];
  for (let i = 1; i < p.length; i++) d.push(d[i - 1] + Math.hypot(p[i][0] - p[i - 1][0], p[i][1] - p[i - 1][1]));
  const total = d[d.length - 1] || 0, n = Math.min(12, p.length), out = [];
  let last = -1;
  for (let k = 0; k < n; k++) {
    const i = Math.max(0, d.findIndex(x => x >= (n > 1 ? total * k / (n - 1) : 0) - 1e-9));
    if (i === last) continue;
    last = i;
    out.push(`${(total ? seconds * d[i] / total : 0).toFixed(2)}:${p[i][0].toFixed(2)},${p[i][1].toFixed(2)}`);
  }
  return out.join(' '); }"""
MARKS = """{...pad, aimed: [params.valence, params.arousal], heard: params.judged,
  curve: params.mood_curve || null, path: null, playhead: null,
  real: params.nearest ? [params.nearest.valence, params.nearest.arousal] : null,
  announce: `Clip ready, aimed at valence ${params.valence.toFixed(2)}, arousal ${params.arousal.toFixed(2)}`}"""
MARKS_JS = f"(params, pad) => [{MARKS}, 'Generate']"
# the same, and on a phone, where the result sits below the pad, the result brought into view
SHOW_RESULT_JS = f"""(params, pad) => {{
  if (window.innerWidth <= {PHONE_WIDTH}) document.querySelector('#result')?.scrollIntoView({{block: 'start'}});
  return [{MARKS}, 'Generate']; }}"""


def wav_player(**options: Any) -> gr.Audio:
    """A gr.Audio that hands out the 16-bit PCM WAV files this app writes as they are. (Where FFmpeg is installed,
    gr.Audio runs ffprobe on every file it returns, to learn whether a browser can play it. A subclass would be
    the usual way, but Gradio writes a .pyi stub beside the module of every component class defined.)"""
    player = gr.Audio(**options)
    probed = player.postprocess
    player.postprocess = lambda value: (FileData(path=str(value), orig_name=Path(value).name)
                                        if isinstance(value, (str, Path)) else probed(value))
    return player


def soundfont_line(pipeline: MoodPipeline) -> str | None:
    """Which soundfont plays the notes when there is no other to choose (else the Soundfont menu says it)."""
    return f"Played with {pipeline.soundfonts[0]}" if len(pipeline.soundfonts) == 1 else None


def checked(read: Any, *args: Any) -> Any:
    """read(*args), its ValueError (one line naming the field) raised as Gradio's error, without a traceback."""
    try:
        return read(*args)
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc


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
    atlas = pipeline.atlas if atlas is None else atlas
    store = ResultStore(out_dir)
    results = Results(pipeline, atlas, store)
    # Files are served from the store's folder as they are (written once, never changed): no copy per request.
    gr.set_static_paths([store.root])
    defaults = default_inputs(pipeline)

    # instrument and soundfont came last and are optional: clients written before them keep working
    def generate(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key,
                 instrument=None, soundfont=None, progress=gr.Progress()):  # noqa: B008 (Gradio's progress)
        return results.outputs(checked(read_request, pipeline, valence, arousal, seconds, seed, randomize, engine,
                                       steps, guidance, nearest_by, key, instrument, soundfont), progress)

    def make_journey(path, seed, randomize, engine, steps, guidance, nearest_by, key, instrument=None,
                     soundfont=None, progress=gr.Progress()):  # noqa: B008 (Gradio's way to report progress)
        return results.outputs(checked(read_journey, pipeline, path, seed, randomize, engine, steps, guidance,
                                       nearest_by, key, instrument, soundfont), progress)

    live = LiveSessions(pipeline, results.recorded, pipeline.limits.max_journey_seconds)

    def play_live(valence, arousal, seed, randomize, engine, steps, guidance, key, instrument=None, soundfont=None,
                  request: gr.Request = None):
        mood = checked(validate_mood, valence, arousal)
        settings = checked(read_settings, pipeline, seed, randomize, engine, steps, guidance, "mood", key,
                           instrument, soundfont)
        del settings["nearest_by"]
        yield from live.play(request.session_hash, mood, **settings)

    def steer_live(valence, arousal, request: gr.Request):
        checked(live.steer, request.session_hash, valence, arousal)

    def stop_live(request: gr.Request):
        outputs = live.stop(request.session_hash)
        if outputs is None:
            raise gr.Error("live: nothing is playing; press Play live first", print_exception=False)
        return outputs

    def engine_defaults(name):
        """The sampler settings an engine was exported with: (steps, guidance); steps stay for engines without."""
        eng = pipeline.engine(name)
        return (gr.skip() if eng.default_steps is None else eng.default_steps), eng.default_guidance

    def engine_instruments(name):
        """The instrument and soundfont menus, usable only for engines that play notes (the others make audio
        directly)."""
        eng = pipeline.engine(name)
        return gr.Dropdown(interactive=bool(eng.instruments)), gr.Dropdown(interactive=bool(eng.soundfonts))

    def apply_preset(name):
        if not isinstance(name, str) or name not in PRESETS:  # checked here: a long name is echoed cut short
            raise gr.Error(f"preset must be one of {', '.join(PRESETS)}, got {shown(name)}", print_exception=False)
        return PRESETS[name]

    trust = results.trust
    with gr.Blocks(title="moodgen", fill_width=True) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Row(elem_id="main"):
            with gr.Column(elem_id="controls"):
                pad = gr.HTML(value={"valence": defaults["valence"], "arousal": defaults["arousal"], "aimed": None,
                                     "heard": None, "real": None, "spread": trust.error if trust else None,
                                     "announce": "", "mode": "point", "path": None, "curve": None,
                                     "playhead": None},
                              html_template=(STATIC / "pad.html").read_text(),
                              css_template=(STATIC / "pad.css").read_text(), js_on_load=(STATIC / "pad.js").read_text(),
                              elem_id="mood-pad")
                with gr.Row(elem_classes="presets"):
                    preset_buttons = [gr.Button(name, size="md", elem_id=f"preset-{name}") for name in PRESET_ORDER]
            with gr.Column(elem_id="modes"):  # below the presets; on a phone after the result
                pad_mode = gr.Radio([("a point: click for a clip", "point"), ("a journey: drag a path", "journey")],
                                    value="point", label="On the pad", elem_id="pad-mode")
                with gr.Row(elem_classes="live"):
                    live_button = gr.Button("Play live", size="md", elem_id="live-play")
                    stop_button = gr.Button("Stop and keep it", size="md", elem_id="live-stop")
                live_audio = gr.Audio(label="Live: move the dot and the music follows", streaming=True, autoplay=True,
                                      interactive=False, buttons=[], elem_id="live-audio")
            with gr.Column(elem_id="result"):
                summary = gr.Markdown(elem_id="summary", container=True)
                with gr.Row(elem_classes="result-row"):
                    with gr.Column():
                        gen_audio = wav_player(label="Generated clip", type="filepath", interactive=False,
                                             buttons=["download"], elem_id="gen-audio")
                        gen_image = gr.Image(label="Generated clip's mel-spectrogram", show_label=False,
                                             type="filepath", interactive=False, buttons=[], elem_id="gen-mel")
                    with gr.Column():
                        real_audio = wav_player(label="Nearest real clip", type="filepath", interactive=False,
                                              buttons=["download"], elem_id="real-audio")
                        real_image = gr.Image(label="Nearest real clip's mel-spectrogram", show_label=False,
                                              type="filepath", interactive=False, buttons=[], elem_id="real-mel")
                downloads = gr.File(label="Downloads: WAV, parameters (JSON), MIDI for engines that play notes",
                                    file_count="multiple", interactive=False, elem_id="downloads")
                if trust is not None:
                    with gr.Accordion("How far to trust the judge", open=False):
                        gr.Markdown(trust.explanation(), elem_id="judge-trust")
                with gr.Accordion("Parameters (JSON)", open=False):
                    params_json = gr.JSON(label="Parameters", elem_id="params")
            with gr.Column(elem_id="settings"):
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
                valence = gr.Slider(-1, 1, value=defaults["valence"], step=0.01, elem_id="valence",
                                    label="Valence: how pleasant (-1 unpleasant, +1 pleasant)")
                arousal = gr.Slider(-1, 1, value=defaults["arousal"], step=0.01, elem_id="arousal",
                                    label="Arousal: how energetic (-1 calm, +1 energetic)")
                limits = pipeline.limits
                seconds = gr.Slider(limits.min_seconds, limits.max_seconds, value=defaults["seconds"], step=0.5,
                                    label="Duration (s)", elem_id="duration")
                with gr.Row():
                    seed = gr.Number(value=defaults["seed"], precision=0, label="Seed (the one used is shown)",
                                     elem_id="seed")
                    randomize = gr.Checkbox(value=defaults["randomize"], label="new seed each time",
                                            elem_id="randomize")
                engine = gr.Radio([(pipeline.engine(e).label, e) for e in pipeline.engines],
                                  value=defaults["engine"], label="Engine", elem_id="engine")
                instrument = gr.Dropdown([(i.replace("-", " "), i) for i in instruments(pipeline)],
                                         value=defaults["instrument"], interactive=defaults["instrument"] is not None,
                                         label="Instrument (engines that play notes; the model learned from piano)",
                                         info=soundfont_line(pipeline), elem_id="instrument")
                soundfont = gr.Dropdown(list(pipeline.soundfonts), value=defaults["soundfont"],
                                        interactive=bool(pipeline.engine(defaults["engine"]).soundfonts),
                                        visible=len(pipeline.soundfonts) > 1, elem_id="soundfont",
                                        label="Soundfont: the sampled instruments that play the notes")
                nearest_by = gr.Radio([(NEAREST_LABELS[b], b) for b in NEAREST_BY], value=defaults["nearest_by"],
                                      label="Nearest real clip", elem_id="nearest-by")
                with gr.Accordion("Advanced", open=False):
                    steps = gr.Slider(1, limits.max_steps, value=defaults["steps"], step=1,
                                      label="Sampling steps (engines that sample in steps; the notes engine plays "
                                            "frame by frame)")
                    guidance = gr.Slider(0.0, limits.max_guidance, value=defaults["guidance"], step=0.1,
                                         label="Guidance: how strongly the mood steers (1 = plain conditional)")
                    key = gr.Dropdown([AUTO_KEY, *KEYS], value=AUTO_KEY, label="Key (engines trained with keys)")
                    journey = gr.Textbox(label="Journey waypoints, seconds:valence,arousal (a path drawn on the "
                                               "pad lands here; Enter makes the journey)",
                                         placeholder="0:-0.6,-0.6 10:0.7,0.7", elem_id="journey")

        gen_inputs = [valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key, instrument,
                      soundfont]
        gen_outputs = [seed, gen_image, real_image, gen_audio, real_audio, downloads, params_json, summary]

        def wire_generation(start, fn=generate, inputs=gen_inputs, show_result=True, **api):
            # The button reads "Generating…" while the last result stays in place (progress shows on the summary
            # only); one concurrency group for every path into a generation, so the limit holds across them all;
            # then the result's marks go on the pad (after a failure, the previous result and marks stay). A new
            # request while one runs waits, and only the last one waiting is made.
            # Inputs reach `generate` raw: it checks them itself.
            busy = start(None, None, generate_button, js=BUSY_JS, show_progress="hidden", queue=False)
            made = busy.then(fn, inputs, gen_outputs, concurrency_id="generate", preprocess=False,
                             concurrency_limit=concurrency_limit, show_progress_on=summary,
                             trigger_mode="always_last", **api)
            made.success(None, [params_json, pad], [pad, generate_button],
                         js=SHOW_RESULT_JS if show_result else MARKS_JS, show_progress="hidden", queue=False)
            made.failure(None, None, generate_button, js=IDLE_JS, show_progress="hidden", queue=False)

        # progress overlays stay hidden on the pad's updates: they would cover the pad and swallow clicks
        gr.on([valence.change, arousal.change], None, [valence, arousal, pad], pad, js=SLIDERS_TO_PAD_JS,
              show_progress="hidden", queue=False)
        pad.move(None, pad, [valence, arousal], js=PAD_TO_SLIDERS_JS, show_progress="hidden", queue=False)
        engine.change(engine_defaults, engine, [steps, guidance], api_visibility="private", show_progress="hidden")
        engine.change(engine_instruments, engine, [instrument, soundfont], api_visibility="private",
                      show_progress="hidden", queue=False)
        wire_generation(generate_button.click, api_name="generate")
        for trigger in (valence.release, arousal.release):
            wire_generation(trigger, api_visibility="private")
        for i, button in enumerate(preset_buttons):
            picked = button.click(apply_preset, button, [valence, arousal], show_progress="hidden", queue=False,
                                  api_name="preset" if i == 0 else None,
                                  api_visibility="public" if i == 0 else "private")
            wire_generation(picked.then, api_visibility="private")
        picked = pad.pick(None, pad, [valence, arousal], js=PAD_TO_SLIDERS_JS, show_progress="hidden", queue=False)
        wire_generation(picked.then, api_visibility="private")
        # journeys: a path drawn on the pad becomes waypoints over the duration, or waypoints typed in
        pad_mode.change(None, [pad_mode, pad], pad, js=MODE_TO_PAD_JS, show_progress="hidden", queue=False)
        journey_inputs = [journey, seed, randomize, engine, steps, guidance, nearest_by, key, instrument, soundfont]
        drawn = pad.journey(None, [pad, seconds], journey, js=PATH_TO_WAYPOINTS_JS, show_progress="hidden",
                            queue=False)
        wire_generation(drawn.then, make_journey, journey_inputs, api_visibility="private")
        wire_generation(journey.submit, make_journey, journey_inputs, api_name="journey")
        # live: a stream that plays what the pad says, kept as a clip when stopped
        live_button.click(play_live, [valence, arousal, seed, randomize, engine, steps, guidance, key, instrument,
                                      soundfont], live_audio,
                          concurrency_id="live", concurrency_limit=concurrency_limit, preprocess=False,
                          show_progress="hidden", api_name="live")
        gr.on([valence.change, arousal.change], steer_live, [valence, arousal], None, preprocess=False,
              queue=False, show_progress="hidden", api_name="live_mood")
        stop_button.click(stop_live, None, gen_outputs, show_progress_on=summary, api_name="live_stop").success(
            None, [params_json, pad], [pad, generate_button], js=SHOW_RESULT_JS, show_progress="hidden", queue=False)
        # the first screen: the first preset's example, made in the background at start
        loaded = demo.load(lambda: PRESETS[FIRST_PRESET], None, [valence, arousal], show_progress="hidden",
                           api_visibility="private", queue=False)
        wire_generation(loaded.then, show_result=False, api_visibility="private")
    demo.queue(max_size=64)
    if make_examples:  # the first screen's preset first
        requests = [read_request(pipeline, **default_inputs(pipeline, name))
                    for name in sorted(PRESETS, key=lambda name: name != FIRST_PRESET)]
        def make_examples_when_up() -> None:
            if server_up is None or (server_up.wait() and demo.is_running):
                make_examples_now(results, requests)

        # not a daemon: at exit the interpreter waits for it rather than stopping it inside a torch call
        threading.Thread(target=make_examples_when_up, name="moodgen-examples").start()
    return demo


def launch_options() -> dict[str, Any]:
    """What `demo.launch` needs besides the address: the page's theme and CSS, and no uploads."""
    theme = gr.themes.Default(primary_hue="indigo").set(  # AA contrast for white text on buttons, grey hints
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        body_text_color_subdued="*neutral_600", block_info_text_color="*neutral_600")
    return dict(theme=theme, css_paths=[STATIC / "app.css"], js=(STATIC / "page.js").read_text(),
                max_file_size=MAX_UPLOAD)


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
        demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True, **launch_options())
    finally:
        server_up.set()  # the examples start now, or (the launch failed) end at once
    demo.block_thread()


if __name__ == "__main__":
    main()
