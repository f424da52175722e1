"""moodgen's Gradio app: pick a mood on the valence/arousal pad, hear a clip, compare it with the nearest real one.

Widgets and callbacks only; every model decision lives in `moodgen.pipeline`. `python app.py` serves on
127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces, where SPACE_ID is set). Options: `python app.py --help`.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import librosa.display
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from moodgen.atlas import Atlas, AtlasMatch
from moodgen.audio import denormalize_db, to_pcm16
from moodgen.config import Limits, MelParams
from moodgen.keys import N_KEYS, key_name
from moodgen.mood import PRESETS, preset, validate_mood
from moodgen.pipeline import Generation, MoodPipeline

NEAREST_CHOICES = (("by mood (V/A distance)", "mood"), ("by sound (spectral embedding)", "sound"))
AUTO_KEY = "auto (drawn for the mood)"

# The pad (app_static/pad.*) is an SVG drawn from its value {valence, arousal, aimed, heard}; the pad area is
# 0..200 in SVG units with a 12-unit margin, so v = x/100 - 1 and a = 1 - y/100. `aimed`/`heard` mark the last
# generation's target and where the judge placed it. Click or drag: the point follows the pointer locally
# (props.value re-renders the template); releasing fires 'pick' with the new mood, which the server turns into
# slider values and a generation.
STATIC = Path(__file__).with_name("app_static")

# Client-side glue (no server round trip): sliders -> pad point, and the last generation's aimed/heard markers.
SLIDERS_TO_PAD_JS = "(v, a, pad) => ({...pad, valence: v, arousal: a})"
PARAMS_TO_PAD_JS = "(params, pad) => ({...pad, aimed: [params.valence, params.arousal], heard: params.judged})"


def _error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def resolve_seed(seed: Any, randomize: bool, limits: Limits) -> int:
    """A fresh random seed when asked to, else `seed` checked against the limits."""
    return secrets.randbelow(limits.max_seed + 1) if randomize else limits.seed(seed)


def mel_image(mel: np.ndarray, mel_params: MelParams, title: str, seconds: float) -> np.ndarray:
    """Render a normalized log-mel (M, T) as an RGB image (H, W, 3): time in s, mel-spaced Hz axis, absolute dB.

    Every image uses the same colour scale (MelParams' dB range) and `seconds` as the time span, so a generated
    clip and a real one can be compared side by side.
    """
    db = 10.0 * torch.log10(denormalize_db(torch.from_numpy(np.asarray(mel, dtype=np.float32)), mel_params))
    # fixed axes rectangles (not a layout engine, which doubled the rendering time) keep both images aligned
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.14, 0.15, 0.68, 0.75))
    quad = librosa.display.specshow(db.numpy(), sr=mel_params.sample_rate, hop_length=mel_params.hop_length,
                                    n_fft=mel_params.n_fft, x_axis="time", y_axis="mel", fmin=mel_params.fmin,
                                    fmax=mel_params.fmax, vmin=mel_params.db_min, vmax=mel_params.db_max,
                                    cmap="magma", ax=ax)
    ax.set(title=title, xlim=(0.0, seconds), xlabel="time (s)", ylabel="frequency (Hz, mel scale)")
    fig.colorbar(quad, cax=fig.add_axes((0.84, 0.15, 0.025, 0.75)), format="%+.0f dB")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def crop_frames(mel: np.ndarray, mel_params: MelParams, seconds: float) -> np.ndarray:
    """The first `seconds` of a mel (M, T) -> (M, T'), so a long real clip is drawn on the generated clip's axes."""
    return mel[:, : mel_params.frames_for(seconds)]


def describe_match(match: AtlasMatch) -> str:
    e = match.entry
    return (f"Nearest real clip (by {match.by}): **{e.clip_id}** · source {e.source} · licence {e.licence} · "
            f"V {e.valence:+.2f} / A {e.arousal:+.2f} · distance {match.distance:.3f}")


def write_downloads(generation: Generation, extra: dict[str, Any], out_dir: Path) -> list[str]:
    """WAV (16-bit), JSON of the parameters and, for engines with notes, MIDI; one folder per distinct request."""
    text = json.dumps(generation.params() | extra, sort_keys=True)
    folder = out_dir / hashlib.sha256(text.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    stem = (f"moodgen_{generation.engine}_v{generation.valence:+.2f}_a{generation.arousal:+.2f}"
            f"_{generation.seconds:g}s_seed{generation.seed}")
    return [str(p) for p in generation.save(folder / f"{stem}.wav", extra=extra, overwrite=True)]


def build_demo(pipeline: MoodPipeline, atlas: Atlas | None = None, concurrency_limit: int = 2,
               out_dir: str | Path | None = None) -> gr.Blocks:
    """The app around a loaded `MoodPipeline`.

    atlas: where nearest real clips come from (default `pipeline.atlas`; `main` passes a DEAM atlas when a DEAM
    folder is configured). concurrency_limit: generations run at once (the rest wait in the queue).
    out_dir: where download files are written (default: a folder in the system temp dir).
    """
    atlas = pipeline.atlas if atlas is None else atlas
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "moodgen-app"
    mel_params = pipeline.mel_params

    limits = pipeline.limits

    def generate(valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key=AUTO_KEY):
        try:
            v, a = validate_mood(valence, arousal)
            return respond(v, a, limits.seconds(seconds, field="duration"), resolve_seed(seed, randomize, limits),
                           pipeline.engine(engine).name, limits.steps(steps), limits.guidance(guidance), nearest_by,
                           None if key in (None, "", AUTO_KEY) else str(key))
        except (ValueError, TypeError) as exc:
            raise _error(exc) from exc

    # Bounded, and per demo: a repeated request skips re-rendering both spectrograms, the nearest clip and the files.
    @functools.lru_cache(maxsize=32)
    def respond(v, a, seconds, seed, engine, steps, guidance, nearest_by, key):
        gen = pipeline.generate(v, a, seconds=seconds, seed=seed, steps=steps, guidance=guidance, engine=engine,
                                key=key)
        extra = {}
        lines = [f"Generated {gen.seconds:g} s with the **{gen.engine}** engine, seed {gen.seed}, aimed at "
                 f"V {gen.valence:+.2f} / A {gen.arousal:+.2f}"
                 + (f", in **{gen.key}** ({'as asked' if key else 'drawn for the mood'})." if gen.key else ".")]
        if gen.judged is not None:
            lines.append(f"The judge hears V {gen.judged[0]:+.2f} / A {gen.judged[1]:+.2f} (the diamond on the pad).")
        real_image = real_audio = None
        match = pipeline.nearest(gen, nearest_by, atlas)
        if match is None:
            lines.append("No reference atlas is loaded, so there is no nearest real clip.")
        else:
            lines.append(describe_match(match))
            e = match.entry
            extra["nearest"] = match.record()
            if match.mel is not None:
                real_image = mel_image(crop_frames(match.mel, atlas.mel_params, gen.seconds), atlas.mel_params,
                                       f"nearest real: {e.clip_id}", gen.seconds)
            if match.audio is not None:
                real_audio = (atlas.mel_params.sample_rate, to_pcm16(match.audio))
        gen_image = mel_image(gen.mel, mel_params, f"generated: V {gen.valence:+.2f} / A {gen.arousal:+.2f}",
                              gen.seconds)
        files = write_downloads(gen, extra, out_dir)
        return (gen.seed, gen_image, real_image, (gen.sample_rate, to_pcm16(gen.audio)), real_audio, files,
                gen.params() | extra, "\n\n".join(lines))

    def engine_defaults(name):
        """The sampler settings an engine was exported with: (steps, guidance); steps stay for engines without."""
        eng = pipeline.engine(name)
        return (gr.skip() if eng.default_steps is None else eng.default_steps), eng.default_guidance

    default_guidance = pipeline.engine(None).default_guidance
    default_steps = next((s for s in (pipeline.engine(e).default_steps for e in pipeline.engines) if s), 16)

    def apply_preset(name):
        try:
            return preset(name)
        except ValueError as exc:
            raise _error(exc) from exc

    def on_pick(evt: gr.EventData):
        try:
            return validate_mood(evt.valence, evt.arousal)
        except (ValueError, AttributeError) as exc:
            raise _error(exc) from exc

    with gr.Blocks(title="moodgen", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# moodgen\nPick a mood on the valence/arousal pad (click or drag) or a preset; "
                    "moodgen writes a short piano clip for it and shows the nearest real clip beside it.")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                pad = gr.HTML(value={"valence": 0.0, "arousal": 0.0, "aimed": None, "heard": None},
                              html_template=(STATIC / "pad.html").read_text(),
                              css_template=(STATIC / "pad.css").read_text(), js_on_load=(STATIC / "pad.js").read_text(),
                              elem_id="mood-pad")
                with gr.Row():
                    preset_buttons = [gr.Button(name, size="sm", elem_id=f"preset-{name}") for name in PRESETS]
                valence = gr.Slider(-1, 1, value=0.0, step=0.01, label="Valence (unpleasant -> pleasant)",
                                    elem_id="valence")
                arousal = gr.Slider(-1, 1, value=0.0, step=0.01, label="Arousal (calm -> energetic)",
                                    elem_id="arousal")
                seconds = gr.Slider(limits.min_seconds, limits.max_seconds, value=10.0, step=0.5, label="Duration (s)")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=limits.max_seed, label="Seed (used)")
                    randomize = gr.Checkbox(value=True, label="randomize")
                engine = gr.Radio([(pipeline.engine(e).label, e) for e in pipeline.engines],
                                  value=pipeline.default_engine, label="Engine")
                nearest_by = gr.Radio(list(NEAREST_CHOICES), value="mood", label="Nearest real clip")
                with gr.Accordion("Advanced", open=False):
                    steps = gr.Slider(1, limits.max_steps, value=default_steps, step=1,
                                      label="Sampling steps (mel engine; the notes engine samples frame by frame)")
                    guidance = gr.Slider(0.0, limits.max_guidance, value=default_guidance, step=0.1,
                                         label="Guidance (1 = plain conditional, higher = stronger mood)")
                    key = gr.Dropdown([AUTO_KEY] + [key_name(k) for k in range(N_KEYS)], value=AUTO_KEY,
                                      label="Key (engines trained with keys)")
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                summary = gr.Markdown(elem_id="summary")
                with gr.Row():
                    gen_image = gr.Image(label="Generated mel-spectrogram", show_label=False, type="numpy",
                                         format="png", interactive=False, elem_id="gen-mel")
                    real_image = gr.Image(label="Nearest real clip's mel-spectrogram", show_label=False, type="numpy",
                                          format="png", interactive=False, elem_id="real-mel")
                with gr.Row():
                    gen_audio = gr.Audio(label="Generated clip", type="numpy", interactive=False,
                                         elem_id="gen-audio")
                    real_audio = gr.Audio(label="Nearest real clip", type="numpy", interactive=False,
                                          elem_id="real-audio")
                downloads = gr.File(label="Downloads (WAV, parameters JSON, MIDI for the notes engine)",
                                    file_count="multiple", interactive=False)
                params_json = gr.JSON(label="Parameters")

        gen_inputs = [valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key]
        gen_outputs = [seed, gen_image, real_image, gen_audio, real_audio, downloads, params_json, summary]

        def wire_generation(listener, **kwargs):
            # One concurrency group for every path into a generation, so the limit holds across them all; then
            # the generation's target and the judge's estimate are drawn on the pad.
            listener(generate, gen_inputs, gen_outputs, concurrency_id="generate",
                     concurrency_limit=concurrency_limit, **kwargs
                     ).success(None, [params_json, pad], pad, js=PARAMS_TO_PAD_JS, show_progress="hidden")

        # progress overlays stay hidden on the pad's updates: they would cover the pad and swallow clicks
        gr.on([valence.change, arousal.change], None, [valence, arousal, pad], pad, js=SLIDERS_TO_PAD_JS,
              show_progress="hidden")
        engine.change(engine_defaults, engine, [steps, guidance], api_visibility="private", show_progress="hidden")
        wire_generation(generate_button.click, api_name="generate")
        for i, button in enumerate(preset_buttons):
            picked = button.click(apply_preset, button, [valence, arousal], show_progress="hidden",
                                  api_name="preset" if i == 0 else None,
                                  api_visibility="public" if i == 0 else "private")
            wire_generation(picked.then, api_visibility="private")
        picked = pad.pick(on_pick, None, [valence, arousal], api_visibility="private", show_progress="hidden",
                          trigger_mode="always_last")
        wire_generation(picked.then, api_visibility="private")
    demo.queue(max_size=64)
    return demo


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
    p.add_argument("--concurrency", type=int, default=2, help="generations run at once")
    return p.parse_args(argv)


def load_models(args: argparse.Namespace) -> tuple[MoodPipeline, Atlas | None]:
    """The pipeline (local checkpoints, else the Hub repo) and, when a DEAM folder is configured, a DEAM atlas."""
    try:
        pipeline = MoodPipeline.from_checkpoint(args.checkpoints)
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
    pipeline.warmup()
    build_demo(pipeline, atlas=atlas, concurrency_limit=args.concurrency).launch(
        server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
