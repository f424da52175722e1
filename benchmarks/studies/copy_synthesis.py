"""Copy synthesis: invert the cached log-mel of held-out clips back to audio and compare with the original audio.

    nice -n 10 python -m benchmarks.studies.copy_synthesis [--clips 24] [--seconds 10] [--repeats 5] [--threads 2]

Clips: the TEST split (untransposed), one centred excerpt of `--seconds` from each clip at least that long, evenly
spaced over the sorted list. Input: the cached normalized log-mel (what the generator learns to produce). Metrics
against the original excerpt: spectral convergence (SC, linear STFT magnitude at MelParams resolution), log-spectral
distance (LSD, dB, power floored at MelParams.db_min), multi-resolution STFT distance (MR-STFT: mean over FFT sizes
512/1024/2048 of SC + L1 of log magnitude), computed on one torch thread (results do not depend on threads). Time:
median over `--repeats` runs of the whole mel -> audio call on the first clip, on 1 and on `--threads` torch threads.
Writes the "Copy synthesis (mel inversion)" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from benchmarks import results
from benchmarks.results import command, machine, update_section
from moodgen import audio
from moodgen.config import MelParams
from moodgen.inverter import DEFAULT_N_ITER, MelInverter, mel_to_audio, phase_vocoder_phase
from train.corpus.cache import CorpusCache

MR_FFTS = (512, 1024, 2048)  # metric resolutions around the model's own n_fft; hop = n_fft / 4


def log_spectral_distance(ref: torch.Tensor, est: torch.Tensor, params: MelParams) -> float:
    """Mean over frames of the RMS (over bins) dB difference of STFT power, both floored at db_min."""
    floor = 10 ** (params.db_min / 10)
    a = 10 * audio.magnitude_from_audio(ref, params).pow(2).clamp_min(floor).log10()
    b = 10 * audio.magnitude_from_audio(est, params).pow(2).clamp_min(floor).log10()
    return float((a - b).pow(2).mean(dim=0).sqrt().mean())


def mr_stft_distance(ref: torch.Tensor, est: torch.Tensor) -> float:
    total = 0.0
    for n_fft in MR_FFTS:
        window = torch.hann_window(n_fft)
        a, b = (torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs() for x in (ref, est))
        sc = torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp_min(1e-12)
        log_l1 = (a.clamp_min(1e-5).log() - b.clamp_min(1e-5).log()).abs().mean()
        total += float(sc + log_l1)
    return total / len(MR_FFTS)


def excerpts(cache: CorpusCache, params: MelParams, n_clips: int, seconds: float) -> list[tuple[str, np.ndarray,
                                                                                                np.ndarray]]:
    """[(clip_id, mel (M, T), reference audio (S,))] for `n_clips` test clips, S = (T - 1) * hop."""
    frames = params.frames_for(seconds)
    items = [it for it in cache.select("test", transpose=0) if it["mel"][1] >= frames]
    if len(items) < n_clips:
        raise SystemExit(f"only {len(items)} test clips of at least {seconds} s; asked for {n_clips}")
    picks = [items[i] for i in np.linspace(0, len(items) - 1, n_clips).round().astype(int)]
    out = []
    for it in picks:
        mel = cache.mel(it)
        t0 = (mel.shape[1] - frames) // 2
        start = t0 * params.hop_length
        out.append((it["clip_id"], mel[:, t0:t0 + frames],
                    cache.audio(it)[start:start + (frames - 1) * params.hop_length]))
    return out


def methods(inverter, params: MelParams) -> dict[str, tuple[str, int, object]]:
    """name -> (magnitude source + phase start, GL iterations, mel -> audio function)."""
    def make(method: str, n_iter: int, phase_init: str = "vocoder"):
        return lambda mel: mel_to_audio(mel, params, method, inverter=inverter, n_iter=n_iter, phase_init=phase_init)

    table = {"librosa-32": ("librosa mel_to_audio (seed's path)", 32, make("librosa", 32)),
             "pinv-rand-32": ("pseudo-inverse, random phase", 32, make("fast_gl", 32, "random")),
             "pinv-voc-16": ("pseudo-inverse, vocoder phase", 16, make("fast_gl", 16))}
    table["learned-rand-32"] = ("learned, random phase", 32, make("learned", 32, "random"))
    for n in (0, 8, 16, 32):
        table[f"learned-voc-{n}"] = ("learned, vocoder phase", n, make("learned", n))
    return table


def main(argv: list[str] | None = None) -> None:
    ap = results.parser(__doc__, threads=2, repeats=5, seconds=10.0)
    ap.add_argument("--cache", default=".cache/corpus/emopia")
    ap.add_argument("--checkpoint", default="checkpoints/inverter.safetensors")
    ap.add_argument("--clips", type=int, default=24)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cache = CorpusCache(a.cache)
    params = cache.mel_params
    inverter, meta = MelInverter.from_file(a.checkpoint)
    clips = excerpts(cache, params, a.clips, a.seconds)
    table = methods(inverter, params)

    scores: dict[str, list[tuple[float, float, float]]] = {name: [] for name in table}
    scores["oracle-voc-16"] = []  # true magnitude: what Griffin-Lim alone loses
    for clip_id, mel, ref in clips:
        ref_t = torch.from_numpy(ref)
        for name, (_, _, fn) in table.items():
            est = torch.from_numpy(fn(mel))
            scores[name].append((audio.spectral_convergence(ref_t, est, params),
                                 log_spectral_distance(ref_t, est, params), mr_stft_distance(ref_t, est)))
        mag = audio.magnitude_from_audio(ref_t, params)
        est = audio.griffin_lim(mag, params, n_iter=16, length=len(ref), init_phase=phase_vocoder_phase(mag, params))
        scores["oracle-voc-16"].append((audio.spectral_convergence(ref_t, est, params),
                                        log_spectral_distance(ref_t, est, params), mr_stft_distance(ref_t, est)))
        print(clip_id, {k: round(v[-1][0], 3) for k, v in scores.items()}, flush=True)

    # columns: CPU time on 1 thread (what an idle core would take; robust to other jobs), wall on 1 and on N threads
    timing: dict[str, dict[str, float]] = {}
    mel0 = clips[0][1]
    for threads in sorted({1, a.threads}):
        torch.set_num_threads(threads)
        for name, (_, _, fn) in table.items():
            wall, cpu = [], []
            for _ in range(a.repeats):
                t, c = time.perf_counter(), time.process_time()
                fn(mel0)
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            per_10s = 10.0 / a.seconds
            if threads == 1:
                timing.setdefault("CPU s, 1 thread", {})[name] = float(np.median(cpu)) * per_10s
            timing.setdefault(f"wall s, {threads} thread{'s' * (threads > 1)}", {})[name] = \
                float(np.median(wall)) * per_10s
            print(threads, name, {k: round(v[name], 3) for k, v in timing.items() if name in v}, flush=True)

    rows = ["| method | GL iters | SC mean | SC max | LSD (dB) | MR-STFT | "
            + " | ".join(f"{column} per 10 s" for column in timing) + " |",
            "|---|---:|---:|---:|---:|---:|" + "---:|" * len(timing)]
    for name, s in scores.items():
        arr = np.array(s)
        label, n_iter = (table[name][0], table[name][1]) if name in table else ("true magnitude, vocoder phase", 16)
        default = " **(default)**" if name == f"learned-voc-{DEFAULT_N_ITER}" else ""
        t = " | ".join(f"{column[name]:.2f}" if name in column else "n/a" for column in timing.values())
        rows.append(f"| {label}{default} | {n_iter} | {arr[:, 0].mean():.3f} | {arr[:, 0].max():.3f} | "
                    f"{arr[:, 1].mean():.2f} | {arr[:, 2].mean():.3f} | {t} |")
    prov = meta["provenance"]
    body = "\n".join([
        f"Machine: {machine()}; shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end), so "
        f"timings are upper bounds. Command: `{command()}`.",
        f"{len(clips)} test-split clips, {a.seconds:g} s centred excerpts, input = cached normalized log-mel; "
        f"inverter checkpoint: {prov.get('steps')} steps, {prov.get('wall_time_s')} s training, "
        f"git {str(prov.get('git_sha'))[:10]}. Time = median of {a.repeats} runs on one excerpt.",
        "", *rows, "",
        "SC: spectral convergence (lower is better); LSD: log-spectral distance, power floored at db_min; MR-STFT: "
        "mean over n_fft 512/1024/2048 of SC + log-magnitude L1. 'vocoder phase' = moodgen.inverter."
        "phase_vocoder_phase start, 'random phase' = seeded uniform phases; all Griffin-Lim runs use momentum 0.99.",
    ])
    if not a.no_write:
        update_section("Copy synthesis (mel inversion)", body)
    print(body)


if __name__ == "__main__":
    main()
