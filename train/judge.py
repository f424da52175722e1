"""Train the mood judge on real audio only (the EMOPIA cache) and export checkpoints/judge.safetensors.

    nohup nice -n 5 .venv/bin/python -m train.judge --minutes 18 > logs/judge.log 2>&1 &

Train split (with its transpositions) for fitting, val for choosing the checkpoint, test (song-level splits) for
the reported numbers, VGMIDI as an external check. Runs on one thread by default: the generator trains alongside.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from moodgen.judge import Judge, JudgeConfig, JudgeNet
from train.corpus.cache import CorpusCache
from train.evaluation.metrics import agreement_of
from train.evaluation.vgmidi import vgmidi_agreement
from train.runs import provenance as run_provenance


@dataclass(frozen=True)
class JudgeTrainConfig:
    cache_dir: str = ".cache/corpus/emopia"
    out: str = "checkpoints/judge.safetensors"
    report_dir: str = "reports"
    vgmidi_csv: str = "../shared/data/vgmidi/vgmidi_labelled.csv"  # evaluation only; "" skips it
    model: JudgeConfig = field(default_factory=JudgeConfig)
    seed: int = 0
    minutes: float = 18.0  # wall-clock budget for the training loop (evaluation and export come after)
    max_steps: int = 100_000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-3
    crop_seconds: tuple[float, float] = (6.0, 10.0)  # random crop length per batch
    gain_db: float = 3.0  # random level shift: generated clips need not match the renders' level exactly
    quadrant_weight: float = 0.5  # cross-entropy weight beside the (valence, arousal) MSE
    eval_every: int = 150
    eval_window_seconds: float = 10.0  # long clips are judged as the mean over windows of this length
    threads: int = 1

    def __post_init__(self) -> None:
        lo, hi = self.crop_seconds
        if not 0 < lo <= hi:
            raise ValueError(f"crop_seconds must be 0 < lo <= hi, got {self.crop_seconds}")
        if self.minutes <= 0 or self.max_steps < 1 or self.batch_size < 2 or self.eval_every < 1:
            raise ValueError(f"minutes, max_steps, batch_size (>= 2), eval_every must be positive: {self}")


def targets_of(items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) continuous (valence, arousal) labels and (N,) quadrants 1..4 of cache items."""
    return (np.array([[it["valence"], it["arousal"]] for it in items], dtype=np.float32),
            np.array([it["quadrant"] for it in items]))


def sample_batch(cache: CorpusCache, items: list[dict], config: JudgeTrainConfig, mel_params: MelParams,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crops of random items: (B, M, T) mels, (B, 2) targets, (B,) quadrant indices 0..3."""
    frames = mel_params.frames_for(rng.uniform(*config.crop_seconds))
    picks = rng.integers(len(items), size=config.batch_size)
    batch = np.full((config.batch_size, mel_params.n_mels, frames), -1.0, dtype=np.float32)
    for b, i in enumerate(picks):
        off, n = items[i]["mel"]
        start = int(rng.integers(max(n - frames, 0) + 1))
        crop = np.asarray(cache.mels[off + start: off + start + min(frames, n)], dtype=np.float32).T
        batch[b, :, :crop.shape[1]] = crop
    shift = rng.uniform(-config.gain_db, config.gain_db, size=(config.batch_size, 1, 1)) * 2.0 / (
        mel_params.db_max - mel_params.db_min)
    batch = np.clip(batch + shift, -1.0, 1.0).astype(np.float32)
    va, quadrant = targets_of([items[i] for i in picks])
    return torch.from_numpy(batch), torch.from_numpy(va), torch.from_numpy(quadrant - 1)


def judge_items(judge: Judge, cache: CorpusCache, items: list[dict], window_seconds: float) -> dict:
    window = judge.mel_params.frames_for(window_seconds)
    assessments = [judge.assess_windows(cache.mel(it), window) for it in items]
    return agreement_of(assessments, targets_of(items)[0])


def selection_score(metrics: dict) -> float:
    """Val score for choosing the checkpoint: quadrant accuracy plus the mean per-axis Spearman."""
    return metrics["quadrant_accuracy"] + 0.5 * (metrics["spearman_valence"] + metrics["spearman_arousal"])


def train(config: JudgeTrainConfig, command: str) -> dict:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cache = CorpusCache(config.cache_dir)
    mel_params = cache.mel_params
    train_items, val_items = cache.select("train"), cache.select("val")
    test_items = cache.select("test")
    if not train_items or not val_items or not test_items:
        raise SystemExit(f"{config.cache_dir}: need train, val and test items, got {len(train_items)}, "
                         f"{len(val_items)}, {len(test_items)}")
    net = JudgeNet(config.model).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_score, best_state, best_step, history = -math.inf, None, 0, []
    start = time.time()
    budget = config.minutes * 60.0
    bar = tqdm(total=config.max_steps, desc="judge", unit="step")
    step = 0
    while step < config.max_steps and time.time() - start < budget:
        # cosine decay on whichever runs out first, steps or wall time
        progress = max(step / config.max_steps, (time.time() - start) / budget)
        for g in opt.param_groups:
            g["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        net.train()
        x, va, q = (t.to(device) for t in sample_batch(cache, train_items, config, mel_params, rng))
        pred_va, logits, _ = net(x)
        loss = F.mse_loss(pred_va, va) + config.quadrant_weight * F.cross_entropy(logits, q)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % config.eval_every == 0:
            val = judge_items(Judge(net, mel_params, device=device), cache, val_items, config.eval_window_seconds)
            score = selection_score(val)
            history.append({"step": step, "loss": float(loss.item()), "val": val, "score": score,
                            "elapsed_s": time.time() - start})
            tqdm.write(f"step {step}: val quadrant acc {val['quadrant_accuracy']:.3f}, spearman v "
                       f"{val['spearman_valence']:.3f} a {val['spearman_arousal']:.3f}, score {score:.3f}")
            if score > best_score:
                best_score, best_step = score, step
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    bar.close()
    wall = time.time() - start
    if best_state is None:  # budget ended before the first evaluation
        best_state, best_step = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, step
    net.load_state_dict(best_state)
    provenance = run_provenance(cache.manifest_hash, step, wall, command, best_step=best_step,
                                train_config=json.loads(json.dumps(asdict(config))), device=device,
                                trained_on="EMOPIA train split renders (with transpositions) only")
    out = Path(config.out)
    save_component(out, net.cpu(), mel_params, provenance)
    # held-out numbers come from the exported (fp16-stored) weights, the ones everyone else loads
    judge = Judge.from_file(out, device)
    results = {"test": judge_items(judge, cache, test_items, config.eval_window_seconds),
               "val": judge_items(judge, cache, val_items, config.eval_window_seconds)}
    if config.vgmidi_csv and Path(config.vgmidi_csv).is_file():
        results["vgmidi"] = vgmidi_agreement(judge, config.vgmidi_csv, config.eval_window_seconds)
    provenance.update({"test": results["test"], "vgmidi": results.get("vgmidi")})
    save_component(out, judge.net.cpu(), mel_params, provenance)
    report = {"provenance": provenance, "val": results["val"], "history": history}
    write_report(Path(config.report_dir), report)
    return report


TARGETS_NOTE = ("EMOPIA continuous targets: sign = the human quadrant label, magnitude = a rank from MIDI features "
                "(train/corpus/features.py; for valence, the MIDI's fit to a major key profile), so R2 and Spearman "
                "measure agreement with those derived values, and sign accuracy with the human labels alone. VGMIDI: "
                "human labels in {-1, +1} (evaluation only, never trained on); each phrase rendered with the same "
                "soundfont, first 60 s, judged as the mean over 10 s windows.")


def baseline_line(rows: list[tuple[str, dict | None]]) -> str:
    """The majority-class baselines of the sets in `rows`, in one sentence."""
    return ("Majority-class baselines (always answer the commonest quadrant / sign): "
            + "; ".join(f"{name} quadrant {m['majority_quadrant_accuracy']:.3f}, sign V "
                        f"{m['majority_sign_accuracy_valence']:.3f}, sign A {m['majority_sign_accuracy_arousal']:.3f}"
                        for name, m in rows if m and "majority_quadrant_accuracy" in m) + ".")


def table_lines(rows: list[tuple[str, dict | None]]) -> list[str]:
    """A markdown table of agreement metrics, one row per (name, metrics); rows without metrics are left out."""
    lines = ["| set | n | quadrant acc | sign acc V | sign acc A | Spearman V | Spearman A | R2 V | R2 A | MAE V "
             "| MAE A |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in rows:
        if not m:
            continue
        extra = [f"{m[k]:.3f}" if k in m else "-" for k in ("r2_valence", "r2_arousal")]
        extra += [f"{2 * m[k]:.3f}" if k in m else "-" for k in ("mae_unit_valence", "mae_unit_arousal")]
        lines.append(f"| {name} | {m['n']} | {m['quadrant_accuracy']:.3f} | {m['sign_accuracy_valence']:.3f} | "
                     f"{m['sign_accuracy_arousal']:.3f} | {m['spearman_valence']:.3f} | {m['spearman_arousal']:.3f} | "
                     + " | ".join(extra) + " |")
    return lines


def write_report(report_dir: Path, report: dict) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "judge.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    p = report["provenance"]
    lines = ["# Mood judge", "",
             f"Trained on EMOPIA renders (train split, transpositions -2/0/+2) for {p['steps']} steps "
             f"({p['wall_time_s'] / 60:.1f} min, {p['device']}); checkpoint chosen on val at step {p['best_step']}. "
             f"Git {p['git_sha'][:10]}, data manifest {p['data_manifest_hash'][:12]}.", "",
             *table_lines([(name, report["val"] if name == "val" else p.get(name))
                           for name in ("val", "test", "vgmidi")])]
    lines += ["", baseline_line([("val", report["val"]), ("test", p.get("test")), ("vgmidi", p.get("vgmidi"))]),
              "", TARGETS_NOTE, ""]
    (report_dir / "judge.md").write_text("\n".join(lines))


def parse_args(argv: list[str]) -> JudgeTrainConfig:
    d = JudgeTrainConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=d.cache_dir)
    ap.add_argument("--out", default=d.out)
    ap.add_argument("--reports", default=d.report_dir)
    ap.add_argument("--vgmidi", default=d.vgmidi_csv, help="labelled VGMIDI csv ('' to skip the external check)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--minutes", type=float, default=d.minutes)
    ap.add_argument("--steps", type=int, default=d.max_steps)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--eval-every", type=int, default=d.eval_every)
    ap.add_argument("--threads", type=int, default=d.threads)
    a = ap.parse_args(argv)
    return JudgeTrainConfig(cache_dir=a.cache, out=a.out, report_dir=a.reports, vgmidi_csv=a.vgmidi, seed=a.seed,
                            minutes=a.minutes, max_steps=a.steps, batch_size=a.batch_size, lr=a.lr,
                            eval_every=a.eval_every, threads=a.threads)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    report = train(parse_args(argv), "python -m train.judge " + shlex.join(argv))
    print(json.dumps({k: report["provenance"][k] for k in ("test", "vgmidi")}, indent=1))


if __name__ == "__main__":
    main()
