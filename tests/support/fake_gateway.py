"""Loopback gateway with scripted faults (5xx, 429, slow, malformed, drop, stall) for tests.

The sandbox gateway (sandbox.gateway.GatewayServer) with a test token, the env a service needs
to reach it, and what messenger tests look at: every send request with its headers, body and
client port, and steps played per message id. A step is an HTTP status, "malformed", "hang"
(no reply until the client gives up), "drop" (the connection cut before a body) or "stall"
(200 once the test calls release()); with none left it plays `default_step`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from sandbox.gateway import (
    MALFORMED,
    SEND_PREFIX,
    TIMEOUT,
    Behaviour,
    GatewayApp,
    GatewayServer,
    RequestRecord,
    ScriptHook,
    Step,
)

__all__ = ["Behaviour", "FakeGateway", "RequestRecord", "ScriptHook", "Step", "GATEWAY_TOKEN"]

GATEWAY_TOKEN = "test-gateway-token"
DROP = "drop"
STALL = "stall"
HANG = "hang"
STALL_MAX_S = 30.0
STEPS_OF_THE_SANDBOX: dict[Step, Step] = {HANG: TIMEOUT, MALFORMED: MALFORMED}


@dataclass(frozen=True, slots=True)
class Request:
    """One send request as the gateway received it."""

    path: str
    headers: Mapping[str, str]
    body: Any
    client_port: int | None


class ProbeApp(GatewayApp):
    """The sandbox app, recording every send request and playing drop and stall itself."""

    def __init__(self, token: str, **options: Any) -> None:
        super().__init__(token, **options)
        self.lock = threading.Lock()
        self.seen: dict[int, list[Request]] = defaultdict(list)
        self.steps: dict[int, list[Step]] = {}
        self.default_step: Step = 200
        self.released = threading.Event()
        self.stalled = 0

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_id = scope["path"][len(SEND_PREFIX) :]
        if not (scope["path"].startswith(SEND_PREFIX) and raw_id.isdigit()):
            await super()._http(scope, receive, send)
            return
        raw = await read_all(receive)
        headers = CaseInsensitiveDict(
            {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        )
        message_id = int(raw_id)
        self.record(message_id, Request(scope["path"], headers, parse(raw), client_port(scope)))
        if headers.get("Authorization") == f"Bearer {self.token}":
            step = self.next_step(message_id)
            if step == DROP:
                # ASGI cannot close a connection unanswered: headers, then the cut, no body.
                await send({"type": "http.response.start", "status": 200, "headers": []})
                return
            if step == STALL:
                await self.stall()
            elif step != 200:
                self.script.add(message_id, [STEPS_OF_THE_SANDBOX.get(step, step)])
        await super()._http(scope, replay(raw, receive), send)

    def record(self, message_id: int, request: Request) -> None:
        with self.lock:
            self.seen[message_id].append(request)

    def next_step(self, message_id: int) -> Step:
        with self.lock:
            steps = self.steps.get(message_id)
            return steps.pop(0) if steps else self.default_step

    async def stall(self) -> None:
        with self.lock:
            self.stalled += 1
            released = self.released
        deadline = time.monotonic() + STALL_MAX_S
        while not released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        with self.lock:
            self.stalled -= 1


class FakeGateway(GatewayServer):
    """The sandbox gateway on 127.0.0.1 and a free port, with the test token."""

    app_class = ProbeApp
    app: ProbeApp

    def __init__(self, token: str = GATEWAY_TOKEN, **options: Any) -> None:
        super().__init__(host="127.0.0.1", port=0, token=token, **options)

    def start(self, timeout_s: float = 10.0) -> FakeGateway:
        super().start(timeout_s)
        return self

    def __enter__(self) -> FakeGateway:
        return self.start()

    def env(self) -> dict[str, str]:
        """Return the HERALD_GATEWAY_* variables that point a service at this gateway."""
        return {"HERALD_GATEWAY_URL": self.url, "HERALD_GATEWAY_TOKEN": self.token}

    def send(
        self,
        message_id: int,
        phone: str = "79001234567",
        text: str = "hello",
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> requests.Response:
        """POST one send request as Herald does and return the raw response."""
        return requests.post(
            f"{self.url}/v1/send/{message_id}",
            json={"id": message_id, "phone": phone, "text": text},
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=timeout_s,
        )

    def script(self, message_id: int, steps: list[Step]) -> None:
        """Play these steps to the message's next requests, one each, then default_step."""
        with self.app.lock:
            self.app.steps[message_id] = list(steps)

    @property
    def default_step(self) -> Step:
        return self.app.default_step

    @default_step.setter
    def default_step(self, step: Step) -> None:
        self.app.default_step = step

    @property
    def stalled(self) -> int:
        """How many requests are stalled now."""
        with self.app.lock:
            return self.app.stalled

    def release(self) -> None:
        """Let every request stalled so far answer; later ones stall until the next release."""
        with self.app.lock:
            released, self.app.released = self.app.released, threading.Event()
        released.set()

    def requests_for(self, message_id: int) -> list[Request]:
        with self.app.lock:
            return list(self.app.seen.get(message_id, []))

    def request_count(self, message_id: int) -> int:
        return len(self.requests_for(message_id))

    def total_requests(self) -> int:
        with self.app.lock:
            return sum(len(r) for r in self.app.seen.values())


async def read_all(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(raw: bytes, receive: Any) -> Any:
    """A receive() that hands the body read already to the sandbox app, then the client's."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def again() -> Any:
        return pending.pop() if pending else await receive()

    return again


def parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def client_port(scope: Mapping[str, Any]) -> int | None:
    client = scope.get("client")
    return int(client[1]) if client else None


def closed_port_url() -> str:
    """A loopback URL where nothing listens, for "gateway down"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
