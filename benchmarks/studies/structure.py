"""Musical structure of real and generated clips: "pulses over drones" as numbers.

    python -m benchmarks.studies.structure [--checkpoint checkpoints] [--emopia ../shared/data/emopia/EMOPIA_1.0]
                                   [--seconds 10] [--seeds 8] [--diagnostic-seeds 4]

Rows: every held-out EMOPIA test clip (rendered from its MIDI with the sustain pedal, the corpus' renderer; centre
crops); the same crops turned into the shared log-mel and back through the learned inverter (copy synthesis: what
the representation and the inverter keep of the structure); every engine at its defaults, dry and played with the
corpus' soundfont, and the seed's cGAN on the 4 presets x `seeds`; every engine as the app plays it (default
soundfont, room, limiter) on `diagnostic-seeds`; a control of pulses over a drone (one piano chord struck on a
steady beat). Then, for each engine that samples in steps, diagnostics of what might close its gap: 4x the sampling
steps, less guidance, and clips as long as its training crops (3 s) against 3 s windows of its 10 s clips and of
the real crops. The measures are train/evaluation/structure.py's. Writes the "Musical structure" section of
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pretty_midi
import torch

from benchmarks import results
from benchmarks.results import command, machine, publish
from moodgen import audio, cgan, midi
from moodgen.config import MelParams
from moodgen.inverter import default_inversion, load_inverter
from moodgen.mood import PRESETS, quadrant_by_number
from moodgen.pipeline import MoodPipeline
from moodgen.render import default_soundfont
from train.corpus.emopia import list_clips
from train.evaluation.structure import MEASURES, structure_measures, structure_summary

HEADS = ("chroma change /s", "pitch-class turnover /s", "onset-interval entropy (bits)", "beat-to-beat change (dB)")
SHORT_S = 3.0  # the mel engine's training crops: 256 frames


def centre(y: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    n = int(round(seconds * sample_rate))
    start = max(0, (len(y) - n) // 2)
    return y[start:start + n]


def real_clips(root: Path, seconds: float, sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """(quadrant name, centre crop) of every test-split clip, rendered as the corpus renders it."""
    clips = [c for c in list_clips(root)[0] if c.split == "test"]
    return [(quadrant_by_number(c.quadrant).name,
             centre(midi.render_midi(midi.apply_sustain(midi.load_midi(c.path)), sample_rate), seconds, sample_rate))
            for c in clips]


def pulse_over_drone(seconds: float, sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """Four controls: one chord (C, Am, F, G) struck every 0.4-0.75 s, each strike ringing into the next."""
    out = []
    for period, chord in zip((0.4, 0.5, 0.6, 0.75), ((48, 60, 64, 67), (45, 57, 60, 64), (41, 53, 57, 60),
                                                     (43, 55, 59, 62))):
        pm = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(program=midi.PIANO_PROGRAM)
        inst.notes = [pretty_midi.Note(80, p, t, t + period) for t in np.arange(0, seconds, period) for p in chord]
        pm.instruments.append(inst)
        out.append(("control", midi.render_midi(pm, sample_rate)[: int(seconds * sample_rate)]))
    return out


def preset_clips(generate, seeds: int) -> list[tuple[str, np.ndarray, int]]:
    """(preset, audio, sample rate) for the 4 presets x `seeds`; `generate(v, a, seed) -> (audio, sample rate)`."""
    return [(name, *generate(v, a, seed)) for name, (v, a) in PRESETS.items() for seed in range(seeds)]


def engine_generator(pipe: MoodPipeline, engine: str, seconds: float, dry: bool = True, **kw):
    """generate(v, a, seed) -> (audio, sample rate) with one engine, dry unless told; `kw`: steps, guidance."""
    def generate(valence: float, arousal: float, seed: int) -> tuple[np.ndarray, int]:
        g = pipe.generate(valence, arousal, seconds, seed=seed, engine=engine, dry=dry, **kw)
        return np.asarray(g.audio, dtype=np.float32), g.sample_rate
    return generate


def generated_and_measured(generate, seeds: int) -> dict:
    return measured(preset_clips(generate, seeds))


def windows(y: np.ndarray, seconds: float, sample_rate: int) -> list[np.ndarray]:
    n = int(round(seconds * sample_rate))
    return [y[s:s + n] for s in range(0, len(y) - n + 1, n)]


def measured(clips, sample_rate: int | None = None, window_s: float | None = None) -> dict:
    """Summary over (group, audio[, sample rate]) clips; with `window_s`, each clip's measures are the mean over
    its windows of that length."""
    values, groups = [], []
    for group, y, *sr in clips:
        rate = sr[0] if sr else sample_rate
        parts = windows(y, window_s, rate) if window_s else [y]
        each = [structure_measures(p, rate) for p in parts]
        values.append({m: float(np.mean([e[m] for e in each])) for m in MEASURES})
        groups.append(group)
    return {"summary": structure_summary(values, groups), "values": values, "groups": groups}


def cells(summary: dict) -> str:
    return " | ".join(f"{summary[m]['mean']:.2f} +- {summary[m]['se']:.2f}" for m in MEASURES)


def table(rows: dict[str, dict]) -> list[str]:
    lines = ["| row | clips | " + " | ".join(HEADS) + " |", "|---" * (len(HEADS) + 2) + "|"]
    return lines + [f"| {name} | {r['summary'][MEASURES[0]]['n']} | {cells(r['summary'])} |"
                    for name, r in rows.items()]


def by_group(rows: dict[str, dict]) -> list[str]:
    lines = ["| row | preset / quadrant | " + " | ".join(HEADS) + " |", "|---" * (len(HEADS) + 2) + "|"]
    for name, r in rows.items():
        for g in sorted(set(r["groups"]), key=lambda g: list(PRESETS).index(g) if g in PRESETS else 9):
            vals = [v for v, gg in zip(r["values"], r["groups"]) if gg == g]
            lines.append(f"| {name} | {g} | " + " | ".join(f"{np.mean([v[m] for v in vals]):.2f}" for m in MEASURES)
                         + " |")
    return lines


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, seconds=10.0, seeds=8)
    ap.add_argument("--emopia", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--diagnostic-seeds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 threads on busy shared cores ran "
                    "generation 20x slower than 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    params = MelParams()
    sr = params.sample_rate
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, soundfont=midi.soundfont_path())  # the corpus' piano
    walls: dict[str, float] = {}

    def timed(name: str, make, *a, **kw):
        t0 = time.time()
        out = make(*a, **kw)
        walls[name] = time.time() - t0
        print(f"{name}: {walls[name]:.0f} s", flush=True)
        return out

    real = timed("render real", real_clips, args.emopia, args.seconds, sr)
    inverter = load_inverter(args.checkpoint)
    copies = [(g, default_inversion(audio.mel_from_audio(y, params).numpy(), params, inverter)) for g, y in real]
    rows = {f"real held-out EMOPIA (test split, {len(real)} clips)": timed("real", measured, real, sr),
            "real, copy synthesis (log-mel -> inverter)": timed("copy synthesis", measured, copies, sr)}
    generated = {}
    for engine in pipe.engines:
        generated[engine] = timed(f"generate {engine}", preset_clips,
                                  engine_generator(pipe, engine, args.seconds), args.seeds)
        rows[f"moodgen {engine}"] = timed(f"measure {engine}", measured, generated[engine])
    n = args.diagnostic_seeds
    heard = MoodPipeline.from_checkpoint(args.checkpoint)
    for engine in heard.engines:
        as_heard = engine_generator(heard, engine, args.seconds, dry=False)
        rows[f"moodgen {engine}, as heard ({n} seeds)"] = timed(f"{engine} as heard", generated_and_measured,
                                                                as_heard, n)
    baseline = cgan.load(args.checkpoint / "cgan.safetensors")
    rows["seed's cGAN"] = timed("cgan", generated_and_measured,
                                lambda v, a, s: baseline.generate_audio(v, a, args.seconds, s), args.seeds)
    rows["control: one chord struck on a steady beat"] = measured(pulse_over_drone(args.seconds, sr), sr)

    diagnostics = {}
    for engine in (e for e in pipe.engines if pipe.engine(e).uses_steps):
        eng = pipe.engine(engine)

        def variant(seconds=args.seconds, engine=engine, **kw):
            return generated_and_measured(engine_generator(pipe, engine, seconds, **kw), n)
        subset = [c for i, c in enumerate(generated[engine]) if i % args.seeds < n]  # its first n seeds per preset
        diagnostics[f"{engine}: defaults ({eng.default_steps} steps, guidance {eng.default_guidance:g})"] = \
            measured(subset)
        diagnostics[f"{engine}: {4 * eng.default_steps} steps"] = timed(
            f"{engine} steps", variant, steps=4 * eng.default_steps)
        diagnostics[f"{engine}: guidance 1.5"] = timed(f"{engine} guidance", variant, guidance=1.5)
        diagnostics[f"{engine}: {SHORT_S:g} s clips (its training crop length)"] = timed(
            f"{engine} short", variant, seconds=SHORT_S)
        diagnostics[f"{engine}: {SHORT_S:g} s windows of its {args.seconds:g} s clips"] = measured(
            subset, window_s=SHORT_S)
    if diagnostics:
        diagnostics[f"real: {SHORT_S:g} s windows of the crops"] = timed(
            "real windows", measured, real, sr, window_s=SHORT_S)

    load = os.getloadavg()
    lines = [f"{machine()}; `{command()}`; {time.time() - start:.0f} s wall at nice 10, load average "
             f"{load[0]:.1f} on the shared cores. {args.seconds:g} s clips; generated rows: 4 presets x {args.seeds} "
             "seeds at each engine's defaults, dry and played with the corpus' soundfont (TimGM6mb) like the real "
             f"clips; 'as heard' rows: what the app plays ({default_soundfont().name} where notes are played, the "
             "engine's room and limiter). Mean +- one standard error over clips, each preset / quadrant "
             "weighted equally (train/evaluation/structure.py: chroma change = summed cosine distance between the "
             "constant-Q chroma of consecutive 1/4 s blocks per second; turnover = pitch classes per second that "
             "become strong in a 1 s window; onset-interval entropy over 93 ms bins, lowest over bin phases; "
             "beat-to-beat change = mean |dB| difference of the constant-Q spectrum between consecutive beats).", "",
             *table(rows), "", "Per preset (real rows: per quadrant), means:", "", *by_group(rows)]
    if diagnostics:
        lines += ["", f"What moves the engines that sample in steps ({n} seeds x 4 presets per row; the 3 s rows "
                  "are measured on 3 s audio, so compare them with each other only):", "", *table(diagnostics), "",
                  "Per preset, means:", "", *by_group(diagnostics)]
    publish("Musical structure", "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
