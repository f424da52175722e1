"""Give a trained judge a valence head on mode, harmony and register cues, and export it if it beats the base.

    nice -n 10 python -m train.judge_head --base checkpoints/judge.safetensors --out checkpoints/judge.safetensors

The second stage after `python -m train.judge`. Real music only (the EMOPIA cache), never generated clips: a ridge
regression from the cues of moodgen.mood_features to valence is fit on the train split (all transpositions);
its penalty and its blend weight with the CNN's own valence are chosen on val; the test split and VGMIDI only
report. Every clip is read as the judge reads it at inference: the mean over 10 s windows. The report puts the new
judge beside the base, with bootstrap intervals over test songs, and the per-axis typical error the app draws.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from moodgen.checkpoint import file_sha256, save_component
from moodgen.judge import Assessment, Judge, JudgeNet, windows_of
from moodgen.mood_features import FEATURE_NAMES, FEATURE_SET
from train.corpus.cache import CorpusCache
from train.evaluation.metrics import AXES, agreement_of
from train.evaluation.vgmidi import vgmidi_agreement
from train.judge import TARGETS_NOTE, baseline_line, table_lines, targets_of
from train.runs import git_sha


@dataclass(frozen=True)
class HeadConfig:
    base: str = "checkpoints/judge.safetensors"
    out: str = "checkpoints/judge.safetensors"
    cache_dir: str = ".cache/corpus/emopia"
    report_dir: str = "reports"
    vgmidi_csv: str = "../shared/data/vgmidi/vgmidi_labelled.csv"  # evaluation only; "" skips it
    alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)  # ridge penalties tried (on standardized cues)
    blends: int = 21  # blend weights of the CNN's valence tried, evenly in [0, 1]
    window_seconds: float = 10.0
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.alphas or min(self.alphas) < 0 or self.blends < 2 or self.window_seconds <= 0:
            raise ValueError(f"need alphas >= 0, blends >= 2, window_seconds > 0: {self}")


def cnn_only(judge: Judge) -> Judge:
    """The base judge without any valence head: its CNN's own outputs."""
    config = replace(judge.net.config, feature_set="")
    net = JudgeNet(config)
    net.load_state_dict({k: v for k, v in judge.net.state_dict().items() if k in net.state_dict()}, strict=True)
    return Judge(net, judge.mel_params, judge.metadata)


def clip_rows(judge: Judge, cache: CorpusCache, items: list[dict], window: int,
              with_cnn: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N, N_FEATURES) cues and (N,) CNN valence of each item, both the mean over its windows (CNN: NaN if skipped)."""
    cues, cnn = [], []
    for it in items:
        windows = windows_of(cache.mel(it), window)
        cues.append(np.mean([judge.cues(w[None])[0] for w in windows], axis=0))
        cnn.append(np.mean([judge.assess(w).valence for w in windows]) if with_cnn else np.nan)
    return np.array(cues), np.array(cnn)


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weights and intercept of ridge regression on (N, F) standardized x (the intercept is not penalized)."""
    x1 = np.c_[x, np.ones(len(x))]
    penalty = alpha * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0
    w = np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)
    return w[:-1], float(w[-1])


def fit_head(cues: dict[str, np.ndarray], cnn_val: np.ndarray, valence: dict[str, np.ndarray],
             config: HeadConfig) -> dict:
    """Ridge from train cues to valence, then (alpha, blend) maximizing val Spearman of blend * CNN + (1 - blend)
    * ridge. Returns the head's standardization, weights on [CNN valence, standardized cues] and intercept."""
    mean, std = cues["train"].mean(0), cues["train"].std(0)
    scale = np.where(std > 1e-6, std, 1.0)  # a cue constant on train (a silent band range) stays unscaled
    z = {k: (v - mean) / scale for k, v in cues.items()}
    best = None
    for alpha in config.alphas:
        w, b = ridge(z["train"], valence["train"], alpha)
        from_cues = z["val"] @ w + b
        for blend in np.linspace(0.0, 1.0, config.blends):
            score = float(spearmanr(blend * cnn_val + (1 - blend) * from_cues, valence["val"])[0])
            if best is None or score > best["val_spearman"] + 1e-9:
                best = {"alpha": alpha, "blend": float(blend), "val_spearman": score,
                        "weights": [float(blend), *((1 - blend) * w).tolist()], "bias": (1 - blend) * b}
    return {**best, "feature_mean": mean.tolist(), "feature_scale": scale.tolist()}


def with_head(base: Judge, head: dict) -> JudgeNet:
    """A JudgeNet with the base's CNN and the fitted valence head."""
    net = JudgeNet(replace(base.net.config, feature_set=FEATURE_SET))
    state = net.state_dict()
    state.update({k: v for k, v in cnn_only(base).net.state_dict().items()})
    state["feature_mean"] = torch.tensor(head["feature_mean"])
    state["feature_scale"] = torch.tensor(head["feature_scale"])
    state["valence_head.weight"] = torch.tensor([head["weights"]])
    state["valence_head.bias"] = torch.tensor([head["bias"]])
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.eval()


def judged(judge: Judge, cache: CorpusCache, items: list[dict], window: int) -> list[Assessment]:
    return [judge.assess_windows(cache.mel(it), window) for it in items]


def bootstrap_spearman(assessments: list[Assessment], target: np.ndarray, n: int, seed: int) -> dict:
    """Percentile 95 % interval of each axis' Spearman over clips resampled with replacement."""
    pred = np.array([[a.valence, a.arousal] for a in assessments])
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(pred), size=(n, len(pred)))
    out = {}
    for i, axis in enumerate(AXES):
        values = [spearmanr(pred[p, i], target[p, i])[0] for p in picks]
        out[axis] = [round(float(v), 3) for v in np.nanpercentile(values, [2.5, 97.5])]
    return out


def uncertainty(metrics: dict) -> dict[str, float]:
    """The app's error bars: mean absolute error on the test split, on the pad's [-1, 1] scale (metrics are on
    [0, 1]); moodgen_app.views.JudgeTrust reads the same numbers from the judge file."""
    return {axis: round(2.0 * metrics[f"mae_unit_{axis}"], 3) for axis in AXES}


def run(config: HeadConfig, command: str) -> dict:
    torch.set_num_threads(1)
    cache = CorpusCache(config.cache_dir)
    base = Judge.from_file(config.base)
    cnn = cnn_only(base)
    window = base.mel_params.frames_for(config.window_seconds)
    splits = {"train": cache.select("train"), "val": cache.select("val"), "test": cache.select("test")}
    if not all(splits.values()):
        raise SystemExit(f"{config.cache_dir}: need train, val and test items")
    cues, cnn_val, valence = {}, None, {}
    for name in ("train", "val"):
        cues[name], cnn_out = clip_rows(cnn, cache, splits[name], window, with_cnn=name == "val")
        valence[name] = targets_of(splits[name])[0][:, 0]
        cnn_val = cnn_out if name == "val" else cnn_val
    head = fit_head(cues, cnn_val, valence, config)
    print(f"valence head: alpha {head['alpha']}, blend {head['blend']:.2f}, val Spearman {head['val_spearman']:.3f}")
    target = targets_of(splits["test"])[0]
    results = {}
    for name, judge in (("base", cnn), ("new", Judge(with_head(base, head), base.mel_params))):
        test = judged(judge, cache, splits["test"], window)
        results[name] = {"test": agreement_of(test, target),
                         "val": agreement_of(judged(judge, cache, splits["val"], window), targets_of(splits["val"])[0]),
                         "test_bootstrap": bootstrap_spearman(test, target, config.bootstrap, config.seed)}
    better = results["new"]["test"]["spearman_valence"] > results["base"]["test"]["spearman_valence"]
    base_provenance = base.metadata["provenance"]
    earlier_head = base_provenance.get("valence_head")
    # the CNN's VGMIDI numbers: recorded by its training run, or carried over by an earlier head
    results["base"]["vgmidi"] = earlier_head.get("base_vgmidi") if earlier_head else base_provenance.get("vgmidi")
    provenance = {**base_provenance, "command": command, "git_sha": git_sha(),
                  "valence_head": {"feature_set": FEATURE_SET, "features": list(FEATURE_NAMES),
                                   "alpha": head["alpha"], "blend": head["blend"],
                                   "val_spearman": round(head["val_spearman"], 4),
                                   "fit_on": "EMOPIA train split (all transpositions); alpha and blend on val",
                                   "head_config": json.loads(json.dumps(asdict(config))),
                                   "base_sha256": file_sha256(config.base), "base_command":
                                   (earlier_head or {}).get("base_command", base_provenance.get("command")),
                                   "base_vgmidi": results["base"]["vgmidi"]},
                  "test": results["new"]["test"], "uncertainty": uncertainty(results["new"]["test"])}
    out = Path(config.out)
    if better:
        save_component(out, with_head(base, head), base.mel_params, provenance)
        exported = Judge.from_file(out)  # the fp16-stored weights everyone loads give the reported numbers
        test = judged(exported, cache, splits["test"], window)
        results["new"].update(test=agreement_of(test, target),
                              test_bootstrap=bootstrap_spearman(test, target, config.bootstrap, config.seed))
        if config.vgmidi_csv and Path(config.vgmidi_csv).is_file():
            results["new"]["vgmidi"] = vgmidi_agreement(exported, config.vgmidi_csv, config.window_seconds)
        provenance.update(test=results["new"]["test"], vgmidi=results["new"].get("vgmidi"),
                          uncertainty=uncertainty(results["new"]["test"]))
        save_component(out, exported.net.cpu(), base.mel_params, provenance)
    report = {"provenance": provenance, "exported": better, "results": results}
    write_report(Path(config.report_dir), report)
    return report


def write_report(report_dir: Path, report: dict) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "judge.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    p, r, head = report["provenance"], report["results"], report["provenance"]["valence_head"]
    rows = [(f"{who} {split}", r[who].get(split)) for who in ("base", "new") for split in ("val", "test", "vgmidi")]
    new, base = r["new"], r["base"]
    unc = uncertainty(new["test"] if report["exported"] else base["test"])
    lines = ["# Mood judge", "",
             "Two stages, both on real music only (EMOPIA renders; never generated clips):", "",
             f"1. the CNN: `{head['base_command']}` (train split with transpositions -2/0/+2, checkpoint chosen on "
             f"val; {p['steps']} steps, {p['wall_time_s'] / 60:.1f} min, data manifest "
             f"{p['data_manifest_hash'][:12]});",
             f"2. the valence head: `{p['command']}`: ridge regression (penalty {head['alpha']:g}) from "
             f"{len(head['features'])} mode, harmony and register cues ({', '.join(head['features'])}; "
             f"moodgen/mood_features.py) fit on the train split, blended with the CNN's valence (weight "
             f"{head['blend']:.2f}; penalty and weight chosen on val, val Spearman {head['val_spearman']:.3f}). "
             f"Git {p['git_sha'][:10]}.", "",
             "base = the CNN alone (the judge before the head); new = CNN + valence head. Arousal and quadrants are "
             "the CNN's in both.", "", *table_lines(rows), "",
             "95 % bootstrap intervals of the test Spearman (2000 resamples of the test clips): "
             + "; ".join(f"{who} V {r[who]['test_bootstrap']['valence']} / A {r[who]['test_bootstrap']['arousal']}"
                         for who in ("base", "new")) + ".", "",
             ("The new judge was exported to checkpoints/judge.safetensors." if report["exported"] else
              "The new judge did not beat the base on test valence and was not exported."), "",
             f"**Uncertainty the app draws** around the judge's point (the shaded ellipse, and the ± in the summary): "
             f"valence ± {unc['valence']:.2f}, arousal ± {unc['arousal']:.2f} on the pad's [-1, 1] scale: the "
             f"shipped judge's mean absolute error on the {new['test']['n']} held-out test clips, recorded in the "
             "judge file's provenance (`test`, `uncertainty`) and read from there by the app.", "",
             baseline_line([(split, new.get(split)) for split in ("val", "test", "vgmidi")]), "",
             TARGETS_NOTE + " An audio key-profile cue therefore agrees with the valence magnitude partly by "
             "construction; the base's VGMIDI row is the one its own training run recorded with the same function.",
             ""]
    (report_dir / "judge.md").write_text("\n".join(lines))


def parse_args(argv: list[str]) -> HeadConfig:
    d = HeadConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=d.base, help="a trained judge (its CNN is kept; any valence head is refit)")
    ap.add_argument("--out", default=d.out)
    ap.add_argument("--cache", default=d.cache_dir)
    ap.add_argument("--reports", default=d.report_dir)
    ap.add_argument("--vgmidi", default=d.vgmidi_csv, help="labelled VGMIDI csv ('' to skip the external check)")
    ap.add_argument("--bootstrap", type=int, default=d.bootstrap)
    a = ap.parse_args(argv)
    return HeadConfig(base=a.base, out=a.out, cache_dir=a.cache, report_dir=a.reports, vgmidi_csv=a.vgmidi,
                      bootstrap=a.bootstrap)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    report = run(parse_args(argv), shlex.join(["python", "-m", "train.judge_head", *argv]))
    print(json.dumps({k: report["results"]["new"].get(k) for k in ("test", "vgmidi")}, indent=1))


if __name__ == "__main__":
    main()
