"""The Gradio app through its public API (gradio_client), in-process, with the tiny real pipeline."""
from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from app_server import ATLAS_LICENCE, full_checkpoints, serve
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

import app
from moodgen.config import Limits, MelParams
from moodgen.deam import read_deam
from moodgen.mood import PRESETS

# generate's inputs in order: valence, arousal, seconds, seed, randomize, engine, steps, guidance, nearest_by, key
DEFAULTS = dict(valence=0.5, arousal=-0.3, seconds=5.0, seed=7, randomize=False, engine="mel", steps=4,
                guidance=2.0, nearest_by="mood", key=app.AUTO_KEY)
OUTPUTS = ("seed", "gen_image", "real_image", "gen_audio", "real_audio", "downloads", "params", "summary")


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints, tmp_path_factory) -> Path:
    return full_checkpoints(tiny_checkpoints, tmp_path_factory.mktemp("app") / "checkpoints")


@pytest.fixture(scope="module")
def url(checkpoints, tmp_path_factory):
    with serve(checkpoints, tmp_path_factory.mktemp("downloads")) as u:
        yield u


def connect(url: str) -> Client:
    # generous timeout: the CI machine may be busy, and no test here measures time
    return Client(url, verbose=False, httpx_kwargs={"timeout": 300}, analytics_enabled=False)


@pytest.fixture(scope="module")
def client(url) -> Client:
    return connect(url)


def generate(client: Client, **overrides) -> dict:
    args = {**DEFAULTS, **overrides}
    return dict(zip(OUTPUTS, client.predict(*args.values(), api_name="/generate")))


def test_api_names(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate", "/preset"} <= names


def test_generate_outputs(client):
    out = generate(client, engine="notes", valence=0.5, arousal=-0.3)
    params = out["params"]
    assert (params["valence"], params["arousal"]) == (0.5, -0.3)
    assert params["engine"] == "notes" and params["seed"] == out["seed"] == 7 and params["guidance"] == 2.0
    judged = params["judged"]
    assert len(judged) == 2 and all(-1.0 <= x <= 1.0 for x in judged)
    # the nearest atlas clip by mood to (0.5, -0.3) is the "relaxed" preset (0.7, -0.7)
    assert params["nearest"]["clip_id"] == "synthetic_relaxed" and params["nearest"]["by"] == "mood"
    assert params["nearest"]["distance"] == pytest.approx(math.hypot(0.2, 0.4))
    assert "synthetic_relaxed" in out["summary"] and ATLAS_LICENCE in out["summary"]
    info = sf.info(out["gen_audio"])
    assert info.samplerate == MelParams().sample_rate and info.duration == pytest.approx(5.0, abs=0.05)
    assert sf.info(out["real_audio"]).frames > 0
    sizes = {Image.open(out[k]).size for k in ("gen_image", "real_image")}
    assert len(sizes) == 1  # same axes, same figure size
    files = {Path(f).suffix: Path(f) for f in out["downloads"]}
    assert set(files) == {".wav", ".json", ".mid"}
    assert files[".mid"].read_bytes()[:4] == b"MThd"
    assert json.loads(files[".json"].read_text()) == params
    wav, sr = sf.read(files[".wav"], dtype="int16")
    assert sr == MelParams().sample_rate and len(wav) == info.frames


def test_mel_engine_has_no_midi_and_nearest_by_sound(client):
    out = generate(client, engine="mel", nearest_by="sound")
    assert {Path(f).suffix for f in out["downloads"]} == {".wav", ".json"}
    assert out["params"]["nearest"]["by"] == "sound" and "(by sound)" in out["summary"]


def test_key_choice_reaches_the_engine(client):
    drawn = generate(client, engine="notes", valence=-0.6, seed=3)
    assert drawn["params"]["key"] == "A minor" and "drawn for the mood" in drawn["summary"]  # the tiny prior
    asked = generate(client, engine="notes", valence=-0.6, seed=3, key="E major")
    assert asked["params"]["key"] == "E major" and "**E major** (as asked)" in asked["summary"]
    with pytest.raises(AppError, match="not in the list of choices"):
        generate(client, key="H dorian")


def test_randomize_reports_the_seed_used(client):
    out = generate(client, randomize=True, seed=0)
    assert out["seed"] == out["params"]["seed"] != 0  # a fresh seed (equal to 0 once in 2**31 runs)


def test_cache_hit_returns_the_same_clip(client):
    a, b = generate(client, seed=11), generate(client, seed=11)
    assert Path(a["gen_audio"]).read_bytes() == Path(b["gen_audio"]).read_bytes()


def test_preset(client):
    for name, point in PRESETS.items():
        assert tuple(client.predict(name, api_name="/preset")) == pytest.approx(point)


@pytest.mark.parametrize("overrides, message", [
    (dict(valence=1.5), "maximum value 1"),
    (dict(arousal=-2.0), "minimum value -1"),
    (dict(seconds=60.0), "maximum value 30"),
    (dict(seconds=0.5), "minimum value 1"),
    (dict(seed=-5), "minimum value 0"),
    (dict(engine="drums"), "drums"),
])
def test_bad_input_is_refused_with_a_message(client, overrides, message):
    with pytest.raises(AppError, match=message):
        generate(client, **overrides)


def test_unknown_preset(client):
    with pytest.raises(AppError, match="unknown preset 'bored'"):
        client.predict("bored", api_name="/preset")


@pytest.mark.parametrize("field, index", [("valence", 0), ("arousal", 1), ("duration", 2)])
def test_nan_is_refused_with_a_message(url, field, index):
    # JSON clients cannot send NaN, but the server's JSON parser accepts the bare token: post it raw.
    data = list(DEFAULTS.values())
    data[index] = "__NAN__"
    body = json.dumps({"data": data}).replace('"__NAN__"', "NaN")
    with httpx.Client(base_url=url, timeout=60) as http:
        event = http.post("gradio_api/call/generate", content=body,
                          headers={"Content-Type": "application/json"}).json()["event_id"]
        stream = http.get(f"gradio_api/call/generate/{event}").text
    assert "event: error" in stream
    assert f"{field} must be" in stream and "NaN" in stream


def test_eight_concurrent_clients_get_their_own_clips(url):
    clients = [connect(url) for _ in range(8)]

    def one(i: int) -> tuple[dict, str]:
        out = generate(clients[i], seed=100 + i, valence=0.1 * i - 0.4)
        return out["params"], hashlib.sha256(Path(out["gen_audio"]).read_bytes()).hexdigest()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for i, (params, _) in enumerate(results):
        assert params["seed"] == 100 + i and params["valence"] == pytest.approx(0.1 * i - 0.4)
    assert len({digest for _, digest in results}) == 8


def test_seconds_and_seed_checks():
    limits = Limits()
    assert limits.seconds("12.5", field="duration") == 12.5
    for bad in (float("nan"), 0.9, 30.1, "ten"):
        with pytest.raises(ValueError, match="duration"):
            limits.seconds(bad, field="duration")
    assert app.resolve_seed(3.0, False, limits) == 3
    assert 0 <= app.resolve_seed(3, True, limits) <= limits.max_seed
    for bad in (-1, 2**31, 0.5, float("nan"), "x"):
        with pytest.raises(ValueError, match="seed"):
            app.resolve_seed(bad, False, limits)


def test_mel_image_uses_the_shared_scale():
    params = MelParams()
    quiet = np.full((params.n_mels, params.frames_for(5.0)), -1.0, dtype=np.float32)
    loud = np.ones_like(quiet)
    a, b = (app.mel_image(m, params, "t", 5.0) for m in (quiet, loud))
    assert a.shape == b.shape and a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).sum() > 0  # absolute dB: silence and full scale differ


def test_main_without_a_checkpoint_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("MOODGEN_HF_REPO", raising=False)
    with pytest.raises(SystemExit, match="no moodgen checkpoint"):
        app.main(["--checkpoints", str(tmp_path)])


def test_deam_folder_becomes_the_atlas(tiny_checkpoints, shared_data, tmp_path):
    # real DEAM annotations, one synthetic mp3 laid out as DEAM's MEMD_audio/<song_id>.mp3
    root = tmp_path / "deam"
    root.mkdir()
    (root / "annotations").symlink_to(shared_data / "deam" / "annotations", target_is_directory=True)
    songs, _ = read_deam(root)
    song = songs[0]
    y = 0.3 * np.sin(2 * np.pi * 330.0 * np.arange(20 * 22050) / 22050)
    (root / "MEMD_audio").mkdir()
    sf.write(root / "MEMD_audio" / f"{song.song_id}.mp3", y.astype(np.float32), 22050, format="MP3")
    args = app.parse_args(["--checkpoints", str(tiny_checkpoints), "--deam-dir", str(root)])
    _, atlas = app.load_models(args)
    match = atlas.nearest_by_mood(song.valence, song.arousal)
    assert match.entry.clip_id == f"deam_{song.song_id}" and match.entry.source == "deam"
    assert match.audio is not None and match.mel.shape[0] == MelParams().n_mels
    with pytest.raises(SystemExit, match="DEAM"):
        app.load_models(app.parse_args(["--checkpoints", str(tiny_checkpoints), "--deam-dir", str(tmp_path / "x")]))


def test_server_address_follows_space_id(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app.parse_args([]).host == "127.0.0.1"
    monkeypatch.setenv("SPACE_ID", "user/moodgen")
    assert app.parse_args([]).host == "0.0.0.0" and app.parse_args([]).port == 7860


def test_space_configuration_matches_the_local_install():
    root = Path(app.__file__).parent

    def pins(name: str) -> set[str]:
        return {line.strip() for line in (root / name).read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")}

    assert pins("pre-requirements.txt") == pins("requirements-nodeps.txt")
    assert "portaudio19-dev" in pins("packages.txt")
    front = (root / "README.md").read_text().split("---")[1]
    config = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert f"gradio=={config['sdk_version']}" in pins("requirements.txt")
    assert config["app_file"] == "app.py" and config["sdk"] == "gradio" and config["license"] == "cc-by-nc-sa-4.0"
