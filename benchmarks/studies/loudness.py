"""Loudness per preset x engine x soundfont x instrument, dry and mastered; mood correlates per instrument; render
and mastering times per 10 s of audio.

    python -m benchmarks.studies.loudness [--checkpoint checkpoints] [--seeds 3] [--repeats 5]

Each preset gets `seeds` 10 s clips per engine from the shipped checkpoint. The note engine's MIDI is played by
every soundfont `moodgen.render.find_soundfonts` finds with every instrument (level-matched, as the renderer
does); the mel engine's audio is used as is. "Dry" is the render; "mastered" is `mastering.master` with the engine's
each engine's `mastering`. Loudness: ITU-R BS.1770-4 integrated (LUFS), true peak (dBTP, x8 oversampled at
22.05 kHz) and EBU Tech 3342 loudness range (LRA, LU) from pyloudnorm; medians over the seeds (true peak: the
maximum). Mood correlates (`train.evaluate.mood_correlates`), dry and mastered: onset rate and major-minus-minor
of the constant-Q chroma. The mood judge's arousal on dry, mastered, and mastered audio at corpus level
(`mastering.at_corpus_level`). Times are wall clock: the section states the load average they ran under. Writes the
"Loudness and rendering" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pretty_midi

from benchmarks.results import command, machine, update_section
from moodgen import audio, mastering, midi, render
from moodgen.engines import engine_class, engine_classes
from moodgen.mood import PRESETS
from moodgen.pipeline import MoodPipeline
from train.evaluation.correlates import mood_correlates

SECONDS = 10.0


def fit(y: np.ndarray, n: int) -> np.ndarray:
    """(S,) -> (n,): the engine's own pad-or-cut to the clip length."""
    return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)


def clips(pipe: MoodPipeline, renderers: list[render.SoundfontRenderer], seeds: int) -> dict:
    """{(source, preset): [(engine, audio (S,), key)]}, source "mel" or "<soundfont> <instrument>"."""
    n = int(round(SECONDS * pipe.mel_params.sample_rate))
    out: dict = {}
    for preset, (v, a) in PRESETS.items():
        for seed in range(1, seeds + 1):
            g = pipe.generate(v, a, SECONDS, seed=seed, engine="mel", dry=True)
            out.setdefault(("mel", preset), []).append(("mel", g.audio, g.key))
            g = pipe.generate(v, a, SECONDS, seed=seed, engine="notes", dry=True)
            pm = pretty_midi.PrettyMIDI(io.BytesIO(g.midi))
            for r in renderers:
                for instrument in render.INSTRUMENTS:
                    y = fit(r.render(render.with_instrument(pm, instrument)), n)
                    out.setdefault((f"{r.name} {instrument}", preset), []).append(("notes", y, g.key))
    return out


def measure(all_clips: dict, pipe: MoodPipeline) -> tuple[dict, dict, dict]:
    """{(source, preset, stage): [Loudness]}, {(source, preset, stage): [mood correlates]} for stages "dry" and
    "mastered", and {(source, preset, stage): [judged arousal]} also for "corpus level"
    (`mastering.at_corpus_level`)."""
    sr = pipe.mel_params.sample_rate
    loud: dict = {}
    corr: dict = {}
    judged: dict = {}
    for (source, preset), items in all_clips.items():
        for engine, y, key in items:
            settings = engine_class(engine).mastering
            mastered = mastering.master(y, sr, settings)
            for stage, heard in (("dry", y), ("mastered", mastered)):
                loud.setdefault((source, preset, stage), []).append(mastering.measure_loudness(heard, sr))
                c = mood_correlates(heard, sr, key)
                c["lufs"] = loud[(source, preset, stage)][-1].lufs
                corr.setdefault((source, preset, stage), []).append(c)
            for stage, heard in (("dry", y), ("mastered", mastered),
                                 ("corpus level", mastering.at_corpus_level(mastered, settings))):
                arousal = pipe.judge.predict(audio.mel_from_audio(heard, pipe.mel_params).numpy())[1]
                judged.setdefault((source, preset, stage), []).append(arousal)
    return loud, corr, judged


def judge_table(judged: dict, sources: list[str]) -> list[str]:
    stages = ("dry", "mastered", "corpus level")
    lines = ["| source | " + " | ".join(PRESETS) + " |", "|---|" + "---|" * len(PRESETS)]
    for source in sources:
        cells = [" / ".join(f"{np.mean(judged[(source, p, s)]):+.2f}" for s in stages) for p in PRESETS]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines


def loudness_table(loud: dict, sources: list[str], stage: str) -> list[str]:
    lines = ["| source | " + " | ".join(PRESETS) + " | happy - sad (LU) |", "|---|" + "---|" * (len(PRESETS) + 1)]
    for source in sources:
        cells, lufs = [], {}
        for preset in PRESETS:
            ms = loud[(source, preset, stage)]
            lufs[preset] = statistics.median(m.lufs for m in ms)
            lra = statistics.median(m.lra_lu for m in ms)
            cells.append(f"{lufs[preset]:.1f} / {max(m.true_peak_dbtp for m in ms):.1f} / {lra:.1f}")
        lines.append(f"| {source} | " + " | ".join(cells) + f" | {lufs['happy'] - lufs['sad']:.1f} |")
    return lines


def correlates_table(corr: dict, sources: list[str]) -> list[str]:
    """Per preset: onset rate and mode of the mastered audio; then, dry -> mastered, the split each mood axis
    should show."""
    def med(source: str, preset: str, name: str, stage: str = "mastered") -> float:
        return statistics.median(c[name] for c in corr[(source, preset, stage)])

    def splits(source: str, stage: str) -> tuple[float, float, float, float]:
        arousal = [(med(source, "happy", n, stage) + med(source, "angry", n, stage)
                    - med(source, "sad", n, stage) - med(source, "relaxed", n, stage)) / 2
                   for n in ("lufs", "onset_rate")]
        valence = (med(source, "happy", "mode", stage) + med(source, "relaxed", "mode", stage)
                   - med(source, "angry", "mode", stage) - med(source, "sad", "mode", stage)) / 2
        in_mode = float(np.mean([c["in_mode"] for p in PRESETS for c in corr[(source, p, stage)]]))
        return arousal[0], arousal[1], valence, in_mode

    lines = ["| source | " + " | ".join(f"{p} on/s, mode" for p in PRESETS)
             + " | arousal split LUFS | arousal split on/s | valence split mode | in key's mode |",
             "|---|" + "---|" * (len(PRESETS) + 4)]
    for source in sources:
        cells = [f"{med(source, p, 'onset_rate'):.1f}, {med(source, p, 'mode'):+.2f}" for p in PRESETS]
        dry, mastered = splits(source, "dry"), splits(source, "mastered")
        formats = ("{:+.1f}", "{:+.1f}", "{:+.2f}", "{:.2f}")
        cells += [f"{f.format(a)} -> {f.format(b)}" for f, a, b in zip(formats, dry, mastered)]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines


def median_time(fn, repeats: int, setup=lambda: None) -> float:
    """Median seconds of `fn(setup())` over `repeats` runs after one warm-up, `setup` untimed."""
    fn(setup())
    times = []
    for _ in range(repeats):
        arg = setup()
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timing_table(pm: pretty_midi.PrettyMIDI, audio: np.ndarray, sr: int, repeats: int) -> list[str]:
    """Seconds per 10 s clip (`pm` and its (S,) `audio`), medians of `repeats` runs."""
    rows = []
    for path in render.find_soundfonts():
        loaded = render.SoundfontRenderer(sr, path)
        fresh = functools.partial(render.SoundfontRenderer, sr, path)
        rows += [
            (f"{path.name}: load (once per renderer)", median_time(lambda _, f=fresh: f(), repeats)),
            (f"{path.name}: render, soundfont loaded once",
             median_time(lambda _, r=loaded: r.render(pm), repeats)),
            (f"{path.name}: load + render, every call", median_time(lambda _, f=fresh: f().render(pm), repeats)),
            (f"{path.name}: level match of one instrument (first use)",
             median_time(lambda r: r.level_trim_db(render.INSTRUMENTS["strings"]), repeats, fresh)),
        ]
    rows.append(("midi.render_midi (bundled soundfont, loads every call)",
                 median_time(lambda _: midi.render_midi(pm, sr), repeats)))
    notes_mastering = engine_class("notes").mastering
    notes_gain = notes_mastering.gain_db
    stages = {"gain + true-peak limiter": mastering.Mastering(gain_db=notes_gain),
              "gain + reverb (no limiter)": mastering.Mastering(gain_db=notes_gain, reverb_wet=0.1, ceiling_dbtp=None),
              "master (notes engine: gain, reverb, limiter)": notes_mastering}
    for name, settings in stages.items():
        rows.append((name, median_time(lambda _, s=settings: mastering.master(audio, sr, s), repeats)))
    rows.append(("measure_loudness (LUFS, true peak, LRA)",
                 median_time(lambda _: mastering.measure_loudness(audio, sr), repeats)))
    return ["| step (10 s clip) | seconds |", "|---|---|"] + [f"| {name} | {t:.3f} |" for name, t in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    pipe = MoodPipeline.from_checkpoint(args.checkpoint)
    sr = pipe.mel_params.sample_rate
    renderers = [render.SoundfontRenderer(sr, path) for path in render.find_soundfonts()]
    all_clips = clips(pipe, renderers, args.seeds)
    loud, corr, judged = measure(all_clips, pipe)
    sources = ["mel"] + [f"{r.name} {i}" for r in renderers for i in render.INSTRUMENTS]
    happy = pipe.generate(*PRESETS["happy"], SECONDS, seed=1, engine="notes", dry=True)
    load = os.getloadavg()[0]
    timing = timing_table(pretty_midi.PrettyMIDI(io.BytesIO(happy.midi)), happy.audio, sr, args.repeats)
    settings = "; ".join(f"{c.name}: gain {c.mastering.gain_db:+g} dB, reverb wet {c.mastering.reverb_wet:g} "
                         f"(room {c.mastering.room_size:g}), ceiling {c.mastering.ceiling_dbtp:g} dBTP"
                         for c in engine_classes())
    trims = "; ".join(f"{r.name}: " + ", ".join(f"{i} {r.level_trim_db(p):+.2f}" for i, p in render.INSTRUMENTS.items())
                      for r in renderers)
    body = [f"{machine()}; `{command()}`; {args.seeds} seeds x {len(PRESETS)} presets, {SECONDS:g} s clips at "
            f"{sr} Hz. Mastering ({settings}). Level match (dB added per instrument): {trims}.", "",
            "Mastered, what the user hears. Cells: LUFS integrated / true peak dBTP (max) / LRA LU.", "",
            *loudness_table(loud, sources, "mastered"), "",
            "Dry (the render, level-matched; the mel engine's inverted audio).", "",
            *loudness_table(loud, sources, "dry"), "",
            "Mood correlates (medians): onsets per second and major-minus-minor per preset, mastered; then dry -> "
            "mastered: arousal split = (happy + angry - sad - relaxed) / 2 of LUFS and of onsets per second, "
            "valence split = (happy + relaxed - angry - sad) / 2 of the mode, in key's mode = share of clips whose "
            "heard mode is the mode of the key the engine was given.", "",
            *correlates_table(corr, sources), "",
            "The mood judge's arousal (mean over seeds): dry / mastered / mastered at corpus level (the fixed gain "
            "taken back, room and limiter kept). The judge learned level from the dry corpus renders.", "",
            *judge_table(judged, sources), "",
            f"Render and mastering time, median of {args.repeats} runs (load average {load:.1f} when they began).",
            "", *timing]
    update_section("Loudness and rendering (benchmarks/studies/loudness.py)", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
