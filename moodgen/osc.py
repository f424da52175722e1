"""OSC in: a UDP server that steers a live stream (`moodgen.live.Steering`) from a game engine or show control.

Messages: `/moodgen/mood valence arousal` (two numbers in [-1, 1]) plays that mood from the next chunk on;
`/moodgen/stop` ends the stream. Anything else (another address, wrong arguments, a datagram that is not OSC) is
ignored with one log line. Needs python-osc (the `live` extra).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from moodgen.config import shown
from moodgen.live import Steering

MOOD, STOP = "/moodgen/mood", "/moodgen/stop"


def parse_address(text: str, field: str = "--osc") -> tuple[str, int]:
    """'HOST:PORT' (or a bare PORT, on 127.0.0.1) -> (host, port); ValueError naming `field` otherwise."""
    host, _, port = str(text).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"{field} must be HOST:PORT or PORT (a port 0-65535; 0 picks a free one), got {shown(text)}")
    return host or "127.0.0.1", number


class LoggingDispatcher(Dispatcher):
    """A dispatcher that says what it drops: a packet that does not parse, an address nobody handles."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__()
        self.log = log
        self.set_default_handler(lambda address, *args: log(f"osc: ignored {address} {shown(list(args))}: "
                                                            f"only {MOOD} valence arousal and {STOP}"))

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        try:
            osc_packet.OscPacket(data)
        except osc_packet.ParseError as exc:
            self.log(f"osc: ignored a packet that does not parse ({exc})")
            return []
        return super().call_handlers_for_packet(data, client_address)


class OscServer(BlockingOSCUDPServer):
    """Serves on its own daemon thread once started; `address` is where it listens (the port picked for 0)."""

    def __init__(self, host: str, port: int, steering: Steering, log: Callable[[str], None] = print):
        dispatcher = LoggingDispatcher(log)
        dispatcher.map(MOOD, self._mood)
        dispatcher.map(STOP, lambda _address, *_args: steering.stop())
        self.steering, self.log = steering, log
        super().__init__((host, port), dispatcher)
        self.address: tuple[str, int] = self.server_address[:2]
        self._thread = threading.Thread(target=self.serve_forever, name="osc", daemon=True)

    def verify_request(self, request: Any, client_address: tuple[str, int]) -> bool:
        ok = super().verify_request(request, client_address)
        if not ok:
            self.log(f"osc: ignored a datagram from {client_address[0]} that is not OSC")
        return ok

    def _mood(self, address: str, *args: Any) -> None:
        if len(args) != 2 or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
            self.log(f"osc: ignored {address} {shown(list(args))}: it takes two numbers, valence and arousal")
            return
        try:
            self.steering.steer(*args)
        except ValueError as exc:
            self.log(f"osc: ignored {address}: {exc}")

    def start(self) -> OscServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
