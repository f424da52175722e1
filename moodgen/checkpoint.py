"""The one save/load pair for release weights: a self-describing safetensors file per component.

The file's metadata (key "moodgen", JSON) holds the format version, the component kind, its config, MelParams,
and provenance (git sha, data-manifest hash, steps, wall time, ...). Each module class that ships weights mixes in
`Component` (its `kind` and `config_class`) and loads itself with `from_file`; this module knows no model.
Loading is strict: an unknown format version, another kind, a missing, unexpected or mis-shaped tensor, a config
that does not build, and non-finite weights all raise `CheckpointError`, one line naming the file. Weights may be
stored as fp16 to keep checkpoints/ small; they are loaded back as float32. Training state never goes in these files.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from moodgen.config import MelParams, bounded_json, from_dict, to_dict

FORMAT_VERSION = 1
METADATA_KEY = "moodgen"
MAX_METADATA_BYTES = 1 << 20  # the shipped files' metadata is under 4 KB
# how each tensor dtype of a model may be stored (save_component writes floating-point weights as fp16 or fp32):
# any other dtype in a file (a BF16 header over fp16 bytes) would be read as other numbers, so it is refused
STORED_AS = {torch.float32: ("F32", "F16"), torch.int64: ("I64",)}


class CheckpointError(ValueError):
    """A weights file that cannot be used, in one line naming the file and what is wrong."""


class Component:
    """Mixin for an nn.Module that ships as release weights, built as `cls(config)` and keeping `self.config`."""

    kind: ClassVar[str]
    config_class: ClassVar[type]

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu") -> tuple[Any, dict[str, Any]]:
        """(module in eval mode on `device`, metadata) from a file saved by `save_component`."""
        return load_component(path, cls, device)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_component(path: str | Path, module: torch.nn.Module, mel_params: MelParams, provenance: dict[str, Any],
                   half: bool = True) -> Path:
    """Write `module` (a `Component` built from `module.config`) with its metadata. Pass the uncompiled module."""
    if not isinstance(module, Component) or not isinstance(module.config, type(module).config_class):
        raise TypeError(f"{type(module).__name__} is not a Component built from its config_class")
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": type(module).kind,
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
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o644)  # release weights are meant to be shared; a temp file is created private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def reason(exc: BaseException) -> str:
    """An exception as one short line (some libraries' messages run over many lines)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def looks_pickled(path: Path) -> bool:
    """Whether a file starts like a pickle or like torch.save's zip of pickles."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head[:1] == b"\x80" or head == b"PK"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict of a component file; raises CheckpointError for foreign files and unknown versions."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        if looks_pickled(path):
            raise CheckpointError(f"{path}: a pickle (torch.save) file, not safetensors; it is never unpickled, "
                                  "re-export the weights with moodgen.checkpoint.save_component") from None
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason(exc)})") from None
    if raw is None:
        raise CheckpointError(f"{path}: not a moodgen checkpoint (no '{METADATA_KEY}' metadata)")
    try:
        meta = bounded_json(raw, MAX_METADATA_BYTES)
    except ValueError as exc:  # JSONDecodeError, too long or too deep
        raise CheckpointError(f"{path}: unreadable metadata ({reason(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: checkpoint format version {version!r} is not supported "
                              f"(this moodgen reads version {FORMAT_VERSION})")
    return meta


def load_component(path: str | Path, cls: type, device: torch.device | str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild a `cls` component from its file, strictly; returns (module in eval mode, metadata).

    The metadata gains "mel_params_obj", the file's MelParams."""
    meta = read_metadata(path)
    if meta.get("kind") != cls.kind:
        raise CheckpointError(f"{path}: holds a {meta.get('kind')!r} component, expected {cls.kind!r}")
    try:
        config = from_dict(cls.config_class, meta["config"])
        meta["mel_params_obj"] = from_dict(MelParams, meta["mel_params"])
        with torch.device("meta"):  # shapes only: a hostile config (a layer of 10^12 channels) allocates nothing
            module = cls(config)
        reference = {name: (t.shape, t.dtype) for name, t in module.state_dict().items()}
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: invalid config in the metadata ({reason(exc)})") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            missing, unexpected = sorted(reference.keys() - f.keys()), sorted(f.keys() - reference.keys())
            if missing or unexpected:
                raise CheckpointError(f"{path}: tensors do not match the {cls.kind} config "
                                      f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                                      f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
            state = {}
            for name, (shape, dtype) in reference.items():
                stored = f.get_slice(name)  # shape and dtype from the header: nothing read yet
                if tuple(stored.get_shape()) != tuple(shape):
                    raise CheckpointError(f"{path}: tensor {name} has shape {tuple(stored.get_shape())}, "
                                          f"the config needs {tuple(shape)}")
                if stored.get_dtype() not in STORED_AS.get(dtype, ()):
                    raise CheckpointError(f"{path}: tensor {name} is stored as {stored.get_dtype()}, the model needs "
                                          f"{dtype} (stored as {' or '.join(STORED_AS.get(dtype, ('?',)))})")
                state[name] = single_threaded_cast(f.get_tensor(name), dtype)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable tensors ({reason(exc)})") from None
    if bad := next(iter(non_finite(state)), None):
        raise CheckpointError(f"{path}: tensor {bad} holds NaN or infinite values")
    module.load_state_dict(state, strict=True, assign=True)  # the loaded tensors become the meta module's own
    return module.to(device).eval(), meta


def single_threaded_cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`t.to(dtype)`, by numpy where it can (fp16 weights to float32): torch would split the copy over its thread
    team, which on a machine shared with other jobs waits for a descheduled thread (~1 s of an app's start)."""
    if t.dtype == torch.float16 and dtype == torch.float32:
        return torch.from_numpy(t.numpy().astype(np.float32))
    return t.to(dtype)


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity, checked by numpy (one thread, as above)."""
    return [name for name, t in state.items()
            if t.is_floating_point() and not np.isfinite(t.float().numpy()).all()]
