"""The one save/load pair: identical outputs after save -> load, self-describing metadata, strict refusals."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from moodgen.__main__ import main as cli
from moodgen.checkpoint import FORMAT_VERSION, CheckpointError, read_metadata, save_component
from moodgen.config import MelParams
from moodgen.flow_model import FlowModel, sample
from moodgen.note_model import NoteModel
from moodgen.pipeline import MoodPipeline
from moodgen_app import server as app
from tests.app_server import full_checkpoints
from tests.conftest import tiny_flow, write_tiny_checkpoints

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def saved(tmp_path):
    model = tiny_flow(12, seed=3)
    path = save_component(tmp_path / "m.safetensors", model, MelParams(),
                          {"git_sha": "abc", "data_manifest_hash": "def", "steps": 7}, half=False)
    return model, path


def test_round_trip_gives_identical_samples(saved):
    model, path = saved
    loaded, meta = FlowModel.from_file(path)
    mood = torch.tensor([[0.1, -0.4]])
    assert torch.equal(sample(model.eval(), mood, 8, 3, 2.0, seed=0), sample(loaded, mood, 8, 3, 2.0, seed=0))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["mel_params_obj"] == MelParams()
    assert meta["config"]["in_channels"] == 12
    assert meta["provenance"] == {"git_sha": "abc", "data_manifest_hash": "def", "steps": 7}


def test_half_precision_round_trip_is_close(tmp_path):
    model = tiny_flow(12, seed=3).eval()
    loaded, _ = FlowModel.from_file(save_component(tmp_path / "h.safetensors", model, MelParams(), {}))
    mood = torch.tensor([[0.5, 0.5]])
    a, b = sample(model, mood, 8, 2, 1.0, seed=0), sample(loaded, mood, 8, 2, 1.0, seed=0)
    assert (a - b).abs().max() < 0.05


def test_refuses_wrong_kind_unknown_version_and_foreign_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(ValueError, match="expected 'note_model'"):
        NoteModel.from_file(path)
    state = {k: v.float() for k, v in tiny_flow(12, 3).state_dict().items()}
    meta = read_metadata(path)
    meta.pop("mel_params_obj", None)
    bad = tmp_path / "v99.safetensors"
    save_file(state, str(bad), metadata={"moodgen": json.dumps(dict(meta, format_version=99))})
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        FlowModel.from_file(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file(state, str(foreign))
    with pytest.raises(ValueError, match="not a moodgen checkpoint"):
        FlowModel.from_file(foreign)


def test_load_is_strict_about_tensors(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    state = {k: v.float() for k, v in tiny_flow(12, 3).state_dict().items()}
    state.pop(next(iter(state)))
    partial = tmp_path / "partial.safetensors"
    save_file(state, str(partial), metadata={"moodgen": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="partial.safetensors: tensors do not match"):
        FlowModel.from_file(partial)


def test_save_refuses_a_mismatched_kind(tmp_path):
    with pytest.raises(TypeError, match="not a Component"):
        save_component(tmp_path / "x.safetensors", torch.nn.Linear(2, 2), MelParams(), {})


def test_round_trip_keeps_the_key_prior(tmp_path):
    model = tiny_flow(12, seed=3, keys=True).eval()
    path = save_component(tmp_path / "m.safetensors", model, MelParams(), {"steps": 1}, half=False)
    loaded, _ = FlowModel.from_file(path)
    assert torch.equal(loaded.key.prior, model.key.prior) and loaded.key.prior.abs().sum() > 0
    mood, key = torch.tensor([[0.5, -0.5]]), torch.tensor([7])
    assert torch.equal(sample(model, mood, 8, steps=3, seed=1, key=key),
                       sample(loaded, mood, 8, steps=3, seed=1, key=key))


def rewrite(path: Path, out: Path, tensors=None, meta=None) -> Path:
    """A copy of a component file with its tensors and/or metadata changed by the given functions."""
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        metadata = json.loads(f.metadata()["moodgen"])
    state = tensors(state) if tensors else state
    if meta:
        meta(metadata)
    save_file(state, str(out), metadata={"moodgen": json.dumps(metadata)})
    return out


def first_tensor(state: dict) -> str:
    return next(iter(sorted(state)))


# How a weights file goes bad -> (make the bad copy from a good file, what the one-line error says)
BROKEN = {
    "truncated": (lambda good, bad: bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
                  "not a readable safetensors file"),
    "0-byte": (lambda good, bad: bad.write_bytes(b""), "not a readable safetensors file"),
    "pickle renamed": (lambda good, bad: torch.save(FlowModel.from_file(good)[0].state_dict(), bad),
                       r"a pickle \(torch.save\) file, not safetensors; it is never unpickled"),
    "extra tensor": (lambda good, bad: rewrite(good, bad, tensors=lambda s: s | {"bogus": torch.zeros(2)}),
                     r"tensors do not match the mel_flow config \(missing \[\], unexpected \['bogus'\]\)"),
    "missing tensor": (lambda good, bad: rewrite(good, bad, tensors=lambda s: {k: v for k, v in s.items()
                                                                               if k != first_tensor(s)}),
                       r"tensors do not match the mel_flow config \(missing \['"),
    "mis-shaped tensor": (lambda good, bad: rewrite(good, bad, tensors=lambda s: s | {first_tensor(s):
                                                                                      torch.zeros(3, 3)}),
                          r"has shape \(3, 3\), the config needs"),
    "integer tensor": (lambda good, bad: rewrite(good, bad, tensors=lambda s: {k: v.long() for k, v in s.items()}),
                       r"is stored as I64, the model needs torch.float32 \(stored as F32 or F16\)"),
    # the same bits under another float type are other numbers: loaded before as wrong weights, without a word
    "bfloat16 tensor": (lambda good, bad: rewrite(good, bad, tensors=lambda s: {k: v.bfloat16() for k, v in
                                                                                s.items()}), "is stored as BF16"),
    "huge sample rate": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["mel_params"].update(
        sample_rate=2_000_000_000)), r"MelParams.sample_rate must be in \[4000, 192000\]"),
    "huge FFT": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["mel_params"].update(n_fft=2**28)),
                 r"MelParams.n_fft must be in \[16, 16384\]"),
    "100,000 channel multipliers": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["config"].update(
        channel_mults=[1] * 10**5)), "FlowConfig.channel_mults may hold at most 64 items, got 100000"),
    "a million channel multipliers": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["config"].update(
        channel_mults=[1] * 10**6)), "3000563 bytes of JSON, over the 1048576-byte limit"),
    "deeply nested metadata": (lambda good, bad: save_file(FlowModel.from_file(good)[0].state_dict(), str(bad),
                                                           metadata={"moodgen": '{"format_version": 1, "x": '
                                                                     + "[" * 10**5 + "]" * 10**5 + "}"}),
                               "JSON nested 100001 deep, over the limit of 16"),
    "all-NaN weights": (lambda good, bad: rewrite(good, bad, tensors=lambda s: {k: torch.full_like(v, float("nan"))
                                                                                for k, v in s.items()}),
                        "holds NaN or infinite values"),
    "non-numeric config value": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["config"].update(
        base_channels="wide")), r"invalid config in the metadata \(ValueError: FlowConfig.base_channels must be "
                                r"int, got 'wide'\)"),
    "huge config value": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["config"].update(
        base_channels=2**20)), r"FlowConfig.base_channels must be in \[1, 4096\], got 1048576"),
    "large config value": (lambda good, bad: rewrite(good, bad, meta=lambda m: m["config"].update(
        base_channels=4096)), "has shape"),  # checked on the meta device: nothing of that size is allocated
    "config not a dict": (lambda good, bad: rewrite(good, bad, meta=lambda m: m.update(config=[1])),
                          "FlowConfig needs a dict of fields"),
    "metadata not JSON": (lambda good, bad: save_file(FlowModel.from_file(good)[0].state_dict(), str(bad),
                                                      metadata={"moodgen": "{not json"}), "unreadable metadata"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_is_one_line_naming_it(saved, tmp_path, case):
    _, good = saved
    make, message = BROKEN[case]
    bad = tmp_path / "bad.safetensors"
    make(good, bad)
    with pytest.raises(CheckpointError, match=message) as refused:
        FlowModel.from_file(bad)
    text = str(refused.value)
    assert text.startswith(f"{bad}: ") and "\n" not in text and len(text) < 300


def test_exported_weights_are_readable_by_everyone(tmp_path):
    old = os.umask(0o077)  # even under a private umask
    try:
        path = save_component(tmp_path / "w.safetensors", tiny_flow(12, 3), MelParams(), {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left beside it


def nan_weights(path: Path) -> None:
    rewrite(path, path, tensors=lambda s: {k: torch.full_like(v, float("nan")) for k, v in s.items()})


# A checkpoints folder broken in one file -> (the file, how it is broken)
BROKEN_FOLDERS = {
    "engine truncated": ("note_model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:1000])),
    "engine NaN": ("mel_flow.safetensors", nan_weights),
    "engine sampler setting": ("note_model.safetensors", lambda p: rewrite(p, p, meta=lambda m: m["provenance"].update(
        sampler={"guidance": "loud"}))),
    # a file without the grid or the sampler settings it was trained with is refused, not given defaults
    "engine without a sampler record": ("mel_flow.safetensors", lambda p: rewrite(p, p, meta=lambda m: m[
        "provenance"].pop("sampler"))),
    "engine sampler record without steps": ("mel_flow.safetensors", lambda p: rewrite(p, p, meta=lambda m: m[
        "provenance"]["sampler"].pop("steps"))),
    "notes without roll parameters": ("note_model.safetensors", lambda p: rewrite(p, p, meta=lambda m: m[
        "provenance"].pop("roll_params"))),
    "notes with part of the roll parameters": ("note_model.safetensors", lambda p: rewrite(p, p, meta=lambda m: m[
        "provenance"]["roll_params"].pop("fps"))),
    "judge 0-byte": ("judge.safetensors", lambda p: p.write_bytes(b"")),
    "atlas truncated": ("atlas.npz", lambda p: p.write_bytes(p.read_bytes()[:500])),
}


@pytest.fixture(scope="module")
def full_folder(tiny_checkpoints, tmp_path_factory) -> Path:
    return full_checkpoints(tiny_checkpoints, tmp_path_factory.mktemp("full") / "checkpoints")


@pytest.fixture(params=list(BROKEN_FOLDERS))
def broken_folder(request, full_folder, tmp_path) -> tuple[Path, Path]:
    """(a copy of the full checkpoints folder with one file broken, that file)."""
    folder = shutil.copytree(full_folder, tmp_path / "checkpoints")
    name, breaks = BROKEN_FOLDERS[request.param]
    breaks(folder / name)
    return folder, folder / name


def test_the_cli_says_which_checkpoint_file_is_broken_in_one_line(broken_folder, tmp_path, capsys):
    folder, bad = broken_folder
    out = tmp_path / "clip.wav"
    assert cli(["generate", "--preset", "happy", "--seconds", "2", "--checkpoint", str(folder), "--out",
                str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: {bad}: ") and captured.err.count("\n") == 1
    assert not out.exists()


def test_the_app_says_which_checkpoint_file_is_broken_in_one_line(broken_folder):
    folder, bad = broken_folder
    with pytest.raises(SystemExit) as refused:
        app.main(["--checkpoints", str(folder)])
    text = str(refused.value.code)
    assert f"{bad}: " in text and "\n" not in text


def test_no_traceback_from_the_command_line(full_folder, tmp_path):
    folder = shutil.copytree(full_folder, tmp_path / "checkpoints")
    nan_weights(folder / "note_model.safetensors")
    done = subprocess.run([sys.executable, "-m", "moodgen", "generate", "--preset", "sad", "--checkpoint",
                           str(folder), "--out", str(tmp_path / "x.wav")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {folder / 'note_model.safetensors'}: tensor ")
    assert done.stderr.endswith("holds NaN or infinite values\n") and done.stderr.count("\n") == 1


def test_a_non_finite_value_names_its_tensor(saved, tmp_path):
    _, good = saved
    name = "stem.weight"
    bad = rewrite(good, tmp_path / "inf.safetensors",
                  tensors=lambda s: s | {name: s[name].clone().index_put_((torch.tensor([0]),), torch.tensor(1e39))})
    with pytest.raises(CheckpointError, match=rf"tensor {name} holds NaN or infinite values"):
        FlowModel.from_file(bad)


def test_loading_a_key_conditioned_model_imports_no_compiler(tmp_path):
    """Building the shapes on the meta device must not run torch's Python-level random init (it imports
    torch._dynamo, about a second of an app's start)."""
    path = save_component(tmp_path / "k.safetensors", tiny_flow(12, seed=3, keys=True), MelParams(), {})
    code = ("import sys; from moodgen.flow_model import FlowModel; "
            f"FlowModel.from_file({str(path)!r}); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(roll_params={"lowest_pitch": 21, "n_keys": 88, "fps": 100_000}),
     r"RollParams.fps must be in \[1, 100\]"),
    (lambda p: p.update(roll_params={"lowest_pitch": 21, "n_keys": 88, "fps": 16, "x": 1}), "unknown RollParams"),
    (lambda p: p.pop("roll_params"), "no roll_params record in its provenance"),
    (lambda p: p.pop("sampler"), "no sampler record in its provenance"),
    (lambda p: p.update(sampler={"guidance": True}), "guidance must be a number"),
])
def test_engine_settings_are_bounded_and_required_not_defaulted(tmp_path, edit, message):
    """fps=100000 hung the note engine (> 120 s); a file without roll parameters or sampler defaults was given
    numbers it was never trained with."""
    folder = write_tiny_checkpoints(tmp_path / "ckpt")
    (folder / "mel_flow.safetensors").unlink()
    path = folder / "note_model.safetensors"
    rewrite(path, path, meta=lambda m: edit(m["provenance"]))
    with pytest.raises(CheckpointError, match=message) as refused:
        MoodPipeline.from_checkpoint(folder)
    assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value)


@pytest.mark.parametrize("name, what", [("engine without a sampler record", "no sampler record"),
                                        ("notes with part of the roll parameters", "roll_params record lacks fps")])
def test_a_missing_training_record_is_named(name, what, full_folder, tmp_path):
    folder = shutil.copytree(full_folder, tmp_path / "checkpoints")
    file, breaks = BROKEN_FOLDERS[name]
    breaks(folder / file)
    with pytest.raises(CheckpointError, match=f"{re.escape(str(folder / file))}: .*{what}"):
        MoodPipeline.from_checkpoint(folder)
