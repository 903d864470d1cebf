"""Free loopback ports, waiting for a listener, and an action repeated on a background thread."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

# Ports handed to services sit below the kernel's ephemeral range (32768 and up), so an
# outgoing connection cannot take one between choosing it and the service binding it.
SERVICE_PORTS = (20000, 32000)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now, outside the ephemeral range."""
    for _ in range(500):
        port = random.randrange(*SERVICE_PORTS)
        if _is_free(port):
            return port
    raise RuntimeError(f"no free port in {SERVICE_PORTS}")


def free_port_block(size: int, first: int = 20000, last: int = 32000) -> int:
    """The first port of `size` consecutive free loopback ports."""
    for base in range(first, last, size):
        if all(_is_free(port) for port in range(base, base + size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports in {first}-{last}")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Return once something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the process meant to listen on {port} exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f}s")


class Every:
    """Run an action every `interval` seconds (first at once if asked) while the block runs.

    The first error stops the repetition and is raised again when the block ends.
    """

    def __init__(self, interval: float, action: Callable[[], None], at_once: bool = False) -> None:
        self.interval = interval
        self.action = action
        self.at_once = at_once
        self.runs = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="every", daemon=True)

    def _loop(self) -> None:
        delay = 0.0 if self.at_once else self.interval
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.action()
            except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
                self._error = exc
                return
            self.runs += 1

    def __enter__(self) -> Every:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error
