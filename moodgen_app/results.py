"""What the app makes for a request: the request checked field by field, then its outputs (audio, spectrograms,
summary, downloads) written once into a `ResultStore` folder and named by path."""
from __future__ import annotations

import contextvars
import hashlib
import io
import json
import queue
import secrets
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import soundfile as sf

from moodgen.atlas import Atlas
from moodgen.audio import to_pcm16
from moodgen.config import shown
from moodgen.files import write_together
from moodgen.generation import Generation, stem_paths
from moodgen.journey import parse_path, validate_waypoints
from moodgen.keys import N_KEYS, key_name
from moodgen.mood import PRESETS, validate_mood
from moodgen.pipeline import NEAREST_BY, MoodPipeline
from moodgen.settings import Settings
from moodgen.shared import SharedWork
from moodgen_app.files import ResultStore
from moodgen_app.guard import APP_LIMITS, MAX_JOURNEY_CHARS
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
    settings: Settings  # checked by the pipeline: defaults filled in
    nearest_by: str
    waypoints: tuple[tuple[float, float, float], ...] | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def instruments(pipeline: MoodPipeline) -> tuple[str, ...]:
    """Every instrument some loaded engine plays its notes on, in menu order."""
    return tuple(dict.fromkeys(i for e in pipeline.engines for i in pipeline.engine(e).instruments))


def read_settings(pipeline: MoodPipeline, randomize: Any, **fields: Any) -> Settings:
    """The settings' inputs as any client may send them (by Settings field) -> checked Settings, or ValueError
    naming the field. What is the app's own: `randomize` (a new seed each time) and the key menu's AUTO_KEY."""
    if not isinstance(randomize, bool):
        raise ValueError(f"randomize must be true or false, got {shown(randomize)}")
    if fields.get("key") == AUTO_KEY:
        fields["key"] = None
    settings = pipeline.settings(**fields)
    return settings.with_changes(seed=secrets.randbelow(pipeline.limits.max_seed + 1)) if randomize else settings


def read_nearest(nearest_by: Any) -> str:
    if nearest_by not in NEAREST_BY:
        raise ValueError(f"nearest must be one of {', '.join(NEAREST_BY)}, got {shown(nearest_by)}")
    return nearest_by


def read_request(pipeline: MoodPipeline, valence: Any, arousal: Any, seconds: Any, randomize: Any, nearest_by: Any,
                 **settings: Any) -> Request:
    """The raw values of the app's inputs for one mood -> a Request, or ValueError naming the field."""
    v, a = validate_mood(valence, arousal)
    return Request(v, a, pipeline.limits.seconds(seconds, field="duration"), read_settings(pipeline, randomize,
                                                                                           **settings),
                   read_nearest(nearest_by))


def read_journey(pipeline: MoodPipeline, path: Any, randomize: Any, nearest_by: Any, **settings: Any) -> Request:
    """A journey's waypoints as text ("0:-0.6,-0.6 10:0.7,0.7": seconds:valence,arousal) and the shared inputs ->
    a Request, or ValueError naming the field or the waypoint."""
    if not isinstance(path, str) or len(path) > MAX_JOURNEY_CHARS:
        raise ValueError(f"journey must be text like '0:-0.6,-0.6 10:0.7,0.7' of at most {MAX_JOURNEY_CHARS} "
                         f"characters, got {shown(path)}")
    points = validate_waypoints(parse_path(path, field="journey"), APP_LIMITS)  # the app's, under the library's
    seconds, v, a = points[-1]
    return Request(v, a, seconds, read_settings(pipeline, randomize, **settings), read_nearest(nearest_by),
                   waypoints=points)


def wav_bytes(audio: Any, sample_rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, to_pcm16(audio), sample_rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def zip_bytes(paths: list[Path]) -> bytes:
    """A zip of the files at `paths`, stored under their names, dated alike (equal files give an equal zip)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.writestr(zipfile.ZipInfo(path.name, date_time=(2020, 1, 1, 0, 0, 0)), path.read_bytes())
    return out.getvalue()


class Results:
    """The app's outputs for a request, made once and kept as files in a `ResultStore`."""

    def __init__(self, pipeline: MoodPipeline, atlas: Atlas | None, store: ResultStore):
        self.pipeline, self.atlas, self.store = pipeline, atlas, store
        self.trust = JudgeTrust.from_metadata(pipeline.judge.metadata) if pipeline.judge is not None else None
        # the nearest real clips' (PNG, WAV) files by (clip id, seconds shown): drawn and encoded once each
        self._real: SharedWork[tuple[bytes | None, bytes | None]] = SharedWork(
            32 << 20, lambda _, files: sum(len(f) for f in files if f is not None))

    def outputs(self, request: Request, progress: gr.Progress | None = None) -> Result:
        """The request's result, made once."""
        return self.store.get(request.digest, lambda folder: self._make(request, folder, progress))

    def stream(self, request: Request, progress: gr.Progress | None = None) -> Iterator[Result]:
        """The request's result as it is made: a new one first holds the clip's audio, seed and summary alone (the
        player starts while the spectrograms are drawn and the nearest real clip found), then all; a kept one comes
        at once. The result is made on a thread of its own, so it is finished and kept even if nobody waits."""
        updates: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        sent = threading.Event()

        def heard(early: Result) -> None:
            updates.put((False, early))
            sent.wait(timeout=1.0)  # the rest waits until the audio is on its way: they share the cores

        def make() -> None:
            try:
                updates.put((True, self.store.get(request.digest,
                                                  lambda folder: self._make(request, folder, progress, heard))))
            except BaseException as exc:  # handed to the caller, raised there
                updates.put((True, exc))

        threading.Thread(target=contextvars.copy_context().run, args=(make,), name="moodgen-result",
                         daemon=True).start()
        while True:
            last, value = updates.get()
            if isinstance(value, BaseException):
                raise value
            yield value  # returns once the caller asks for the next update: this one is sent
            sent.set()
            if last:
                return

    def _make(self, r: Request, folder: Path, progress: gr.Progress | None,
              heard: Callable[[Result], None] | None = None) -> Result:
        if progress is not None:
            progress(0.05, desc="Generating the clip…")
        gen = (self.pipeline.journey(r.waypoints, r.settings) if r.waypoints else
               self.pipeline.generate(r.valence, r.arousal, r.seconds, r.settings))
        if progress is not None:
            progress(0.7, desc="Finding the nearest real clip and drawing…")
        return self.show(gen, folder, r.nearest_by, r.settings.key is not None, heard)

    def recorded(self, key: str, gen: Generation) -> Result:
        """The outputs of a clip made elsewhere (a live stream's recording), kept under `key`."""
        return self.store.get(key, lambda folder: self.show(gen, folder, "mood", False))

    def show(self, gen: Generation, folder: Path, nearest_by: str, key_asked: bool,
             heard: Callable[[Result], None] | None = None) -> Result:
        """A generation's outputs, its files written into `folder`; `heard` is first handed the clip's audio alone
        (see `stream`)."""
        lines = summary_lines(gen, key_asked)
        if gen.judged is not None:
            lines.append(judge_line(gen.judged, self.trust))
        stem = folder / clip_stem(gen)
        wav = stem.with_name(stem.name + ".wav")
        if heard is not None:  # the same bytes `gen.save` writes there below
            write_together({wav: wav_bytes(gen.audio, gen.sample_rate)})
            heard(Result(seed=gen.seed, gen_image=None, real_image=None, gen_audio=str(wav), real_audio=None,
                         downloads=None, params=None, summary="\n\n".join([*lines, "Drawing the spectrograms…"])))
        match = self.pipeline.nearest(gen, nearest_by, self.atlas)
        gen_png = stem.with_name(stem.name + "_mel.png")
        files = {gen_png: mel_png(gen.mel, self.pipeline.mel_params, mel_title(gen), gen.seconds)}
        real_png = real_wav = None
        if match is None:
            lines.append("No reference atlas is loaded, so there is no nearest real clip.")
        else:
            mel_params, name = self.atlas.mel_params, f"nearest_{safe_name(match.entry.clip_id)}"
            real_seconds = None if match.audio is None else len(match.audio) / mel_params.sample_rate
            lines += nearest_lines(gen, match, real_seconds)
            png, wav_data = self._real.get((match.entry.clip_id, gen.seconds), lambda: (
                None if match.mel is None else mel_png(crop_frames(match.mel, mel_params, gen.seconds), mel_params,
                                                       f"nearest real clip: {match.entry.clip_id}", gen.seconds),
                None if match.audio is None else wav_bytes(match.audio, mel_params.sample_rate)))
            if png is not None:
                real_png = folder / f"{name}_mel.png"
                files[real_png] = png
            if wav_data is not None:
                real_wav = folder / f"{name}.wav"
                files[real_wav] = wav_data
        write_together(files)
        extra = {"nearest": match.record()} if match is not None else {}
        downloads = [str(p) for p in gen.save(wav, extra=extra, overwrite=heard is not None)]
        if gen.stems:  # one download for the parts: a zip of their WAVs and the MIDI with a track each
            parts = stem_paths(wav, gen.stems).values()
            kept = [Path(d) for d in downloads if Path(d) not in parts]
            zipped = stem.with_name(stem.name + "_stems.zip")
            write_together({zipped: zip_bytes([*parts, *(p for p in kept if p.suffix == ".mid")])})
            downloads = [*map(str, kept), str(zipped)]
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
