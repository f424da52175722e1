"""Live play (moodgen.live), OSC in (moodgen.osc) and MIDI out (moodgen.midi_out) on the tiny checkpoint."""
from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
from pythonosc.udp_client import SimpleUDPClient

from moodgen.live import CHUNK_SECONDS, LEAD_SECONDS, SampleQueue, Steering, play_live
from moodgen.midi_out import MidiOutput, open_port
from moodgen.osc import OscServer, parse_address
from moodgen.pipeline import MoodPipeline

ROOT = Path(__file__).resolve().parents[1]
HAPPY, SAD = (0.7, 0.7), (-0.8, -0.6)


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def wait_for(condition, seconds=20.0):
    """Poll until condition() holds (UDP and threads arrive when they arrive); fail after `seconds`."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


class Recorder:
    """An Output that steers as a listener would: to SAD while chunk 1 plays, stop while chunk 3 plays."""

    def __init__(self, steering):
        self.steering, self.calls, self.closed = steering, [], 0

    def play(self, chunk, at):
        self.calls.append((chunk.index, chunk.start_seconds, at, (chunk.valence, chunk.arousal)))
        if chunk.index == 1:
            self.steering.steer(*SAD)
        if chunk.index == 3:
            self.steering.stop()

    def close(self):
        self.closed += 1


def test_play_live_reads_the_mood_before_each_chunk_and_records_when_it_changed(pipe):
    steering = Steering(HAPPY)
    out = Recorder(steering)
    played = play_live(pipe.stream(lambda: steering.mood, CHUNK_SECONDS, engine="notes"), steering, [out])
    assert [c[0] for c in out.calls] == [0, 1, 2, 3] and out.closed == 1
    assert [c[3] for c in out.calls] == [HAPPY, HAPPY, SAD, SAD]  # the chunk after the change plays it
    assert played.generation.stream["moods"] == [list(HAPPY)] * 2 + [list(SAD)] * 2
    starts = [c[1] for c in out.calls]
    assert np.allclose(np.diff([c[2] for c in out.calls]), np.diff(starts))  # due times follow the audio...
    assert [(t, v, a) for t, v, a in played.changes] == [(played.changes[0][0], *SAD)]
    heard = played.changes[0][0]  # when the change came: before the chunk that plays it played
    assert heard <= played.due[2] and (played.due[2] <= heard + LEAD_SECONDS + CHUNK_SECONDS or played.stalls)
    assert played.starts == [round(s, 4) for s in starts] and set(played.stalls) <= set(played.starts)
    assert played.record()["live"]["changes"] == [list(c) for c in played.changes]


def test_steering_names_a_bad_field():
    steering = Steering()
    with pytest.raises(ValueError, match="arousal must be in"):
        steering.steer(0.5, 2)
    assert steering.mood == (0.0, 0.0) and steering.changes == []


def test_sample_queue_hands_on_audio_in_order_and_counts_underruns():
    q = SampleQueue()
    assert np.array_equal(q.pull(3), np.zeros(3)) and q.underruns == 0  # silence before anything came
    q.push(np.arange(1, 5, dtype=np.float32))
    q.push(np.arange(5, 7, dtype=np.float32))
    assert q.pull(3).tolist() == [1, 2, 3] and q.pull(3).tolist() == [4, 5, 6] and q.underruns == 0
    assert q.pull(2).tolist() == [0, 0] and q.underruns == 1


class FakePort(mido.ports.BaseOutput):
    """A mido output port that keeps what it is sent, with the time it was sent."""

    def __init__(self):
        super().__init__("fake")
        self.messages = []

    def _send(self, message):
        self.messages.append((time.monotonic(), message))


def heard_notes(chunks):
    """(seconds in the stream, pitch, velocity) of every note on in the chunks."""
    return [(c.start_seconds + t, p, v) for c in chunks for t, p, v in c.notes if v]


def test_chunk_notes_are_the_recorded_midi_as_heard(pipe):
    moods = iter([HAPPY] * 4 + [SAD] * 4)
    stream = pipe.stream(lambda: next(moods), CHUNK_SECONDS, engine="notes", seed=3)
    chunks = [next(stream) for _ in range(8)]
    played = stream.close()
    lag = (len(played.audio) - sum(len(c.audio) for c in chunks)) / played.sample_rate  # the limiter's lookahead
    recorded = sorted((n.start, n.pitch, n.velocity) for n in
                      pretty_midi.PrettyMIDI(io.BytesIO(played.midi)).instruments[0].notes)
    sent = heard_notes(chunks)
    assert len(recorded) > 0 and [(p, v) for _, p, v in sent] == [(p, v) for _, p, v in recorded]
    # Within the MIDI file's tick (2 ms); the limiter's lookahead settles over the first two chunks, so the first
    # chunk's notes may lead by half of it (8 ms)
    error = np.abs(np.subtract([t for t, _, _ in sent], [t + lag for t, _, _ in recorded]))
    assert error.max() <= 0.5 * lag + 0.002 and np.median(error) <= 0.002
    offs = sum(1 for c in chunks for _, _, v in c.notes if not v)
    assert offs <= len(sent)  # notes still ringing at the end have no off yet
    assert pipe.stream(lambda: HAPPY, engine="mel").__next__().notes is None  # engines without notes send none


def test_midi_output_sends_each_note_when_it_is_due_then_silences(pipe):
    steering, port = Steering(HAPPY), FakePort()
    midi = MidiOutput(port, program=0)
    due = []

    class Due:
        def play(self, chunk, at):
            due.extend((at + t, p, v) for t, p, v in chunk.notes)
            if chunk.index == 5:
                steering.stop()

        def close(self):
            wait_for(lambda: midi.sent == len(due))  # let the last notes go before play_live closes the port

    play_live(pipe.stream(lambda: steering.mood, CHUNK_SECONDS, engine="notes", seed=3), steering, [Due(), midi])
    kinds = [m.type for _, m in port.messages]
    assert kinds[0] == "program_change" and port.messages[-1][1].is_cc(123) and port.closed
    notes = [(t, m) for t, m in port.messages if m.type in ("note_on", "note_off")]
    assert [(m.note, m.velocity if m.type == "note_on" else 0) for _, m in notes[:len(due)]] == [
        (p, v) for _, p, v in due]
    assert all(sent >= at for (sent, _), (at, _, _) in zip(notes, due))  # never before it is heard
    held = {}
    for _, m in notes[:len(due)]:
        held[m.note] = m.type == "note_on"
    closing = [m for _, m in notes[len(due):]]
    assert all(m.type == "note_off" for m in closing)
    assert {m.note for m in closing} == {n for n, on in held.items() if on}  # closing lets go of the notes held


def test_a_midi_port_that_cannot_be_had_is_one_clear_error(monkeypatch):
    def refuse(name, virtual=False):
        raise OSError("no virtual ports here")

    monkeypatch.setattr(mido, "get_output_names", lambda: ["Synth A"])
    monkeypatch.setattr(mido, "open_output", refuse)
    with pytest.raises(ValueError, match=r"--midi-out: no MIDI output port 'DAW' \(ports: 'Synth A'\) and no "
                                         r"virtual port could be made \(no virtual ports here\)"):
        open_port("DAW")


def test_osc_address_is_checked():
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000) and parse_address("9001") == ("127.0.0.1", 9001)
    for bad in ("host:", "127.0.0.1:70000", "x"):
        with pytest.raises(ValueError, match="--osc must be HOST:PORT or PORT"):
            parse_address(bad)


def test_osc_messages_steer_and_bad_ones_are_ignored_with_one_line_each():
    steering, log = Steering(), []
    server = OscServer("127.0.0.1", 0, steering, log=log.append).start()
    try:
        client = SimpleUDPClient(*server.address)
        client.send_message("/moodgen/mood", [0.5, -0.25])
        wait_for(lambda: steering.mood == (0.5, -0.25))
        client.send_message("/moodgen/mood", [0.5])
        client.send_message("/moodgen/mood", ["happy", 0.2])
        client.send_message("/moodgen/mood", [0.1, 3.0])
        client.send_message("/moodgen/tempo", [120])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"hello", server.address)
        wait_for(lambda: len(log) == 5)
        client.send_message("/moodgen/stop", [])
        wait_for(steering.stopped.is_set)
    finally:
        server.stop()
    assert steering.mood == (0.5, -0.25) and [c[1:] for c in steering.changes] == [(0.5, -0.25)]
    assert "it takes two numbers" in log[0] and "it takes two numbers" in log[1]
    assert "arousal must be in [-1, 1], got 3.0" in log[2]
    assert "ignored /moodgen/tempo" in log[3] and "not OSC" in log[4]


def test_a_live_process_follows_osc_from_a_real_client(tiny_checkpoints, tmp_path):
    """python -m moodgen live, steered by python-osc: each chunk plays the last mood received before it was made,
    heard at most lead + chunk seconds after the message arrived (on the recording's clock)."""
    out = tmp_path / "live.wav"
    proc = subprocess.Popen([sys.executable, "-m", "moodgen", "live", "--osc", "127.0.0.1:0", "--out", str(out),
                             "--checkpoint", str(tiny_checkpoints), "--engine", "notes", "--seconds", "60"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("live: OSC on 127.0.0.1:"), ready + proc.stderr.read()
        client = SimpleUDPClient("127.0.0.1", int(ready.split(";")[0].rsplit(":", 1)[1]))
        sent = [(0.6, 0.6), (-0.7, -0.5), (0.2, 0.9), (-0.3, -0.9), (0.9, -0.2)]
        for mood in sent:  # a second apart: each is heard for two chunks at least
            time.sleep(1.0)
            client.send_message("/moodgen/mood", list(mood))
        client.send_message("/moodgen/mood", [7, 7])  # ignored, one line
        time.sleep(0.6)
        client.send_message("/moodgen/stop", [])
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout.split() == [str(out), str(out.with_suffix(".json")), str(out.with_suffix(".mid"))]
    assert stderr.count("osc: ignored") == 1 and "valence must be in [-1, 1], got 7.0" in stderr
    record = json.loads(out.with_suffix(".json").read_text())
    live, moods = record["live"], [tuple(m) for m in record["stream"]["moods"]]
    assert [tuple(c[1:]) for c in live["changes"]] == [tuple(float(np.float32(x)) for x in m) for m in sent]
    starts, due = live["starts"], live["due"]  # where each chunk starts in the recording; when it played
    assert len(starts) == len(due) == len(moods) and starts[0] == due[0] == 0
    assert all(np.diff(starts) > 0.9 * CHUNK_SECONDS) and all(np.diff(due) >= np.diff(starts) - 1e-3)
    stalled = {starts.index(s) for s in live["stalls"]}  # where one came late (and played late)
    for (heard, *mood), following in zip(live["changes"], live["changes"][1:] + [[float("inf")]]):
        first = moods.index(tuple(mood))
        assert all(m == tuple(mood) for m in moods[first:first + 2]) or first + 1 in stalled
        assert due[first] >= heard  # made after the change came
        if not stalled & set(range(first + 1)):
            assert due[first] - heard <= LEAD_SECONDS + CHUNK_SECONDS + 0.01  # the latency bound
        assert due[first] < following[0] + LEAD_SECONDS + CHUNK_SECONDS or stalled
