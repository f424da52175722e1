"""The model card of checkpoints/: model_card.json (machine-readable) rendered to MODEL_CARD.md, plus loss plots."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FLOW_LOSS_LABELS = {"loss": "train (batch)", "val_loss": "validation (EMA)", "axis": "flow-matching loss"}
DATA = ("EMOPIA 1.0 (Hung et al., ISMIR 2021): 1,078 pop-piano MIDI clips with human Russell-quadrant labels, "
        "rendered with the TimGM6mb General MIDI soundfont shipped by pretty_midi (GPL-2) via tinysoundfont. "
        "Song-level train/val/test splits from EMOPIA's split/*_SL.csv; training uses the train split only.")
OTHER_FILES = (
    "- `inverter.safetensors`: learned mel -> linear magnitude (`python -m train.inverter`), trained on the same "
    "EMOPIA renders; numbers in benchmarks/RESULTS.md (copy synthesis).\n"
    "- `judge.safetensors`: the mood judge (`python -m train.judge`, then its valence head on mode, harmony and "
    "register cues: `python -m train.judge_head`), trained on real EMOPIA renders only, used for evaluation and the "
    "app's \"heard here\"; never used to train or select a generator (reports/judge.md).\n"
    "- `atlas.npz`: 10 s note excerpts, labels and sound embeddings of the 1,078 EMOPIA clips "
    "(`python -m train.atlas`), re-rendered for display; derived from EMOPIA, CC BY-NC-SA 4.0, attribution: "
    "Hung et al., ISMIR 2021.")
LICENCE = ("CC BY-NC-SA 4.0, inherited from EMOPIA: attribution, non-commercial use only, share-alike. "
           "VGMIDI is never used for training; it is evaluation-only.")


def plot_loss(log_path: Path, out_png: Path, title: str, labels: dict = FLOW_LOSS_LABELS) -> list[dict]:
    lines = log_path.read_text().splitlines() if log_path.is_file() else []
    records = [json.loads(line) for line in lines if line.strip()]
    losses = [r for r in records if "val_loss" in r]
    if losses:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot([r["step"] for r in losses], [r["loss"] for r in losses], lw=0.8, alpha=0.6, label=labels["loss"])
        ax.plot([r["step"] for r in losses], [r["val_loss"] for r in losses], lw=1.5, label=labels["val_loss"])
        ax.set_xlabel("step")
        ax.set_ylabel(labels["axis"])
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_png, dpi=110)
        plt.close(fig)
    return records


def update(out_dir: Path, kind: str, provenance: dict, log_path: Path, loss_labels: dict = FLOW_LOSS_LABELS,
           description: str | None = None) -> None:
    """Record one exported component in model_card.json and regenerate MODEL_CARD.md.

    loss_labels names the log's "loss" and "val_loss" series (the cGAN logs generator and discriminator losses);
    description is an optional paragraph shown under the component's heading."""
    card_path = out_dir / "model_card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {"components": {}}
    records = plot_loss(log_path, out_dir / f"loss_{kind}.png", f"{kind} training loss", loss_labels)
    probes = [{"step": r["step"], **r["probe"]} for r in records if "probe" in r]
    losses = [r for r in records if "val_loss" in r]
    card.update(data=DATA, licence=LICENCE)
    card["components"][kind] = {
        "provenance": {k: v for k, v in provenance.items() if k != "train_config"},
        "train_config": provenance.get("train_config"),
        "loss": {"first": losses[0]["val_loss"] if losses else None,
                 "last": losses[-1]["val_loss"] if losses else None},
        "probes": probes,
        "loss_plot": f"loss_{kind}.png" if losses else None,
        "loss_labels": loss_labels,
        "description": description,
    }
    card_path.write_text(json.dumps(card, indent=1))
    (out_dir / "MODEL_CARD.md").write_text(render(card))


def render(card: dict) -> str:
    lines = ["# moodgen model card", "", "## Data", card["data"], "", "## Licence", card["licence"], "",
             "## Other files in checkpoints/", OTHER_FILES, ""]
    for kind, c in sorted(card["components"].items()):
        p = c["provenance"]
        lines += [f"## {kind}", ""] + ([c["description"], ""] if c.get("description") else []) + [
                  f"- command: `{p.get('command')}`",
                  f"- steps: {p.get('steps')}, wall time: {p.get('wall_time_s')} s on {p.get('device')} "
                  f"({p.get('threads')} threads)",
                  f"- git sha: {p.get('git_sha')}; data manifest: {p.get('data_manifest_hash')}"]
        if p.get("sampler"):
            sel = (p.get("guidance_selection") or {}).get("distance_to_validation")
            why = ("the teacher's guidance, which it was distilled at" if p.get("teacher")
                   else "guidance chosen on the validation split")
            lines.append(f"- sampler defaults: guidance {p['sampler'].get('guidance')}"
                         + (f", steps {p['sampler']['steps']}" if "steps" in p["sampler"] else "")
                         + (f" ({why}; distance of the presets' correlates to real validation clips per candidate: "
                            f"{sel})" if sel else ""))
        if p.get("key_prior_major"):
            lines.append("- key prior, p(major key) per preset: "
                         + ", ".join(f"{k} {v:.2f}" for k, v in p["key_prior_major"].items()))
        if c.get("loss", {}).get("first") is not None:
            name = c.get("loss_labels", FLOW_LOSS_LABELS)["val_loss"]
            lines.append(f"- {name} loss: {c['loss']['first']:.4f} -> {c['loss']['last']:.4f}")
        if c.get("loss_plot"):
            lines += ["", f"![loss]({c['loss_plot']})"]
        if c.get("probes"):
            lines += ["", "How samples evolved (per-preset correlates of samples drawn during training; "
                      "cond_effect = change from the unconditional sample relative to the change between two seeds):",
                      ""]
            keys = [k for k in c["probes"][0]["happy"]]
            lines.append("| step | cond_effect | " + " | ".join(f"{p} {k}" for p in ("happy", "angry", "sad", "relaxed")
                                                          for k in keys) + " |")
            lines.append("|" + "---|" * (2 + 4 * len(keys)))
            for pr in c["probes"]:
                cells = [str(pr["step"]), f"{pr['cond_effect']:.2f}"] + [
                    f"{pr[p][k]:.2f}" for p in ("happy", "angry", "sad", "relaxed") for k in keys]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
