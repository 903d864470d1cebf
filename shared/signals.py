"""on_stop_signals(stop): SIGTERM and SIGINT call stop() once, from a thread of its own.

A signal handler runs on the main thread between two bytecodes, wherever that thread is:
possibly holding the very lock stop() needs (an Event's, a logging handler's), which would
hang the process for ever. A thread of its own takes those locks like any other thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Install the handlers; call this first thing, so a stop during start-up is not lost."""
    called = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal called
        if called:
            return
        called = True
        threading.Thread(target=stop, name=f"stop-on-signal-{signum}", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
