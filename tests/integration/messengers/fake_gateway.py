"""FakeGateway: a loopback "probe" gateway that records requests and plays scripted faults.

Each message id may have a list of steps (an HTTP status, "malformed", "hang", "drop" or
"stall") consumed one per request; with none left it plays `default_step`, 200 {"code": 0}
unless a test changes it. A stalled request answers 200 once the test calls release().
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OK_BODY = b'{"code": 0, "message": "OK"}'
HANG_S = 3.0
STALL_MAX_S = 30.0


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    client_port: int


class FakeGateway:
    def __init__(self, token: str = "test-gateway-token") -> None:
        self.token = token
        self._lock = threading.Lock()
        self._requests: dict[int, list[Request]] = defaultdict(list)
        self._steps: dict[int, list[int | str]] = {}
        self.default_step: int | str = 200
        self._released = threading.Event()
        self.stalled = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, message_id: int, steps: list[int | str]) -> None:
        with self._lock:
            self._steps[message_id] = list(steps)

    def release(self) -> None:
        """Let every request stalled so far answer; later ones stall until the next release."""
        with self._lock:
            released, self._released = self._released, threading.Event()
        released.set()

    def requests_for(self, message_id: int) -> list[Request]:
        with self._lock:
            return list(self._requests.get(message_id, []))

    def request_count(self, message_id: int) -> int:
        return len(self.requests_for(message_id))

    def _next_step(self, message_id: int) -> int | str:
        with self._lock:
            steps = self._steps.get(message_id)
            return steps.pop(0) if steps else self.default_step

    def total_requests(self) -> int:
        with self._lock:
            return sum(len(r) for r in self._requests.values())

    def _stall(self) -> None:
        with self._lock:
            self.stalled += 1
            released = self._released
        released.wait(STALL_MAX_S)
        with self._lock:
            self.stalled -= 1

    def _record(self, message_id: int, request: Request) -> None:
        with self._lock:
            self._requests[message_id].append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                message_id = int(self.path.rsplit("/", 1)[-1])
                request = Request(
                    self.path, dict(self.headers.items()), json.loads(raw), self.client_address[1]
                )
                gateway._record(message_id, request)
                if self.headers.get("Authorization") != f"Bearer {gateway.token}":
                    self._reply(401, b'{"code": 401, "message": "unauthorized"}')
                    return
                self._play(gateway._next_step(message_id))

            def _play(self, step: int | str) -> None:
                if step == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                elif step == "hang":
                    time.sleep(HANG_S)
                    self.close_connection = True
                elif step == "stall":
                    gateway._stall()
                    self._reply(200, OK_BODY)
                elif step == "malformed":
                    self._reply(200, b'{"code": 0, "mess')
                elif step == 200:
                    self._reply(200, OK_BODY)
                else:
                    self._reply(int(step), json.dumps({"code": step, "message": "fault"}).encode())

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def closed_port_url() -> str:
    """A loopback URL where nothing listens, for "gateway down"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
