"""The one save/load pair for release weights: a self-describing safetensors file per component.

The file's metadata (key "moodgen", JSON) holds the format version, the component kind, its config, MelParams,
and provenance (git sha, data-manifest hash, steps, wall time, ...). Loading is strict: an unknown format version,
an unknown kind, a missing or unexpected tensor all raise. Weights may be stored as fp16 to keep checkpoints/
small; they are loaded back as float32. Training state (optimizer, step) never goes in these files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from moodgen.config import MelParams, from_dict, to_dict

FORMAT_VERSION = 1
METADATA_KEY = "moodgen"


def component_classes(kind: str) -> tuple[type, type]:
    """(ConfigClass, ModuleClass) for a component kind. Each module is built as ModuleClass(config)."""
    if kind == "mel_flow":
        from moodgen.model import FlowConfig, FlowModel
        return FlowConfig, FlowModel
    if kind == "note_model":
        from moodgen.note_model import NoteModel, NoteModelConfig
        return NoteModelConfig, NoteModel
    if kind == "judge":
        from moodgen.judge import JudgeConfig, JudgeNet
        return JudgeConfig, JudgeNet
    if kind == "inverter":
        from moodgen.inverter import InverterConfig, MelInverter
        return InverterConfig, MelInverter
    if kind == "cgan":
        from moodgen.cgan import CGANConfig, CGANGenerator
        return CGANConfig, CGANGenerator
    raise ValueError(f"unknown checkpoint component kind {kind!r}")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_component(path: str | Path, module: torch.nn.Module, kind: str, mel_params: MelParams,
                   provenance: dict[str, Any], half: bool = True) -> Path:
    """Write `module` (built from `module.config`) with its metadata. Pass the uncompiled module."""
    config_cls, module_cls = component_classes(kind)
    if not isinstance(module, module_cls) or not isinstance(module.config, config_cls):
        raise TypeError(f"kind {kind!r} expects a {module_cls.__name__} built from {config_cls.__name__}")
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": to_dict(module.config),
        "mel_params": to_dict(mel_params),
        "provenance": provenance,
    }
    tensors = {}
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        tensors[name] = t.half() if half and t.is_floating_point() else t
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict of a component file; raises ValueError for foreign files and unknown versions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path}: not a moodgen checkpoint (no '{METADATA_KEY}' metadata)")
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {meta.get('format_version')!r} is not supported "
                         f"(this moodgen reads version {FORMAT_VERSION})")
    return meta


def load_component(path: str | Path, kind: str | None = None,
                   device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a component from its file, strictly; returns (module in eval mode, metadata)."""
    meta = read_metadata(path)
    if kind is not None and meta["kind"] != kind:
        raise ValueError(f"{path}: holds a {meta['kind']!r} component, expected {kind!r}")
    config_cls, module_cls = component_classes(meta["kind"])
    module = module_cls(from_dict(config_cls, meta["config"]))
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    reference = module.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    module.load_state_dict(state, strict=True)
    meta["mel_params_obj"] = from_dict(MelParams, meta["mel_params"])
    return module.to(device).eval(), meta


def config_of(meta: dict[str, Any]) -> Any:
    config_cls, _ = component_classes(meta["kind"])
    return from_dict(config_cls, meta["config"])


