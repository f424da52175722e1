"""`python -m moodgen journey`, `extend` and `generate --loop` on the tiny checkpoint: files, determinism, errors."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from moodgen.__main__ import main as cli

PATH = "0:-0.6,-0.6 4:0.7,0.7 10:-0.6,0.8"


def run(tiny_checkpoints, *args: str) -> int:
    return cli([*args, "--checkpoint", str(tiny_checkpoints)])


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_journey_extend_and_loop_are_deterministic(tiny_checkpoints, tmp_path, engine):
    suffixes = [".wav", ".json"] + ([".mid"] if engine == "notes" else [])
    for run_name in ("a", "b"):
        d = tmp_path / run_name
        assert run(tiny_checkpoints, "journey", "--path", PATH, "--engine", engine, "--seed", "2",
                   "--out", str(d / "j.wav")) == 0
        assert run(tiny_checkpoints, "extend", str(d / "j.json"), "--seconds", "3", "--valence", "0.5",
                   "--out", str(d / "longer.wav")) == 0
        assert run(tiny_checkpoints, "generate", "--preset", "happy", "--seconds", "3", "--loop", "--engine", engine,
                   "--out", str(d / "loop.wav")) == 0
        assert run(tiny_checkpoints, "journey", "--presets", "sad,happy", "--seconds", "10", "--engine", engine,
                   "--out", str(d / "presets.wav")) == 0
    for stem in ("j", "longer", "loop", "presets"):
        for suffix in suffixes:
            a, b = (tmp_path / r / f"{stem}{suffix}" for r in ("a", "b"))
            assert a.read_bytes() == b.read_bytes(), f"{stem}{suffix}"
    journey, _ = sf.read(tmp_path / "a" / "j.wav", dtype="int16")
    longer, sr = sf.read(tmp_path / "a" / "longer.wav", dtype="int16")
    assert len(journey) == 10 * sr and len(longer) == 13 * sr
    assert np.array_equal(longer[:len(journey)], journey)  # extend keeps the first part
    params = json.loads((tmp_path / "a" / "longer.json").read_text())
    assert params["waypoints"][0] == [0.0, -0.6, -0.6] and params["extensions"][0]["seconds"] == 3.0
    assert params["engine"] == engine and len(params["checkpoint_sha256"]) == 64 and params["seed"] == 2
    assert {"mood_curve", "key_changes", "loop"} <= params.keys()
    assert json.loads((tmp_path / "a" / "loop.json").read_text())["loop"] is True
    presets = json.loads((tmp_path / "a" / "presets.json").read_text())
    assert presets["waypoints"] == [[0.0, -0.7, -0.7], [10.0, 0.7, 0.7]] and presets["presets"] == "sad,happy"


@pytest.mark.parametrize("args, message", [
    (["journey", "--path", "0:0,0"], "at least two"),
    (["journey", "--path", "0:0,0 0:0.5,0.5"], "waypoint 2: times must increase"),
    (["journey", "--path", "0:0,0 20:nan,0"], "waypoint 2: valence must be a number in .-1, 1., got NaN"),
    (["journey", "--path", "0:0,0 20:0,2"], "waypoint 2: arousal must be in .-1, 1., got 2.0"),
    (["journey", "--path", "0:0,0 700:0,0"], "waypoint 2 seconds must be between 0 and 600, got 700"),
    (["journey", "--path", "0:0,0 5:0,0"], "journey length .* must be between 10 and 600, got 5"),
    (["journey", "--path", "0:0,0 20:0.5"], "--path: '20:0.5' is not seconds:valence,arousal"),
    (["journey", "--presets", "sad", "--seconds", "20"], "at least two presets"),
    (["journey", "--presets", "sad,happy", "--seconds", "900"], "waypoint 2 seconds must be between 0 and 600"),
    (["journey", "--path", "0:0,0 20:0,0", "--seed", "-1"], "seed must be between 0 and"),
])
def test_journey_bad_input_is_one_line(tiny_checkpoints, tmp_path, capsys, args, message):
    assert run(tiny_checkpoints, *args, "--out", str(tmp_path / "x.wav")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (tmp_path / "x.wav").exists()


def test_presets_need_seconds(tiny_checkpoints, tmp_path, capsys):
    assert run(tiny_checkpoints, "journey", "--presets", "sad,happy", "--out", str(tmp_path / "x.wav")) == 2
    assert "--presets needs --seconds" in capsys.readouterr().err


def test_extend_refuses_a_sidecar_from_other_weights(tiny_checkpoints, tmp_path, capsys):
    clip = tmp_path / "clip.wav"
    assert run(tiny_checkpoints, "generate", "--preset", "sad", "--seconds", "2", "--engine", "mel",
               "--out", str(clip)) == 0
    params = json.loads(clip.with_suffix(".json").read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(params | {"checkpoint_sha256": "f" * 64}))
    assert run(tiny_checkpoints, "extend", str(other), "--seconds", "2", "--out", str(tmp_path / "x.wav")) == 2
    assert f"{other}: made with other weights for engine 'mel' (ffffffffffff..." in capsys.readouterr().err
    notes_only = tmp_path / "notes_only"
    notes_only.mkdir()
    shutil.copy(tiny_checkpoints / "note_model.safetensors", notes_only)
    assert cli(["extend", str(clip.with_suffix(".json")), "--seconds", "2", "--checkpoint", str(notes_only),
                "--out", str(tmp_path / "y.wav")]) == 2
    assert "made by engine 'mel', which this checkpoint does not have (notes)" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run(tiny_checkpoints, "extend", str(bad), "--seconds", "2", "--out", str(tmp_path / "z.wav")) == 2
    assert "not a readable JSON sidecar" in capsys.readouterr().err
    bad.write_text('{"engine": "notes"}')
    assert run(tiny_checkpoints, "extend", str(bad), "--seconds", "2", "--out", str(tmp_path / "z.wav")) == 2
    assert "not a moodgen sidecar (no seed, guidance" in capsys.readouterr().err
    assert run(tiny_checkpoints, "extend", str(clip.with_suffix(".json")), "--seconds", "0",
               "--out", str(tmp_path / "z.wav")) == 2
    assert "seconds must be between 1 and 600, got 0" in capsys.readouterr().err
