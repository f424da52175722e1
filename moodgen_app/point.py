"""A point on the pad: the pad and the sliders kept in step, a clip for a point (Generate, a slider released, a
preset, a click or Enter on the pad), the engine's settings, and the first screen's example."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import gradio as gr

from moodgen.config import shown
from moodgen.mood import PRESETS
from moodgen_app.page import notes_line
from moodgen_app.results import FIRST_PRESET, Result, read_request
from moodgen_app.wiring import Wiring, checked, checked_each

# client-side, no server round trip: the pad's value is its point plus the last result's marks
SLIDERS_TO_PAD_JS = "(v, a, pad) => ([v, a].every(Number.isFinite) ? {...pad, valence: v, arousal: a} : pad)"
PAD_TO_SLIDERS_JS = "(pad) => [pad.valence, pad.arousal]"


def generator(w: Wiring, whole: bool = False) -> tuple[Callable[..., Iterator[Result] | Result], list]:
    """The callback that makes a clip for a point, and its inputs (the API's /generate takes them in this order):
    its audio first, then the whole result (`Results.stream`); with `whole`, the whole result at once."""
    # instrument and soundfont came last and are optional: clients written before them keep working
    def read(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key, instrument,
             soundfont, bpm, stems):
        return checked(read_request, w.pipeline, valence, arousal, seconds, randomize, nearest_by, seed=seed,
                       engine=engine, steps=steps, guidance=guidance, key=key, instrument=instrument,
                       soundfont=soundfont, bpm=bpm, stems=stems)

    def generate(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key,
                 instrument=None, soundfont=None, bpm=None, stems=False,
                 progress=gr.Progress()):  # noqa: B008 (Gradio's progress)
        request = read(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key,
                       instrument, soundfont, bpm, stems)
        yield from checked_each(w.results.stream(request, progress))

    def generate_whole(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key,
                       instrument=None, soundfont=None, bpm=None, stems=False,
                       progress=gr.Progress()):  # noqa: B008 (Gradio's progress)
        request = read(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key,
                       instrument, soundfont, bpm, stems)
        return checked(w.results.outputs, request, progress)

    return generate_whole if whole else generate, [w.page.valence, w.page.arousal, w.page.seconds,
                                                   *w.page.settings()]


def wire_point(w: Wiring) -> None:
    page, pipeline = w.page, w.pipeline
    generate, inputs = generator(w)

    def engine_defaults(name):
        """The sampler settings an engine was exported with: (steps, guidance); steps stay for engines without."""
        eng = pipeline.engine(name)
        return (gr.skip() if eng.default_steps is None else eng.default_steps), eng.default_guidance

    def engine_instruments(name):
        """The instrument, soundfont, tempo and stems controls, usable only for engines that play notes (the
        others make audio directly); for those a line says so."""
        eng = pipeline.engine(name)
        tempo = {} if eng.plays_tempo else {"value": ""}
        return (gr.Dropdown(interactive=bool(eng.instruments)), gr.Radio(interactive=bool(eng.soundfonts)),
                gr.Dropdown(interactive=eng.plays_tempo, info=notes_line(eng, "a tempo"), **tempo),
                gr.Checkbox(interactive=eng.makes_midi, info=notes_line(eng, "stems"),
                            **({} if eng.makes_midi else {"value": False})))

    def apply_preset(name):
        if not isinstance(name, str) or name not in PRESETS:  # checked here: a long name is echoed cut short
            raise gr.Error(f"preset must be one of {', '.join(PRESETS)}, got {shown(name)}", print_exception=False)
        return PRESETS[name]

    mood = [page.valence, page.arousal]
    # progress overlays stay hidden on the pad's updates: they would cover the pad and swallow clicks
    gr.on([page.valence.change, page.arousal.change], None, [*mood, page.pad], page.pad, js=SLIDERS_TO_PAD_JS,
          show_progress="hidden", queue=False)
    page.pad.move(None, page.pad, mood, js=PAD_TO_SLIDERS_JS, show_progress="hidden", queue=False)
    page.engine.change(engine_defaults, page.engine, [page.steps, page.guidance], api_visibility="private",
                       show_progress="hidden")
    page.engine.change(engine_instruments, page.engine, [page.instrument, page.soundfont, page.bpm, page.stems],
                       api_visibility="private", show_progress="hidden", queue=False)
    w.generation(page.generate.click, generate, inputs, api_name="generate_stream")
    # /generate answers once, with every file: gradio_client downloads every update's files, and a streamed
    # result's last update twice (a repeated request took 0.2 s instead of 0.1 s). The page never clicks it.
    w.generation(gr.Button(visible=False).click, generator(w, whole=True)[0], inputs, api_name="generate")
    for trigger in (page.valence.release, page.arousal.release):
        w.generation(trigger, generate, inputs, api_visibility="private")
    for i, button in enumerate(page.presets.values()):
        picked = button.click(apply_preset, button, mood, show_progress="hidden", queue=False,
                              api_name="preset" if i == 0 else None, api_visibility="public" if i == 0 else "private")
        w.generation(picked.then, generate, inputs, api_visibility="private")
    picked = page.pad.pick(None, page.pad, mood, js=PAD_TO_SLIDERS_JS, show_progress="hidden", queue=False)
    w.generation(picked.then, generate, inputs, api_visibility="private")


def wire_first_screen(w: Wiring, demo: gr.Blocks) -> None:
    """The first preset's example (made in the background at start) on the page as it loads."""
    generate, inputs = generator(w)
    loaded = demo.load(lambda: PRESETS[FIRST_PRESET], None, [w.page.valence, w.page.arousal],
                       show_progress="hidden", api_visibility="private", queue=False)
    w.generation(loaded.then, generate, inputs, api_visibility="private")
