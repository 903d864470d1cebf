"""stop_on_signals(): a Stopper that SIGTERM and SIGINT trigger once, from a thread of its own.

A signal handler runs on the main thread between two bytecodes, wherever that thread is:
possibly holding the very lock a stop needs (an Event's, a logging handler's), which would
hang the process for ever. A thread of its own takes those locks like any other thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


class Stopper:
    """`stopping` is set on stop(); callbacks registered before or after it all run once."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run callback at the stop, or now if the stop already came (during start-up)."""
        with self._lock:
            if not self.stopping.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def stop(self) -> None:
        with self._lock:
            self.stopping.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def stop_on_signals() -> Stopper:
    """Install the handlers; call this first thing, so a stop during start-up is not lost."""
    stopper = Stopper()
    called = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal called
        if called:
            return
        called = True
        threading.Thread(target=stopper.stop, name=f"stop-on-signal-{signum}", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopper
