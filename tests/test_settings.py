"""Settings: one frozen object checked in one place, one message per field, the same for library, CLI and app."""
from __future__ import annotations

import dataclasses
import json

import pytest

from moodgen.pipeline import MoodPipeline
from moodgen.settings import Settings


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def test_checked_fills_every_default_and_is_idempotent(pipe):
    s = pipe.settings()
    eng = pipe.engine(None)
    assert (s.engine, s.seed, s.guidance, s.dry, s.loop) == (eng.name, 0, eng.default_guidance, False, False)
    assert s.steps == (eng.default_steps if eng.uses_steps else None)
    assert pipe.settings(s) == s and hash(pipe.settings(s)) == hash(s)  # a cache key
    assert pipe.settings(s, seed="3").seed == 3  # keyword changes funnel into the same check
    notes = pipe.settings(engine="notes", steps=9, instrument="", soundfont=None)
    assert notes.steps is None and notes.instrument == pipe.engine("notes").instruments[0]
    assert notes.soundfont == pipe.engine("notes").soundfont
    mel = pipe.settings(engine="mel", instrument="harp")
    assert mel.instrument is None and mel.soundfont is None  # checked, then ignored where no notes are played


@pytest.mark.parametrize("changes, field", [
    (dict(engine="tuba"), "engine"), (dict(engine=["mel"]), "engine"), (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"), (dict(steps=0), "steps"), (dict(steps="many"), "steps"), (dict(guidance=99), "guidance"),
    (dict(guidance=float("nan")), "guidance"), (dict(key="Z major"), "key"), (dict(key=7), "key"),
    (dict(instrument="tuba"), "instrument"), (dict(soundfont="none.sf2"), "soundfont"), (dict(dry="yes"), "dry"),
    (dict(loop=1), "loop"),
])
def test_one_message_per_field_names_it(pipe, changes, field):
    with pytest.raises(ValueError) as info:
        pipe.settings(**changes)
    message = str(info.value)
    assert message.startswith(f"{field} must") and "\n" not in message and len(message) < 300


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings().with_changes(colour="red")


def test_a_generation_records_its_settings_and_a_sidecar_replays_them(pipe):
    asked = Settings(engine="notes", seed=4, instrument="harp", dry=True)
    gen = pipe.generate(0.3, -0.2, 1.0, asked)
    record = json.loads(json.dumps(gen.params()))["settings"]
    assert Settings.from_record(record) == gen.settings == pipe.settings(asked)
    assert (gen.engine, gen.seed, gen.steps, gen.guidance) == (asked.engine, 4, None, gen.settings.guidance)
    assert gen is pipe.generate(0.3, -0.2, 1.0, engine="notes", seed=4, instrument="harp", dry=True)  # one cache


def test_generation_is_built_with_keywords_only():
    from moodgen.generation import Generation
    assert all(f.kw_only for f in dataclasses.fields(Generation))
