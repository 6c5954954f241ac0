"""Run a stand-in's threaded HTTP server: in a background thread for tests, or until SIGTERM/SIGINT for the CLI."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from socketserver import BaseServer
from types import FrameType
from typing import TypeVar

S = TypeVar("S", bound=BaseServer)


@contextlib.contextmanager
def in_thread(server: S, name: str) -> Iterator[S]:
    """Serve `server` in a daemon thread while the block runs; shut it down and close it after."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_until_signal(server: S, name: str, url: str, note: str | None = None) -> int:
    """The CLI: print `ready <url>` (and a note on stderr), serve until SIGTERM/SIGINT, then stop cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with in_thread(server, name):
        print(f"ready {url}", flush=True)
        if note:
            print(note, file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    return 0
