"""The live stream on the tiny checkpoint: chunks that continue one another and follow `mood_at`."""
from __future__ import annotations

import numpy as np
import pytest

from moodgen.config import MelParams
from moodgen.pipeline import MoodPipeline
from moodgen.sidecar import read_sidecar, remake
from tests.test_journey import within_own_jumps

SR = MelParams().sample_rate


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def play(pipe, moods, engine, chunk_seconds=1.0, seed=7):
    calls = iter(moods)
    stream = pipe.stream(lambda: next(calls), chunk_seconds=chunk_seconds, seed=seed, engine=engine)
    chunks = [next(stream) for _ in moods]
    return chunks, stream.close()


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_chunks_are_contiguous_and_follow_the_mood(pipe, engine):
    happy, sad = (0.7, 0.7), (-0.7, -0.7)
    chunks, played = play(pipe, [happy] * 3 + [sad] * 3, engine)
    audio = np.concatenate([c.audio for c in chunks])
    assert np.array_equal(played.audio[:len(audio)], audio)  # what close() returns is what was played
    assert len(played.audio) - len(audio) < 0.02 * SR  # and what the mastering lookahead still held
    assert [c.index for c in chunks] == list(range(6))
    starts = np.cumsum([0] + [len(c.audio) for c in chunks[:-1]]) / SR
    assert [c.start_seconds for c in chunks] == pytest.approx(list(starts))
    assert abs(len(audio) - 6 * SR) < 0.02 * SR  # about chunk_seconds each, no gap
    for at in np.cumsum([len(c.audio) for c in chunks[:-1]]):
        assert within_own_jumps(audio, at)  # no click at a join
    assert [(c.valence, c.arousal) for c in chunks] == [happy] * 3 + [sad] * 3
    assert [c.key for c in chunks] == ["C major"] * 4 + ["C minor"] * 2  # valence crossed: next phrase boundary
    eng = pipe.engine(engine)
    assert played.curve.shape == (int(round(6 * eng.frame_rate)), 2) and played.stream["moods"][3] == list(sad)
    assert played.curve[int(round(3 * eng.frame_rate)) - 1].tolist() == list(happy)
    assert played.curve[-1].tolist() == list(sad)
    assert sum(c.frames.shape[1] for c in chunks) == played.curve.shape[0]
    assert (played.midi is not None) == eng.makes_midi


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_a_new_mood_changes_the_music_from_the_next_chunk_on(pipe, engine):
    steady, _ = play(pipe, [(0.6, 0.6)] * 4, engine)
    moved, _ = play(pipe, [(0.6, 0.6)] * 2 + [(-0.8, -0.8)] * 2, engine)
    for a, b in zip(steady[:2], moved[:2]):
        assert np.array_equal(a.audio, b.audio)  # the same seed and moods: the same chunks
    assert not np.array_equal(steady[2].frames, moved[2].frames)


def test_stream_input_is_checked(pipe):
    with pytest.raises(ValueError, match="chunk_seconds must be between 0.125 and 10"):
        pipe.stream(lambda: (0, 0), chunk_seconds=0.1)
    stream = pipe.stream(lambda: (0.5, float("nan")))
    with pytest.raises(ValueError, match="arousal must be a number in .-1, 1., got NaN"):
        next(stream)
    with pytest.raises(ValueError, match=r"mood_at\(\) must return \(valence, arousal\), got 0.5"):
        next(pipe.stream(lambda: 0.5))
    assert stream.close() is None  # nothing was played
    with pytest.raises(StopIteration):
        next(stream)


def test_a_stream_saves_what_was_played_and_remakes_it(pipe, tmp_path):
    chunks, played = play(pipe, [(0.2, 0.5), (0.4, -0.3), (-0.5, 0.1)], "notes", chunk_seconds=0.5)
    files = played.save(tmp_path / "live.wav")
    assert [f.suffix for f in files] == [".wav", ".json", ".mid"]
    again = remake(pipe, read_sidecar(files[1]))
    assert np.array_equal(again.audio, played.audio) and again.midi == played.midi
