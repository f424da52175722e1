"""moodgen.inverter (MelInverter, phase start, mel_to_audio) and the train.inverter smoke run."""
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from moodgen import audio
from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from moodgen.inverter import InverterConfig, MelInverter, mel_to_audio, phase_vocoder_phase

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(1)
P = MelParams()
SMALL = InverterConfig(channels=16, n_blocks=1, expansion=1)
CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "inverter.safetensors"


def harmonic_tone(seconds: float = 2.0, f0: float = 220.0) -> np.ndarray:
    """(S,) decaying tone with 8 harmonics, a stand-in for a piano note."""
    t = np.arange(int(seconds * P.sample_rate)) / P.sample_rate
    x = sum(0.3 / h * np.sin(2 * np.pi * f0 * h * t + h) for h in range(1, 9)) * np.exp(-t / 1.5)
    return x.astype(np.float32)


@pytest.mark.parametrize("kwargs", [{"channels": 0}, {"kernel_size": 4}, {"n_blocks": -1},
                                    {"n_mels": 600, "n_freqs": 513}])
def test_config_rejects_invalid(kwargs):
    with pytest.raises(ValueError):
        InverterConfig(**kwargs)


def test_config_must_match_mel_params():
    with pytest.raises(ValueError, match="n_mels"):
        InverterConfig(n_mels=64).check_matches(P)


def test_shapes():
    net = MelInverter(SMALL)
    with torch.no_grad():
        out = net(torch.rand(3, P.n_mels, 40) * 2 - 1)
    assert out.shape == (3, P.n_freqs, 40)
    assert float(out.min()) >= SMALL.log_floor
    mel = audio.mel_from_audio(harmonic_tone(0.2), P)  # short: librosa's NNLS inverse is slow
    for method in ("learned", "fast_gl", "librosa"):
        y = mel_to_audio(mel.numpy(), P, method, inverter=net, n_iter=2)
        assert y.shape == ((mel.shape[-1] - 1) * P.hop_length,) and y.dtype == np.float32
        assert np.isfinite(y).all()


def test_bad_inputs_raise():
    mel = np.zeros((P.n_mels, 10), dtype=np.float32)
    with pytest.raises(ValueError, match="inverter"):
        mel_to_audio(mel, P, "learned")
    with pytest.raises(ValueError, match="method"):
        mel_to_audio(mel, P, "wavenet")
    with pytest.raises(ValueError, match="n_mels"):
        mel_to_audio(np.zeros((64, 10), dtype=np.float32), P, "fast_gl")
    with pytest.raises(ValueError, match="phase_init"):
        mel_to_audio(mel, P, "fast_gl", phase_init="zeros")


def test_deterministic():
    mel = audio.mel_from_audio(harmonic_tone(0.5), P)
    net = MelInverter(SMALL).eval()
    a = mel_to_audio(mel, P, "learned", inverter=net, n_iter=4)
    np.testing.assert_array_equal(a, mel_to_audio(mel, P, "learned", inverter=net, n_iter=4))
    r1 = mel_to_audio(mel, P, "fast_gl", n_iter=4, seed=1, phase_init="random")
    np.testing.assert_array_equal(r1, mel_to_audio(mel, P, "fast_gl", n_iter=4, seed=1, phase_init="random"))
    assert not np.array_equal(r1, mel_to_audio(mel, P, "fast_gl", n_iter=4, seed=2, phase_init="random"))


def test_phase_vocoder_start_beats_random_phases_on_harmonic_tone():
    x = harmonic_tone()
    mag = audio.magnitude_from_audio(x, P)
    phase = phase_vocoder_phase(mag, P)
    assert phase.shape == mag.shape and float(phase.min()) >= 0 and float(phase.max()) <= 2 * np.pi
    sc = {init: audio.spectral_convergence(x, audio.griffin_lim(mag, P, n_iter=8, length=len(x), init_phase=init), P)
          for init in (phase, None)}
    assert sc[phase] < 0.1  # measured ~0.05
    assert sc[phase] < 0.5 * sc[None]


def test_fast_gl_bound_on_harmonic_tone():
    """Pseudo-inverse magnitude smears the upper harmonics: a weak but finite bound (measured ~0.55)."""
    x = harmonic_tone()
    y = mel_to_audio(audio.mel_from_audio(x, P), P, "fast_gl", n_iter=16)
    assert audio.spectral_convergence(x, y, P) < 0.7


def piano_phrase() -> np.ndarray:
    """(S,) eight notes rendered with the corpus' soundfont: the inverter's own domain (~3 s)."""
    import pretty_midi

    from moodgen import midi

    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for i, pitch in enumerate([60, 64, 67, 72, 67, 64, 48, 55]):
        piano.notes.append(pretty_midi.Note(90, pitch, 0.25 * i, 0.25 * i + 0.8))
    pm.instruments.append(piano)
    return midi.render_midi(pm, P.sample_rate)


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="checkpoints/inverter.safetensors not trained yet")
def test_trained_inverter_beats_pseudo_inverse_on_piano():
    net, meta = MelInverter.from_file(CHECKPOINT)
    assert {"git_sha", "data_manifest_hash", "steps", "wall_time_s", "command"} <= set(meta["provenance"])
    x = piano_phrase()
    mel = audio.mel_from_audio(x, P)
    learned = audio.spectral_convergence(x, mel_to_audio(mel, P, "learned", inverter=net), P)
    pinv = audio.spectral_convergence(x, mel_to_audio(mel, P, "fast_gl"), P)
    assert learned < 0.15 and learned < 0.75 * pinv  # measured 0.105 vs 0.173 (8 iterations)


def test_save_load_gives_identical_audio(tmp_path):
    torch.manual_seed(0)
    net = MelInverter(SMALL).eval()
    with torch.no_grad():  # non-trivial head, so the audio depends on every weight
        net.out.weight.normal_(0, 0.05)
    mel = audio.mel_from_audio(harmonic_tone(0.5), P)
    provenance = {"git_sha": "x", "data_manifest_hash": "y", "steps": 0, "wall_time_s": 0.0, "command": "test"}
    path = save_component(tmp_path / "inv.safetensors", net, P, provenance, half=False)
    loaded, meta = MelInverter.from_file(path)
    assert meta["config"] == asdict(SMALL)
    np.testing.assert_array_equal(mel_to_audio(mel, P, inverter=net, n_iter=4),
                                  mel_to_audio(mel, P, inverter=loaded, n_iter=4))
    # fp16 release files: loading twice gives the same audio
    half = save_component(tmp_path / "half.safetensors", net, P, provenance)
    a, b = (mel_to_audio(mel, P, inverter=MelInverter.from_file(half)[0], n_iter=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def make_tiny_cache(root: Path) -> Path:
    """A consolidated two-clip cache (one train, one val) of harmonic tones, in the real cache format."""
    from train.corpus.cache import Shard, SourceClip, consolidate, save_shard, shard_path

    (root / "shards").mkdir(parents=True)
    clips = []
    for i, split in enumerate(("train", "val")):
        x = harmonic_tone(1.0, f0=220.0 * (i + 1))
        mel = audio.mel_from_audio(x, P).numpy().T.astype(np.float16)
        save_shard(shard_path(root, f"c{i}"), Shard(f"k{i}", {0: mel}, audio.to_pcm16(x), None))
        clips.append(SourceClip(f"c{i}", root / f"c{i}.mid", "synthetic", f"s{i}", split, 1, "test"))
    consolidate(root, clips, {c.clip_id: (0.5, 0.5) for c in clips}, {"settings": {"mel": asdict(P)}})
    return root


def test_smoke_training_run(tmp_path):
    from train.inverter import main

    cache = make_tiny_cache(tmp_path / "cache")
    out, run_dir = tmp_path / "inverter.safetensors", tmp_path / "run"
    main(["--smoke", "--cache", str(cache), "--out", str(out), "--run-dir", str(run_dir)])
    net, meta = MelInverter.from_file(out)
    assert meta["provenance"]["steps"] == 3 and meta["provenance"]["data_manifest_hash"]
    assert meta["provenance"]["command"].startswith("python -m train.inverter --smoke")
    assert np.isfinite(json.loads((run_dir / "summary.json").read_text())["val_l1_log"])
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 3
    assert [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    y = mel_to_audio(audio.mel_from_audio(harmonic_tone(0.3), P), P, inverter=net, n_iter=2)
    assert np.isfinite(y).all()
