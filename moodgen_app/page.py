"""The page's widgets, laid out (static/app.css places the four columns: desktop and phone), and the page's files.

`build_page` makes them inside a `gr.Blocks` and hands them back as a `Page`, so each feature's wiring
(`moodgen_app.point`, `.journey`, `.live`) names the widgets it uses; the result's widgets form a `Result`, the one
place the order of a result's outputs is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from moodgen.mood import PRESETS
from moodgen.pipeline import NEAREST_BY, MoodPipeline
from moodgen_app.results import AUTO_KEY, KEYS, Result, Results, default_inputs, instruments

STATIC = Path(__file__).with_name("static")
NEAREST_LABELS = {"mood": "by mood (distance on the pad)", "sound": "by sound (spectral embedding)"}
# the preset buttons laid out like the pad: angry | happy over sad | relaxed
PRESET_ORDER = sorted(PRESETS, key=lambda name: (-PRESETS[name][1], PRESETS[name][0]))
LIVE_STATUS = ('<div class="live-status" aria-live="polite">Live: the music follows the dot as you move it; '
               'the ring on the pad is what you hear now</div>')
INTRO = ("# moodgen\nPick a mood and hear a short clip made for it. **Valence**: how pleasant (left to "
         "right); **arousal**: how energetic (bottom to top).")


def static_text(name: str) -> str:
    """A file of static/ (the pad's template, styles and scripts; the scripts that events run)."""
    return (STATIC / name).read_text()


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


@dataclass(frozen=True)
class Page:
    """The page's widgets, by what they are."""

    pad: gr.HTML
    presets: dict[str, gr.Button]  # by preset name, in PRESET_ORDER
    pad_mode: gr.Radio
    live_play: gr.Button  # Play live, Stop while playing (static/live.js)
    live_stop: gr.Button  # unseen: keeps what was played as a result (live.js clicks it; the API's /live_stop)
    live_id: gr.Textbox  # unseen: the page's live stream (live.js hands it to Stop)
    live_api: gr.Button  # unseen: the API's /live, streamed into live_audio
    live_audio: gr.Audio
    result: Result  # of widgets
    generate: gr.Button
    valence: gr.Slider
    arousal: gr.Slider
    seconds: gr.Slider
    seed: gr.Number
    randomize: gr.Checkbox
    engine: gr.Radio
    instrument: gr.Dropdown
    soundfont: gr.Radio
    nearest_by: gr.Radio
    steps: gr.Slider
    guidance: gr.Slider
    key: gr.Dropdown
    journey: gr.Textbox
    bpm: gr.Dropdown
    stems: gr.Checkbox

    def settings(self, nearest: bool = True) -> list[gr.components.Component]:
        """The inputs every request shares, in the order the callbacks (and API clients) take them."""
        return [self.seed, self.randomize, self.engine, self.steps, self.guidance,
                *([self.nearest_by] if nearest else []), self.key, self.instrument, self.soundfont, self.bpm,
                self.stems]


def build_page(pipeline: MoodPipeline, results: Results) -> Page:
    """The widgets, in a `gr.Blocks` being built: the pad, presets and modes, the result, the settings."""
    defaults = default_inputs(pipeline)
    with gr.Row(elem_id="main"):
        with gr.Column(elem_id="controls"):
            pad = mood_pad(defaults, results)
            with gr.Row(elem_classes="presets"):
                presets = {name: gr.Button(name, size="md", elem_id=f"preset-{name}") for name in PRESET_ORDER}
        with gr.Column(elem_id="live"):  # beside the pad on a desktop, under it on a phone
            with gr.Row(elem_classes="live-bar"):
                live_play = gr.Button("Play live", size="md", elem_id="live-play")
                gr.HTML(LIVE_STATUS, elem_id="live-status", padding=False)
            with gr.Column(elem_classes="api-only"):  # in the page for live.js and API clients, never seen
                live_stop = gr.Button("Stop and keep it", elem_id="live-stop")
                live_id = gr.Textbox(elem_id="live-id", show_label=False)
                live_api = gr.Button("live (API)", elem_id="live-api")
                live_audio = gr.Audio(label="Live (API)", streaming=True, autoplay=False, interactive=False,
                                      buttons=[], elem_id="live-audio")
        with gr.Column(elem_id="modes"):  # below the presets; on a phone after the result
            pad_mode = gr.Radio([("a point: click for a clip", "point"), ("a journey: drag a path", "journey")],
                                value="point", label="On the pad", elem_id="pad-mode")
        with gr.Column(elem_id="result"):
            result = result_widgets(results)
        with gr.Column(elem_id="settings"):
            settings = settings_widgets(pipeline, defaults)
    return Page(pad=pad, presets=presets, pad_mode=pad_mode, live_play=live_play, live_stop=live_stop,
                live_id=live_id, live_api=live_api, live_audio=live_audio,
                result=result._replace(seed=settings["seed"]), **settings)


def mood_pad(defaults: dict[str, Any], results: Results) -> gr.HTML:
    """The valence/arousal pad: its point, and the last result's marks (static/pad.js says what each is)."""
    trust = results.trust
    return gr.HTML(value={"valence": defaults["valence"], "arousal": defaults["arousal"], "aimed": None,
                          "heard": None, "real": None, "spread": trust.error if trust else None, "announce": "",
                          "mode": "point", "path": None, "curve": None, "playhead": None, "hint": "",
                          "live": None, "trail": None},
                   html_template=static_text("pad.html"), css_template=static_text("pad.css"),
                   js_on_load=static_text("pad.js"), elem_id="mood-pad")


def result_widgets(results: Results) -> Result:
    """The summary, both players and spectrograms, the downloads and the parameters; the seed's box is one of the
    settings (`build_page` puts it in)."""
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
    downloads = gr.File(label="Downloads: WAV, parameters (JSON), MIDI for engines that play notes, stems (zip)",
                        file_count="multiple", interactive=False, elem_id="downloads")
    if results.trust is not None:
        with gr.Accordion("How far to trust the judge", open=False):
            gr.Markdown(results.trust.explanation(), elem_id="judge-trust")
    with gr.Accordion("Parameters (JSON)", open=False):
        params = gr.JSON(label="Parameters", elem_id="params")
    return Result(seed=None, gen_image=gen_image, real_image=real_image, gen_audio=gen_audio,
                  real_audio=real_audio, downloads=downloads, params=params, summary=summary)


def settings_widgets(pipeline: MoodPipeline, defaults: dict[str, Any]) -> dict[str, Any]:
    """The Generate button and the settings, as `Page` fields."""
    generate = gr.Button("Generate", variant="primary", elem_id="generate")
    valence = gr.Slider(-1, 1, value=defaults["valence"], step=0.01, elem_id="valence",
                        label="Valence: how pleasant (-1 unpleasant, +1 pleasant)")
    arousal = gr.Slider(-1, 1, value=defaults["arousal"], step=0.01, elem_id="arousal",
                        label="Arousal: how energetic (-1 calm, +1 energetic)")
    limits = pipeline.limits
    seconds = gr.Slider(limits.min_seconds, limits.max_seconds, value=defaults["seconds"], step=0.5,
                        label="Duration (s)", elem_id="duration")
    with gr.Row():
        seed = gr.Number(value=defaults["seed"], precision=0, label="Seed (the one used is shown)", elem_id="seed")
        randomize = gr.Checkbox(value=defaults["randomize"], label="new seed each time", elem_id="randomize")
    engine = gr.Radio([(pipeline.engine(e).label, e) for e in pipeline.engines], value=defaults["engine"],
                      label="Engine", elem_id="engine")
    instrument = gr.Dropdown([(i.replace("-", " "), i) for i in instruments(pipeline)],
                             value=defaults["instrument"], interactive=defaults["instrument"] is not None,
                             label="Instrument (engines that play notes; the model learned from piano)",
                             info=soundfont_line(pipeline), elem_id="instrument")
    # a few files: every choice in view, and no menu opening over the Instrument menu
    soundfont = gr.Radio(list(pipeline.soundfonts), value=defaults["soundfont"],
                         interactive=bool(pipeline.engine(defaults["engine"]).soundfonts),
                         visible=len(pipeline.soundfonts) > 1, elem_id="soundfont",
                         label="Soundfont: the sampled instruments that play the notes")
    notes = pipeline.engine(defaults["engine"])
    bpm = gr.Dropdown(TEMPO_CHOICES, value="", interactive=notes.plays_tempo, info=notes_line(notes, "a tempo"),
                      label="Tempo (BPM, 4/4): notes on the beat", elem_id="bpm")
    stems = gr.Checkbox(False, interactive=notes.makes_midi, info=notes_line(notes, "stems"), elem_id="stems",
                        label="Stems: melody, harmony and bass as a zip")
    nearest_by = gr.Radio([(NEAREST_LABELS[b], b) for b in NEAREST_BY], value=defaults["nearest_by"],
                          label="Nearest real clip", elem_id="nearest-by")
    with gr.Accordion("Advanced", open=False):
        steps = gr.Slider(1, limits.max_steps, value=defaults["steps"], step=1, elem_id="steps",
                          label="Sampling steps (engines that sample in steps; the notes engine plays frame by frame)")
        guidance = gr.Slider(0.0, limits.max_guidance, value=defaults["guidance"], step=0.1, elem_id="guidance",
                             label="Guidance: how strongly the mood steers (1 = plain conditional)")
        key = gr.Dropdown([AUTO_KEY, *KEYS], value=AUTO_KEY, label="Key (engines trained with keys)")
        journey = gr.Textbox(label="Journey waypoints, seconds:valence,arousal (a path drawn on the pad lands here; "
                                   "Enter makes the journey)",
                             placeholder="0:-0.6,-0.6 10:0.7,0.7", elem_id="journey")
    return dict(generate=generate, valence=valence, arousal=arousal, seconds=seconds, seed=seed, randomize=randomize,
                engine=engine, instrument=instrument, soundfont=soundfont, nearest_by=nearest_by, steps=steps,
                guidance=guidance, key=key, journey=journey, bpm=bpm, stems=stems)


TEMPO_CHOICES = [("free: the engine's own time", ""), ("drawn for the mood", "mood"),
                 *((str(b), str(b)) for b in range(60, 181, 12))]


def notes_line(eng: Any, what: str) -> str | None:
    """One line saying why `what` does not apply to engine `eng` (asked by its capabilities), else None."""
    return None if eng.makes_midi and eng.plays_tempo else f"engine {eng.name!r} plays no notes: no {what} for it"
