"""Inference: `MoodPipeline.from_checkpoint(...)`, then `generate(valence, arousal, ...)`, `journey(waypoints, ...)`,
`extend(generation, seconds, ...)` or `stream(mood_at, ...)`.

The pipeline holds the engines found in a checkpoints folder (moodgen.engines), the mood judge and the atlas of
real clips. It validates every input against one `Limits`, draws the musical key for the mood, asks the engine for
the clip, masters it, judges what is heard, and caches clips in an LRU bounded in bytes, so a repeated request
answers at once. Music whose mood moves runs through an engine `Session` with a mood curve and a key per frame
(moodgen.journey). Clips, journeys, extensions and stream chunks are computed on the pipeline's own worker thread
(`workers`: one unless asked), whichever threads call it, so memory does not grow with the number of server threads
and torch keeps one team of math threads; identical clip requests made at the same time share one computation.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodgen import audio
from moodgen.atlas import ATLAS_FILE, Atlas, AtlasMatch
from moodgen.config import Limits, MelParams, shown
from moodgen.engines import Continuation, Engine, Session, engine_classes
from moodgen.generation import Generation
from moodgen.journey import (
    KeyState,
    Waypoint,
    close_loop,
    derived_seed,
    fit,
    follow_keys,
    key_changes,
    master_after,
    master_loop,
    mood_curve,
    validate_waypoints,
)
from moodgen.judge import JUDGE_FILE, Judge
from moodgen.keys import key_name, parse_key, sample_keys
from moodgen.memory import TrimmingWorkers
from moodgen.mood import validate_mood
from moodgen.render import DRY, Mastering, at_corpus_level, master
from moodgen.stream import MoodStream
from moodgen.threads import free_cores, math_threads

__all__ = ["CheckpointNotFound", "Generation", "MoodPipeline", "resolve_checkpoint_dir"]
EXTEND_TRANSITION_SECONDS = 4.0  # an extension eases from the clip's last mood to the one asked for over this long
NEAREST_BY = ("mood", "sound")


class CheckpointNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Request:
    """The checked settings of a request, defaults filled in."""

    engine: Engine
    seed: int
    steps: int | None
    guidance: float
    key: str | None  # as asked; None: drawn for the mood
    instrument: str | None
    soundfont: str | None  # None for engines without notes
    mastering: Mastering


def loop_frames(eng: Engine, seconds: float) -> int:
    """A loop's length in frames: its loop point falls on a frame boundary, so its audio lasts `seconds` rounded to
    the engine's frame grid."""
    return int(round(seconds * eng.frame_rate))


def resolve_checkpoint_dir(path: str | Path | None = None) -> Path:
    """A local checkpoints folder, else a snapshot of the Hugging Face Hub repo named by MOODGEN_HF_REPO."""
    files = [e.weights_file for e in engine_classes()]
    folder = Path(path) if path is not None else Path("checkpoints")
    if folder.is_dir() and any((folder / f).is_file() for f in files):
        return folder
    repo = os.environ.get("MOODGEN_HF_REPO")
    if path is None and repo:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(repo_id=repo))
    raise CheckpointNotFound(
        f"no moodgen checkpoint in {folder.resolve()} (expected {' or '.join(files)}). "
        "Train one with `python -m train`, or set MOODGEN_HF_REPO=<user>/<repo> to download one.")


class MoodPipeline:
    def __init__(self, engines: dict[str, Engine], device: torch.device | str = "cpu", judge: Judge | None = None,
                 atlas: Atlas | None = None, limits: Limits | None = None, cache_bytes: int = 64 << 20,
                 workers: int = 1):
        if not engines:
            raise ValueError("a pipeline needs at least one engine")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        params = {e.mel_params for e in engines.values()}
        if len(params) > 1:
            raise ValueError("the engines' MelParams differ")
        self.engines_by_name = engines
        self.mel_params: MelParams = params.pop()
        self.device = torch.device(device)
        self.judge = judge
        self.atlas = atlas
        self.limits = limits or Limits()
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple, Generation] = OrderedDict()
        self._in_flight: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        # All model and signal work runs on these threads, whichever thread asks. A server calls from a pool of many
        # threads, and every thread that runs torch or numpy keeps its own malloc arena and OpenMP team: memory
        # grew with the number of threads that had ever generated, not with the work (benchmarks/soak.py). After
        # each task they give freed memory back (moodgen.memory). One worker by default, so torch keeps one team of
        # OpenMP threads (a second one made every op wait for its team to wake: mel 10 s clip 0.29 -> 0.45-0.6 s on 2
        # cores); each task's team has only the cores other programs leave free (moodgen.threads).
        self._workers = TrimmingWorkers(workers, "moodgen", around=lambda: math_threads(free_cores()))

    @property
    def engines(self) -> tuple[str, ...]:
        """The loaded engines' names, in menu order."""
        return tuple(c.name for c in engine_classes() if c.name in self.engines_by_name)

    @property
    def default_engine(self) -> str:
        return self.engines[0]

    @property
    def soundfonts(self) -> tuple[str, ...]:
        """The soundfonts (file names) some loaded engine plays notes with, each engine's default first."""
        return tuple(dict.fromkeys(s for e in self.engines for s in self.engines_by_name[e].soundfonts))

    def engine(self, name: str | None) -> Engine:
        """The loaded engine `name` (None: the default); ValueError naming the choices otherwise."""
        if name is None:
            return self.engines_by_name[self.default_engine]
        if not isinstance(name, str) or name not in self.engines_by_name:
            raise ValueError(f"engine must be one of {', '.join(self.engines)} (in this checkpoint), "
                             f"got {shown(name)}")
        return self.engines_by_name[name]

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = None, cache_bytes: int = 64 << 20,
                        soundfont: str | Path | None = None, workers: int = 1) -> MoodPipeline:
        """The engines, judge and atlas in a checkpoints folder; `soundfont` plays the notes (default:
        $MOODGEN_SOUNDFONT, else the best General MIDI soundfont installed, else the one pretty_midi ships)."""
        folder = resolve_checkpoint_dir(path)
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        engines = {c.name: c.load(folder, dev, soundfont) for c in engine_classes()
                   if (folder / c.weights_file).is_file()}
        judge = Judge.from_file(folder / JUDGE_FILE, device=dev) if (folder / JUDGE_FILE).is_file() else None
        atlas = Atlas.load(folder / ATLAS_FILE) if (folder / ATLAS_FILE).is_file() else None
        return cls(engines, dev, judge=judge, atlas=atlas, cache_bytes=cache_bytes, workers=workers)

    def generate(self, valence: float, arousal: float, seconds: float = 10.0, seed: int = 0,
                 steps: int | None = None, guidance: float | None = None, engine: str | None = None,
                 key: str | None = None, instrument: str | None = None, dry: bool = False,
                 loop: bool = False, soundfont: str | None = None) -> Generation:
        """A clip for the mood (valence, arousal); identical inputs give identical outputs.

        `key` ("A minor") fixes the musical key; by default the engine's prior draws one for the mood (seeded).
        `instrument` plays the notes of engines that have them (`pipe.engine(name).instruments`), with `soundfont`
        (a file name from `pipe.soundfonts`; None: the engine's default; engines without notes ignore it). The audio is
        mastered with the engine's fixed gain, room and limiter unless `dry`. `loop`: the end flows into the start,
        for music that repeats. Every bad input raises ValueError naming the field."""
        valence, arousal = validate_mood(valence, arousal)
        r = self._request(engine, seed, steps, guidance, key, instrument, dry, soundfont)
        seconds = self.limits.seconds(seconds)
        request = (r.engine.name, valence, arousal, seconds, r.seed, r.steps, r.guidance, r.key, r.instrument,
                   r.soundfont, r.mastering, bool(loop))
        def compute() -> Generation:
            if loop:
                curve = np.tile([valence, arousal], (loop_frames(r.engine, seconds), 1))
                return self._moving(r, seconds, curve, True)
            return self._generate(r, valence, arousal, seconds)

        with self._lock:
            if request in self._cache:
                self._cache.move_to_end(request)
                return self._cache[request]
            future = self._in_flight.get(request)  # an identical request already running: share its result
            owner = future is None
            if owner:
                future = self._in_flight[request] = self._workers.submit(compute)
        if not owner:
            return future.result()
        try:
            result = future.result()
        finally:
            with self._lock:
                self._in_flight.pop(request, None)
        with self._lock:
            self._cache[request] = result
            while sum(g.nbytes for g in self._cache.values()) > self.cache_bytes and self._cache:
                self._cache.popitem(last=False)
        return result

    def _request(self, engine: str | None, seed: int, steps: int | None, guidance: float | None, key: str | None,
                 instrument: str | None, dry: bool, soundfont: str | None = None) -> Request:
        eng = self.engine(engine)
        seed = self.limits.seed(seed)
        steps = None if steps is None else self.limits.steps(steps)  # checked even where the engine ignores it
        steps = (eng.default_steps if steps is None else steps) if eng.uses_steps else None
        guidance = self.limits.guidance(eng.default_guidance if guidance is None else guidance)
        if key is not None:
            if eng.key_prior is None:
                raise ValueError(f"key: engine {eng.name!r} of this checkpoint is not conditioned on a key; "
                                 "leave key unset")
            key = key_name(parse_key(key))
        if instrument is not None and instrument not in eng.instruments:
            choices = f"one of {', '.join(eng.instruments)}" if eng.instruments else f"unset for engine {eng.name!r}"
            raise ValueError(f"instrument must be {choices}, got {shown(instrument)}")
        instrument = instrument or (eng.instruments[0] if eng.instruments else None)
        if soundfont is not None and soundfont not in self.soundfonts:  # checked even where the engine ignores it
            raise ValueError(f"soundfont must be one of {', '.join(self.soundfonts)}, got {shown(soundfont)}")
        soundfont = (soundfont or eng.soundfont) if eng.soundfonts else None
        return Request(eng, seed, steps, guidance, key, instrument, soundfont, DRY if dry else eng.mastering)

    @staticmethod
    def _key_index(eng: Engine, key: str | None, mood: torch.Tensor, seed: int) -> torch.Tensor | None:
        """(1,) the key asked for, else drawn from the engine's prior for mood (1, 2); None without keys."""
        if eng.key_prior is None:
            return None
        return torch.tensor([parse_key(key)]) if key is not None else sample_keys(eng.key_prior, mood, seed)

    def _generate(self, r: Request, valence: float, arousal: float, seconds: float) -> Generation:
        eng, mastering = r.engine, r.mastering
        mood = torch.tensor([[valence, arousal]], dtype=torch.float32)
        key_index = self._key_index(eng, r.key, mood, r.seed)
        key = None if key_index is None else key_name(int(key_index[0]))
        out = eng.generate(mood, seconds, r.seed, r.steps, r.guidance, key_index, r.instrument, r.soundfont)
        wav = np.clip(master(out.audio, self.mel_params.sample_rate, mastering), -1.0, 1.0).astype(np.float32)
        # Judge and display at the corpus' level: the judge reads level as arousal, and the real clip beside this
        # one is a dry render on the same absolute dB scale.
        heard = audio.mel_from_audio(at_corpus_level(wav, mastering), self.mel_params).numpy()
        judged = self._judge(eng, heard, len(wav), mastering, out.midi, out.render)
        continuation = None
        if out.frames is not None:
            frames = out.frames.shape[1]
            continuation = Continuation(out.frames, np.tile([valence, arousal], (frames, 1)),
                                        None if key_index is None else np.full(frames, int(key_index[0])), out.audio)
        return Generation(valence, arousal, seconds, r.seed, r.steps, r.guidance, eng.name, key,
                          heard if out.mel is None else out.mel, wav, self.mel_params.sample_rate, out.midi, judged,
                          eng.sha256, out.render, mastering, continuation=continuation)

    def _judge(self, eng: Engine, heard: np.ndarray, n_samples: int, mastering: Mastering, midi: bytes | None,
               record: dict[str, Any]) -> tuple[float, float] | None:
        """The judge's (valence, arousal) for a clip whose (M, T) mel at the corpus' level is `heard`; notes
        played on another sound than the corpus' are judged as the corpus plays them, mastered alike."""
        if self.judge is None:
            return None
        corpus = eng.as_the_corpus_plays(midi, n_samples, record)
        if corpus is not None:
            heard = audio.mel_from_audio(at_corpus_level(master(corpus, self.mel_params.sample_rate, mastering),
                                                         mastering), self.mel_params).numpy()
        return self.judge.predict(heard)

    def journey(self, waypoints: Iterable[Waypoint], seed: int = 0, engine: str | None = None,
                steps: int | None = None, guidance: float | None = None, key: str | None = None,
                instrument: str | None = None, dry: bool = False, loop: bool = False,
                soundfont: str | None = None) -> Generation:
        """Music whose mood follows waypoints (seconds, valence, arousal): at least two, times increasing, the
        length the last one's time (10 s to 10 min). The mood eases from one waypoint to the next; the key starts
        as asked or drawn for the first mood and modulates when valence crosses zero. The result holds the mood
        curve used (`curve`, per engine frame) and the key changes."""
        r = self._request(engine, seed, steps, guidance, key, instrument, dry, soundfont)
        points = validate_waypoints(waypoints, self.limits)
        frames = loop_frames(r.engine, points[-1][0]) if loop else r.engine.frames_for(points[-1][0])
        curve = mood_curve(points, frames, r.engine.frame_rate)
        return self._workers.run(lambda: self._moving(r, points[-1][0], curve, loop, waypoints=points))

    def _moving(self, r: Request, seconds: float, curve: np.ndarray, loop: bool, **record: Any) -> Generation:
        """Sample and render a mood curve (T, 2) in one session; a loop also samples its overrun and closes."""
        eng, sr, frames = r.engine, self.mel_params.sample_rate, len(curve)
        key_index = self._key_index(eng, r.key, torch.tensor(curve[:1], dtype=torch.float32), r.seed)
        keys = None if key_index is None else follow_keys(
            curve[:, 0], KeyState.start(int(key_index[0]), float(curve[0, 0])), eng.frame_rate)[0]
        session = eng.session(r.seed, r.steps, r.guidance, instrument=r.instrument, soundfont=r.soundfont)
        if loop:
            wrap = session.loop_overrun_frames
            back = mood_curve([(0.0, *curve[-1]), (wrap / eng.frame_rate, *curve[0])], wrap, eng.frame_rate)
            session.advance(np.concatenate([curve, back]), None if keys is None else
                            np.concatenate([keys, keys[:wrap]]), wrap=wrap)
            n = session.samples_for(frames)
            dry = close_loop(session.render(), n, int(round(session.loop_crossfade_seconds * sr)))
            wav, markers = master_loop(dry, sr, r.mastering), [(0.0, "loopStart"), (frames / eng.frame_rate, "loopEnd")]
        else:
            session.advance(curve, keys)
            dry = fit(session.render(), int(round(seconds * sr)))
            wav, markers = master(dry, sr, r.mastering), []
        return self._finish(r, session, curve, keys, wav, dry, seconds, markers, loop=loop, **record)

    def _finish(self, r: Request, session: Session, curve: np.ndarray, keys: np.ndarray | None, wav: np.ndarray,
                dry: np.ndarray, seconds: float, markers: list[tuple[float, str]], **record: Any) -> Generation:
        """The Generation of what a session made: the first len(curve) frames, their audio (mastered, and `dry`
        for a continuation), judged at the corpus' level."""
        eng, frames = r.engine, len(curve)
        wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
        changes = key_changes(keys, eng.frame_rate) if keys is not None else []
        heard = audio.mel_from_audio(at_corpus_level(wav, r.mastering), self.mel_params).numpy()
        own = session.mel(0, frames)
        continuation = Continuation(session.frames[:, :frames], curve, keys, np.asarray(dry, np.float32))
        midi = session.midi(0, frames, changes, markers)
        judged = self._judge(eng, heard, len(wav), r.mastering, midi, session.render_record)
        session.close()
        return Generation(float(curve[-1, 0]), float(curve[-1, 1]), seconds, r.seed, r.steps, r.guidance, eng.name,
                          None if keys is None else key_name(int(keys[0])), heard if own is None else own, wav,
                          self.mel_params.sample_rate, midi, judged, eng.sha256,
                          session.render_record, r.mastering, curve=curve, frame_rate=eng.frame_rate,
                          key_changes=tuple((t, key_name(k)) for t, k in changes), continuation=continuation,
                          **record)

    def extend(self, generation: Generation, seconds: float, valence: float | None = None,
               arousal: float | None = None) -> Generation:
        """`generation` continued by `seconds` from its end: its audio unchanged, then more music, easing from its
        last mood to (valence, arousal) (either left out: as it ends), in its key unless valence crosses zero, on
        its instrument, soundfont and mastering. The same engine and checkpoint must be loaded; the total stays
        within the journey limit."""
        return self._workers.run(self._extend, generation, seconds, valence, arousal)

    def _extend(self, generation: Generation, seconds: float, valence: float | None = None,
                arousal: float | None = None) -> Generation:
        """The work of `extend`, on a worker thread."""
        before = generation.continuation
        if before is None:
            raise ValueError(f"generation: engine {generation.engine!r} made it without a way to continue it")
        eng = self.engine(generation.engine)
        if generation.checkpoint_sha256 != eng.sha256:
            raise ValueError(f"generation: made with checkpoint {generation.checkpoint_sha256[:12]}..., but engine "
                             f"{eng.name!r} here is {eng.sha256[:12]}...")
        seconds = self.limits.extension_seconds(seconds)
        total = generation.seconds + seconds
        if total > self.limits.max_journey_seconds:
            raise ValueError(f"seconds: the extended clip would last {total:g} s, over the "
                             f"{self.limits.max_journey_seconds:g} s limit")
        last = before.moods[-1]
        target = validate_mood(last[0] if valence is None else valence, last[1] if arousal is None else arousal)
        old = before.frames.shape[1]
        new = max(1, eng.frames_for(total) - old)
        ease = min(EXTEND_TRANSITION_SECONDS, new / eng.frame_rate)
        curve = mood_curve([(0.0, *last), (ease, *target)], new, eng.frame_rate, start=1 / eng.frame_rate)
        keys = None
        if before.keys is not None:
            _, state = follow_keys(before.moods[:, 0], KeyState.start(int(before.keys[0]), float(before.moods[0, 0])),
                                   eng.frame_rate)
            keys = follow_keys(curve[:, 0], state, eng.frame_rate)[0]
        r = Request(eng, generation.seed, generation.steps, generation.guidance, None,
                    generation.render.get("instrument"), generation.render.get("soundfont"), generation.mastering)
        session = eng.session(derived_seed(r.seed, old), r.steps, r.guidance, before, r.instrument, r.soundfont)
        session.advance(curve, keys)
        sr = self.mel_params.sample_rate
        dry = fit(session.render(), int(round(total * sr)) - len(before.audio))
        wav = np.concatenate([generation.audio, master_after(before.audio, dry, generation.audio, sr, r.mastering)])
        extension = {"seconds": seconds, "valence": None if valence is None else target[0],
                     "arousal": None if arousal is None else target[1]}
        return self._finish(r, session, np.concatenate([before.moods, curve]),
                            None if keys is None else np.concatenate([before.keys, keys]), wav,
                            np.concatenate([before.audio, dry]), total, [], waypoints=generation.waypoints,
                            extensions=(*generation.extensions, extension), stream=generation.stream)

    def stream(self, mood_at: Callable[[], tuple[float, float]], chunk_seconds: float = 1.0, seed: int = 0,
               engine: str | None = None, steps: int | None = None, guidance: float | None = None,
               key: str | None = None, instrument: str | None = None, dry: bool = False,
               soundfont: str | None = None) -> MoodStream:
        """A live stream: iterate it for chunks of about `chunk_seconds` of audio, each continuing the last.
        `mood_at()` is called before each chunk and returns the current (valence, arousal); the chunk eases from
        the previous mood to it. `close()` ends it and returns what was played as a Generation (`.save()` writes
        WAV, JSON and MIDI)."""
        r = self._request(engine, seed, steps, guidance, key, instrument, dry, soundfont)
        chunk_seconds = self.limits.chunk_seconds(chunk_seconds)
        sr = self.mel_params.sample_rate

        def finish(session: Session, curve: np.ndarray, keys: np.ndarray | None, wav: np.ndarray,
                   dry_audio: np.ndarray, moods: list[tuple[float, float]]) -> Generation:
            return self._finish(r, session, curve, keys, wav, dry_audio, len(wav) / sr, [],
                                stream={"chunk_seconds": chunk_seconds, "moods": [list(m) for m in moods]})

        session = self._workers.run(lambda: r.engine.session(r.seed, r.steps, r.guidance, instrument=r.instrument,
                                                             soundfont=r.soundfont))
        return MoodStream(session,
                          r.engine.frame_rate, sr, chunk_seconds, mood_at,
                          lambda mood: self._key_index(r.engine, r.key, mood, r.seed), r.mastering, finish,
                          self._workers.run)

    def nearest(self, generation: Generation, by: str = "mood", atlas: Atlas | None = None) -> AtlasMatch | None:
        """The real clip nearest a generation in `atlas` (default: the checkpoint's), by mood (distance on the pad)
        or by sound (the atlas' spectral embedding); None without an atlas."""
        atlas = self.atlas if atlas is None else atlas
        if by not in NEAREST_BY:
            raise ValueError(f"nearest must be one of {', '.join(NEAREST_BY)}, got {shown(by)}")
        if atlas is None:
            return None
        if by == "sound":
            return self._workers.run(lambda: atlas.nearest_by_sound(atlas.embed(generation.mel)))
        return self._workers.run(atlas.nearest_by_mood, generation.valence, generation.arousal)

    def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """fn(*args) on the pipeline's worker thread. Torch work done beside the pipeline's (an engine called
        directly, a benchmark) belongs there too, so the process keeps one team of math threads (see __init__)."""
        return self._workers.run(fn, *args)

    def warmup(self) -> None:
        """Run each engine once on a short clip, and a short stream where it has sessions (which leaves a loaded
        synth behind), so the first real request is fast."""
        for name in self.engines:
            eng = self.engines_by_name[name]
            steps = 2 if eng.uses_steps else None  # 2 flow steps
            self._workers.run(self._generate, self._request(name, 0, steps, 1.0, None, None, False), 0.0, 0.0, 2.0)
            try:
                live = self.stream(lambda: (0.0, 0.0), chunk_seconds=0.25, engine=name, steps=steps)
            except ValueError:  # an engine without sessions
                continue
            next(live)
            live.close()
