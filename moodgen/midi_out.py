"""MIDI out: a live stream's notes sent to a MIDI port as they are heard, so a DAW or a synth plays along.

Each chunk's notes (`Chunk.notes`) are due at the chunk's time plus their offset; one thread sends each message
when it is due. The port is a `mido` output (`mido.ports.BaseOutput`); `open_port` opens one by name, or makes a
virtual port of that name where the OS offers them (ALSA, CoreMIDI). Needs python-rtmidi (the `live` extra).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import mido

from moodgen.config import shown
from moodgen.stream import Chunk

ALL_NOTES_OFF = 123  # a control change


def open_port(name: str, field: str = "--midi-out") -> mido.ports.BaseOutput:
    """The output port called `name`, else a new virtual one; ValueError naming `field` when neither can be had."""
    try:
        names = mido.get_output_names()
    except OSError:  # no MIDI system at all (no ALSA sequencer)
        names = []
    try:
        return mido.open_output(name, virtual=name not in names)
    except (OSError, NotImplementedError) as exc:
        ports = ", ".join(map(repr, names)) or "none here"
        raise ValueError(f"{field}: no MIDI output port {shown(name)} (ports: {ports}) and no virtual port could "
                         f"be made ({exc})") from None


class MidiOutput:
    """An Output (`moodgen.live`) that sends the notes of each chunk to `port` on `channel`, timed as they play.
    `program` (the stream's instrument, from its render record) is selected first; `close` silences what still
    sounds and closes the port."""

    def __init__(self, port: mido.ports.BaseOutput, program: int | None = None, channel: int = 0,
                 clock: Callable[[], float] = time.monotonic):
        self.port, self.channel, self.clock = port, channel, clock
        self._due: queue.Queue[tuple[float, mido.Message] | None] = queue.Queue()
        self._closing = threading.Event()
        self.sent: int = 0
        self.sounding: set[int] = set()
        if program is not None:
            port.send(mido.Message("program_change", program=program, channel=channel))
        self._thread = threading.Thread(target=self._send, name="midi-out", daemon=True)
        self._thread.start()

    def play(self, chunk: Chunk, at: float) -> None:
        for offset, pitch, velocity in chunk.notes or ():
            kind = "note_on" if velocity else "note_off"
            self._due.put((at + offset, mido.Message(kind, note=pitch, velocity=velocity, channel=self.channel)))

    def _send(self) -> None:
        # Chunks come in order and their notes are sorted, so the queue is in time order.
        while (item := self._due.get()) is not None:
            due, message = item
            if self._closing.wait(max(0.0, due - self.clock())):
                break
            self.port.send(message)
            self.sent += 1
            (self.sounding.add if message.type == "note_on" else self.sounding.discard)(message.note)

    def close(self) -> None:
        """Stop now (notes not yet due are dropped), silence the channel and close the port."""
        self._closing.set()
        self._due.put(None)
        self._thread.join()
        for pitch in sorted(self.sounding):
            self.port.send(mido.Message("note_off", note=pitch, velocity=0, channel=self.channel))
        self.port.send(mido.Message("control_change", control=ALL_NOTES_OFF, value=0, channel=self.channel))
        self.port.close()
