"""Where the flow engine's time goes, for a 10 s clip on N CPU threads: one guided U-Net pass (one row for a
guidance-distilled model, else the cond and uncond rows in one batch), the whole sampler (its steps), the mel
inversion, and the engine's `generate`; then what the cheaper options would save and how far they move the mel:
the same sampler under bf16 autocast, and at half the steps. Round-robin repeats (a change of load hits every row
alike); medians and minima; a yardstick and the load before and after.

    python -m benchmarks.speed.mel_time --threads 2 --repeats 5
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from benchmarks import results
from benchmarks.results import command, machine, threads_title, update_section
from benchmarks.speed.app_latency import yardstick_s
from moodgen.flow_model import FlowModel, sample
from moodgen.inverter import default_inversion
from moodgen.keys import sample_keys
from moodgen.pipeline import MoodPipeline


def conv_gmac(model: FlowModel, x: torch.Tensor, *inputs: torch.Tensor) -> float:
    """Multiply-accumulates of the model's convolutions (nearly all its arithmetic) in one forward of x, in G."""
    total = []

    def count(module: torch.nn.Conv1d, _: tuple, out: torch.Tensor) -> None:
        total.append(module.weight.numel() * out.shape[0] * out.shape[-1])

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    with torch.no_grad():
        model(x, *inputs)
    for h in hooks:
        h.remove()
    return sum(total) / 1e9


def cpu_flag(name: str) -> bool:
    try:
        return any(name in line.split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("flags"))
    except OSError:
        return False


def engine_section(name: str, eng, seconds: float, repeats: int) -> list[str]:
    """The timing table of one flow engine."""
    model, steps, guidance = eng.model, eng.default_steps, eng.default_guidance
    mood = torch.tensor([[0.7, 0.7]])
    key = None if eng.key_prior is None else sample_keys(eng.key_prior, mood, seed=0)
    frames = eng.frames_for(seconds)
    padded = -(-frames // model.time_multiple) * model.time_multiple
    rows = 1 if model.config.guidance_conditioning else 2
    pass_inputs = (torch.full((rows,), 0.5), mood.repeat(rows, 1), torch.tensor([False, True][:rows]),
                   None if key is None else key.repeat(rows))
    if model.config.guidance_conditioning:
        pass_inputs += (torch.full((1,), guidance),)
    x = torch.randn(rows, model.config.in_channels, padded)
    mel = sample(model, mood, frames, steps, guidance, 0, key)[0].clamp(-1, 1)

    def sampler(n: int, bf16: bool = False) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            return sample(model, mood, frames, n, guidance, 0, key)[0].float().clamp(-1, 1)

    def one_pass() -> None:
        with torch.no_grad():
            model(x, *pass_inputs)

    def diff(out: torch.Tensor) -> str:
        return f"mean abs diff to shipped {(out - mel).abs().mean():.4f}"

    rows: dict[str, tuple[Callable[[], object], str]] = {
        "one guided pass": (one_pass, f"batch {rows} x {padded} frames, {conv_gmac(model, x, *pass_inputs):.2f} "
                                      "GMAC in its convolutions"),
        f"sampler, {steps} steps": (lambda: sampler(steps), "fp32, as shipped"),
        "inversion": (lambda: default_inversion(mel.numpy(), eng.mel_params, eng.inverter),
                      "learned magnitude + fast Griffin-Lim, as shipped"),
        "engine generate": (lambda: eng.generate(mood, seconds, 0, steps, guidance, key),
                            "sampler + inversion, as shipped"),
        f"sampler, {steps} steps, bf16": (lambda: sampler(steps, bf16=True), diff(sampler(steps, bf16=True))),
        f"sampler, {steps // 2} steps": (lambda: sampler(steps // 2), diff(sampler(steps // 2))),
    }
    for fn, _ in rows.values():  # warm every path once
        fn()
    yard, load = [yardstick_s()], [os.getloadavg()[0]]
    times: dict[str, list[float]] = {label: [] for label in rows}
    for _ in range(repeats):
        for label, (fn, _) in rows.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    yard.append(yardstick_s())
    load.append(os.getloadavg()[0])
    return [
        f"Engine `{name}`: guidance {guidance:g}, {steps} steps, {seconds:g} s clip ({frames} frames). 1-minute load "
        f"average {load[0]:.2f} before, {load[1]:.2f} after, on {os.cpu_count()} cores; yardstick (a fixed "
        f"single-threaded task, about 0.1 s on an idle core) {yard[0]:.2f} s before, {yard[1]:.2f} s after.",
        "",
        "| what | median (s) | min (s) | notes |",
        "|---|---:|---:|---|",
        *[f"| {label} | {statistics.median(times[label]):.3f} | {min(times[label]):.3f} | {what} |"
          for label, (_, what) in rows.items()],
        "",
    ]


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, threads=2, repeats=5, seconds=10.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device="cpu")
    sections = [line for name in pipe.engines if isinstance(pipe.engine(name).model, FlowModel)
                for line in engine_section(name, pipe.engine(name), args.seconds, args.repeats)]
    body = "\n".join([
        f"Machine: {machine()} (avx512_bf16: {'yes' if cpu_flag('avx512_bf16') else 'no'}). Command: "
        f"`{command()}`. Warm, torch {torch.__version__}, {args.threads} thread(s), {args.repeats} round-robin "
        "repeats. The bf16 and half-steps rows are options, not what ships: both change the sound (mean abs diff "
        "in normalized log-mel units, [-1, 1], same seed).",
        "",
        *sections,
    ]).rstrip() + "\n"
    print(body)
    if not args.no_write:
        update_section(threads_title("Mel engine time", args.threads), body)


if __name__ == "__main__":
    main()
