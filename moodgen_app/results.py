"""What the app makes for a request: the request checked field by field, then its outputs (audio, spectrograms,
summary, downloads) written once into a `ResultStore` folder and named by path."""
from __future__ import annotations

import hashlib
import io
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import soundfile as sf

from moodgen.atlas import Atlas
from moodgen.audio import to_pcm16
from moodgen.config import Limits, shown
from moodgen.files import write_together
from moodgen.generation import Generation
from moodgen.journey import parse_path, validate_waypoints
from moodgen.keys import N_KEYS, key_name
from moodgen.mood import PRESETS, validate_mood
from moodgen.pipeline import NEAREST_BY, MoodPipeline
from moodgen_app.files import ResultStore
from moodgen_app.views import (
    JudgeTrust,
    clip_stem,
    crop_frames,
    judge_line,
    mel_png,
    mel_title,
    nearest_lines,
    safe_name,
    summary_lines,
)

AUTO_KEY = "auto (drawn for the mood)"
KEYS = tuple(key_name(k) for k in range(N_KEYS))
FIRST_PRESET = "happy"  # the example on the first screen


class Result(NamedTuple):
    """What the page shows for a request, in the order of the app's outputs: the one place that order is written.
    The page holds one `Result` of widgets (`page.Page.result`) and every callback that shows a result returns a
    `Result` of values for them."""

    seed: Any  # the seed used
    gen_image: Any  # the generated clip's spectrogram (PNG path)
    real_image: Any  # the nearest real clip's spectrogram (PNG path), or None
    gen_audio: Any  # the generated clip (WAV path)
    real_audio: Any  # the nearest real clip (WAV path), or None
    downloads: Any  # WAV, JSON and (engines that play notes) MIDI paths
    params: Any  # the parameters (the JSON file's content)
    summary: Any  # the summary (Markdown)


@dataclass(frozen=True)
class Request:
    """One request, checked; equal requests give equal results (and share one folder of files). A journey has
    waypoints (seconds, valence, arousal); its mood and length are then where and when it ends."""

    valence: float
    arousal: float
    seconds: float
    seed: int
    engine: str
    steps: int | None  # None where the engine has no sampler steps
    guidance: float
    nearest_by: str
    key: str | None  # None: drawn for the mood
    instrument: str | None = None  # None where the engine plays no notes
    waypoints: tuple[tuple[float, float, float], ...] | None = None
    soundfont: str | None = None  # None where the engine plays no notes

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def instruments(pipeline: MoodPipeline) -> tuple[str, ...]:
    """Every instrument some loaded engine plays its notes on, in menu order."""
    return tuple(dict.fromkeys(i for e in pipeline.engines for i in pipeline.engine(e).instruments))


def read_settings(pipeline: MoodPipeline, seed: Any, randomize: Any, engine: Any, steps: Any, guidance: Any,
                  nearest_by: Any, key: Any, instrument: Any = None, soundfont: Any = None) -> dict[str, Any]:
    """The inputs every request shares, as any client may send them -> Request fields, or ValueError naming the
    field, with the bad value cut short. `instrument`, `soundfont`: None or "" for the engine's default; ignored by
    engines that play no notes (like steps by engines without sampler steps)."""
    limits: Limits = pipeline.limits
    if not isinstance(randomize, bool):
        raise ValueError(f"randomize must be true or false, got {shown(randomize)}")
    if not isinstance(engine, str):
        raise ValueError(f"engine must be one of {', '.join(pipeline.engines)}, got {shown(engine)}")
    eng = pipeline.engine(engine)
    if nearest_by not in NEAREST_BY:
        raise ValueError(f"nearest must be one of {', '.join(NEAREST_BY)}, got {shown(nearest_by)}")
    if key not in (None, "", AUTO_KEY, *KEYS):
        raise ValueError(f"key must be one of {AUTO_KEY!r} or a key like 'A minor', got {shown(key)}")
    known = instruments(pipeline)
    if instrument not in (None, "", *known):
        raise ValueError(f"instrument must be one of {', '.join(known)}, got {shown(instrument)}")
    if soundfont not in (None, "", *pipeline.soundfonts):
        raise ValueError(f"soundfont must be one of {', '.join(pipeline.soundfonts)}, got {shown(soundfont)}")
    return dict(seed=secrets.randbelow(limits.max_seed + 1) if randomize else limits.seed(seed),
                engine=eng.name, steps=limits.steps(steps) if eng.uses_steps else None,
                guidance=limits.guidance(guidance), nearest_by=nearest_by, key=key if key in KEYS else None,
                instrument=(instrument or eng.instruments[0]) if eng.instruments else None,
                soundfont=(soundfont or eng.soundfont) if eng.soundfonts else None)


def read_request(pipeline: MoodPipeline, valence: Any, arousal: Any, seconds: Any, seed: Any, randomize: Any,
                 engine: Any, steps: Any, guidance: Any, nearest_by: Any, key: Any, instrument: Any = None,
                 soundfont: Any = None) -> Request:
    """The raw values of the app's inputs for one mood -> a Request, or ValueError naming the field."""
    v, a = validate_mood(valence, arousal)
    return Request(v, a, pipeline.limits.seconds(seconds, field="duration"),
                   **read_settings(pipeline, seed, randomize, engine, steps, guidance, nearest_by, key, instrument,
                                   soundfont))


def read_journey(pipeline: MoodPipeline, path: Any, seed: Any, randomize: Any, engine: Any, steps: Any,
                 guidance: Any, nearest_by: Any, key: Any, instrument: Any = None, soundfont: Any = None) -> Request:
    """A journey's waypoints as text ("0:-0.6,-0.6 10:0.7,0.7": seconds:valence,arousal) and the shared inputs ->
    a Request, or ValueError naming the field or the waypoint."""
    if not isinstance(path, str):
        raise ValueError(f"journey must be text like '0:-0.6,-0.6 10:0.7,0.7', got {shown(path)}")
    try:
        points = validate_waypoints(parse_path(path), pipeline.limits)
    except ValueError as exc:  # the library names the CLI's flag; here the field is the journey
        raise ValueError(str(exc).replace("--path:", "journey:", 1)) from None
    seconds, v, a = points[-1]
    return Request(v, a, seconds, **read_settings(pipeline, seed, randomize, engine, steps, guidance, nearest_by,
                                                  key, instrument, soundfont), waypoints=points)


def wav_bytes(audio: Any, sample_rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, to_pcm16(audio), sample_rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


class Results:
    """The app's outputs for a request, made once and kept as files in a `ResultStore`."""

    def __init__(self, pipeline: MoodPipeline, atlas: Atlas | None, store: ResultStore):
        self.pipeline, self.atlas, self.store = pipeline, atlas, store
        self.trust = JudgeTrust.from_metadata(pipeline.judge.metadata) if pipeline.judge is not None else None

    def outputs(self, request: Request, progress: gr.Progress | None = None) -> Result:
        """The request's result, made once."""
        return self.store.get(request.digest, lambda folder: self._make(request, folder, progress))

    def _make(self, r: Request, folder: Path, progress: gr.Progress | None) -> Result:
        if progress is not None:
            progress(0.05, desc="Generating the clip…")
        settings = dict(seed=r.seed, steps=r.steps, guidance=r.guidance, engine=r.engine, key=r.key,
                        instrument=r.instrument, soundfont=r.soundfont)
        gen = (self.pipeline.journey(r.waypoints, **settings) if r.waypoints else
               self.pipeline.generate(r.valence, r.arousal, seconds=r.seconds, **settings))
        if progress is not None:
            progress(0.7, desc="Finding the nearest real clip and drawing…")
        return self.show(gen, folder, r.nearest_by, r.key is not None)

    def recorded(self, key: str, gen: Generation) -> Result:
        """The outputs of a clip made elsewhere (a live stream's recording), kept under `key`."""
        return self.store.get(key, lambda folder: self.show(gen, folder, "mood", False))

    def show(self, gen: Generation, folder: Path, nearest_by: str, key_asked: bool) -> Result:
        """A generation's outputs, its files written into `folder`."""
        match = self.pipeline.nearest(gen, nearest_by, self.atlas)
        lines = summary_lines(gen, key_asked)
        if gen.judged is not None:
            lines.append(judge_line(gen.judged, self.trust))
        stem = folder / clip_stem(gen)
        gen_png = stem.with_name(stem.name + "_mel.png")
        files = {gen_png: mel_png(gen.mel, self.pipeline.mel_params, mel_title(gen), gen.seconds)}
        real_png = real_wav = None
        if match is None:
            lines.append("No reference atlas is loaded, so there is no nearest real clip.")
        else:
            mel_params, name = self.atlas.mel_params, f"nearest_{safe_name(match.entry.clip_id)}"
            real_seconds = None if match.audio is None else len(match.audio) / mel_params.sample_rate
            lines += nearest_lines(gen, match, real_seconds)
            if match.mel is not None:
                real_png = folder / f"{name}_mel.png"
                files[real_png] = mel_png(crop_frames(match.mel, mel_params, gen.seconds), mel_params,
                                          f"nearest real clip: {match.entry.clip_id}", gen.seconds)
            if match.audio is not None:
                real_wav = folder / f"{name}.wav"
                files[real_wav] = wav_bytes(match.audio, mel_params.sample_rate)
        write_together(files)
        extra = {"nearest": match.record()} if match is not None else {}
        downloads = [str(p) for p in gen.save(stem.with_name(stem.name + ".wav"), extra=extra)]
        return Result(seed=gen.seed, gen_image=str(gen_png), real_image=real_png and str(real_png),
                      gen_audio=downloads[0], real_audio=real_wav and str(real_wav), downloads=downloads,
                      params=gen.params() | extra, summary="\n\n".join(lines))


def default_inputs(pipeline: MoodPipeline, preset_name: str = FIRST_PRESET) -> dict[str, Any]:
    """The inputs of `generate` as the page starts, the mood at a preset: a preset click at these settings is the
    example made at start."""
    eng = pipeline.engine(None)
    steps = next((s for s in (pipeline.engine(e).default_steps for e in pipeline.engines) if s), 16)
    return dict(valence=PRESETS[preset_name][0], arousal=PRESETS[preset_name][1], seconds=10.0, seed=0,
                randomize=False, engine=eng.name, steps=steps, guidance=eng.default_guidance, nearest_by="mood",
                key=AUTO_KEY, instrument=eng.instruments[0] if eng.instruments else None,
                soundfont=eng.soundfont or (pipeline.soundfonts[0] if pipeline.soundfonts else None))


def make_examples_now(results: Results, requests: list[Request]) -> None:
    """The examples, then a short run of every engine, so no first request waits for a cold engine. Stops once the
    program is exiting (its main thread has ended), when the pipeline's threads take no more work."""
    for request in requests:
        if not threading.main_thread().is_alive():
            return
        results.outputs(request)
    if threading.main_thread().is_alive():
        results.pipeline.warmup()
