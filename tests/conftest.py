"""Shared fixtures: a tiny random-weights checkpoint folder that exercises every inference path quickly."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import torch

from moodgen import render
from moodgen.checkpoint import save_component
from moodgen.config import MelParams, RollParams, to_dict
from moodgen.flow_model import FlowConfig, FlowModel
from moodgen.keys import parse_key
from moodgen.note_model import NoteModel, NoteModelConfig
from moodgen.soundfont import subset

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# The soundfonts this machine has, read before the suite hides them (`.ci/run` hides them from this too).
MACHINE_SOUNDFONTS = render.find_soundfonts()
FLUIDR3 = "FluidR3_GM.sf2"


@pytest.fixture(scope="session", autouse=True)
def fresh_machine_soundfonts():
    """Every test renders as a fresh machine would: only the bundled soundfont (TimGM6mb) is found and no
    $MOODGEN_SOUNDFONT picks another, whatever is installed here. A test that wants FluidR3 GM asks for `fluidr3`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(render.SOUNDFONT_DIRS_ENV, "")
        patch.delenv(render.SOUNDFONT_ENV, raising=False)
        yield


@pytest.fixture
def fluidr3() -> Path:
    """FluidR3 GM where this machine has it (Debian's fluid-soundfont-gm); the test skips where it has not."""
    found = [path for path in MACHINE_SOUNDFONTS if path.name == FLUIDR3]
    if not found:
        pytest.skip(f"needs {FLUIDR3}, which this machine lacks (Debian: apt-get install fluid-soundfont-gm)")
    return found[0]


def set_tiny_key_prior(model: torch.nn.Module) -> None:
    """Positive valence -> C major, negative -> A minor (almost surely), through the prior's valence column."""
    model.key.prior.zero_()
    model.key.prior[parse_key("C major"), 1] = 12.0
    model.key.prior[parse_key("A minor"), 1] = -12.0


def tiny_flow(in_channels: int, seed: int, keys: bool = False) -> FlowModel:
    torch.manual_seed(seed)
    model = FlowModel(FlowConfig(in_channels=in_channels, base_channels=8, channel_mults=(1, 2), blocks_per_level=1,
                                 kernel_size=3, cond_dim=16, mood_frequencies=2, attention_heads=2, groups=4,
                                 key_conditioning=keys))
    with torch.no_grad():  # random (not zero) output layer, so samples depend on the mood and the seed
        if keys:
            set_tiny_key_prior(model)
        model.head[-1].weight.normal_(0, 0.5)
        for block in model.modules():
            if hasattr(block, "conv2"):
                block.conv2.weight.normal_(0, 0.1)
    return model


def tiny_note_model(seed: int, keys: bool = False) -> NoteModel:
    torch.manual_seed(seed)
    model = NoteModel(NoteModelConfig(channels=8, dilations=(1, 2), cond_dim=8, mood_frequencies=2,
                                      key_conditioning=keys))
    with torch.no_grad():  # enough onsets to hear, and mood-dependent
        if keys:
            set_tiny_key_prior(model)
        model.out[-1].bias[:RollParams().n_keys] = -2.5
        model.out[-1].weight.normal_(0, 0.5)
    return model


def other_soundfont(folder: Path) -> Path:
    """folder/Other.sf2: a soundfont with only a piano (program 0), the bundled soundfont's electric piano, so tests
    have a second soundfont, with another sound and another hash, wherever only the bundled one is installed."""
    with render.bundled_soundfont().open("rb") as f:
        font = bytearray(subset(f, [4]))
    at = font.index(b"phdr") + 8 + 20  # the only preset's program number, after its 20-byte name
    assert struct.unpack_from("<H", font, at)[0] == 4
    struct.pack_into("<H", font, at, 0)
    path = folder / "Other.sf2"
    path.write_bytes(bytes(font))
    return path


def write_tiny_checkpoints(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    provenance = {"git_sha": "test", "data_manifest_hash": "test", "steps": 0, "wall_time_s": 0.0,
                  "roll_params": to_dict(RollParams()), "sampler": {"steps": 4, "guidance": 2.0}}
    save_component(folder / "note_model.safetensors", tiny_note_model(0, keys=True), MelParams(), provenance)
    save_component(folder / "mel_flow.safetensors", tiny_flow(MelParams().n_mels, 1, keys=True), MelParams(),
                   provenance)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """A checkpoints/ folder with tiny note and mel engines (random weights)."""
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny") / "checkpoints")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
