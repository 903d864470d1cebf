"""Sandbox HTTP gateway: the "probe" send protocol as a raw ASGI app on uvicorn.

Injects seeded faults (5xx, 429, 400, slow, hanging, malformed replies) and
scripted per-message statuses, and records every delivery for tests and benches.
Given a receipts URL and token, it posts delivery receipts back for what it accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import multiprocessing
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from types import TracebackType
from typing import Any, Self

import uvicorn

SEND_PREFIX = "/v1/send/"
SUCCESS_BODY = b'{"code": 0, "message": "OK"}'
# Truncated JSON: a reply a client cannot parse, so it must retry.
MALFORMED_BODY = b'{"code": 0, "mess'
JSON_HEADERS = [(b"content-type", b"application/json")]
TIMEOUT = "timeout"
MALFORMED = "malformed"
SLOW = "slow"

log = logging.getLogger("sandbox.gateway")

# A scripted step: an HTTP status, or "timeout", "malformed" or "slow" (a late 200).
Step = int | str
# (message_id, attempt starting at 1) -> a step, or None to fall back to the random faults.
ScriptHook = Callable[[int, int], Step | None]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the gateway answers valid requests; the fault rates are fractions of requests."""

    delay_ms: float = 0.0
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    slow_rate: float = 0.0
    slow_ms: float = 3000.0
    malformed_rate: float = 0.0
    reject_rate: float = 0.0
    status_429_rate: float = 0.0
    retry_after_s: int = 0  # sent with every 429 when above zero
    fail_status: int = 500


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request seen by the gateway; status is None when it never answered."""

    message_id: int | None
    outcome: str
    status: int | None
    at_monotonic: float


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    deliveries: int = 0
    first_success_monotonic: float | None = None
    last_success_monotonic: float | None = None
    first_success_wall: float | None = None
    last_success_wall: float | None = None
    outcomes: Counter[str] = field(default_factory=Counter)


class Recorder:
    """Thread-safe record of requests and deliveries; without bodies it keeps only counts."""

    def __init__(self, record_bodies: bool = True, max_requests_kept: int = 100_000) -> None:
        self.record_bodies = record_bodies
        self._lock = threading.Lock()
        self._max_requests_kept = max_requests_kept
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts = _Counts()
            self._per_id: dict[int, int] = {}
            self._bodies: dict[int, dict[str, Any]] = {}
            self._requests: deque[RequestRecord] = deque(maxlen=self._max_requests_kept)

    def record(
        self, message_id: int | None, outcome: str, status: int | None, body: Any = None
    ) -> None:
        now = time.monotonic()
        with self._lock:
            counts = self._counts
            counts.requests += 1
            counts.outcomes[outcome] += 1
            if self.record_bodies:
                self._requests.append(RequestRecord(message_id, outcome, status, now))
            if outcome == "delivered" and message_id is not None:
                self._record_delivery(message_id, body, now)

    def _record_delivery(self, message_id: int, body: Any, now: float) -> None:
        counts = self._counts
        counts.deliveries += 1
        self._per_id[message_id] = self._per_id.get(message_id, 0) + 1
        if self.record_bodies:
            self._bodies[message_id] = body
        wall = time.time()
        if counts.first_success_monotonic is None:
            counts.first_success_monotonic, counts.first_success_wall = now, wall
        counts.last_success_monotonic, counts.last_success_wall = now, wall

    def stats(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        with self._lock:
            c = self._counts
            distinct = len(self._per_id)
            return {
                "requests": c.requests,
                "deliveries": c.deliveries,
                "distinct_ids": distinct,
                "duplicates": c.deliveries - distinct,
                "outcomes": dict(c.outcomes),
                "first_success_monotonic": c.first_success_monotonic,
                "last_success_monotonic": c.last_success_monotonic,
                "first_success_at": c.first_success_wall,
                "last_success_at": c.last_success_wall,
            }

    def delivery_count(self, message_id: int) -> int:
        with self._lock:
            return self._per_id.get(message_id, 0)

    def last_body(self, message_id: int) -> dict[str, Any] | None:
        with self._lock:
            return self._bodies.get(message_id)

    def delivered_ids(self) -> set[int]:
        with self._lock:
            return set(self._per_id)

    def requests(self) -> list[RequestRecord]:
        """Return the latest requests in arrival order (empty without bodies)."""
        with self._lock:
            return list(self._requests)


@dataclass(frozen=True, slots=True)
class ReceiptOptions:
    """Where and how receipts go: each accepted message gets one after `delay_s`."""

    url: str
    token: str = field(repr=False)
    delay_s: float = 1.0
    undelivered_share: float = 0.05
    error: str = "absent subscriber"
    seed: int | None = 0


class ReceiptPoster:
    """Posts receipts from a thread: up to MAX_BATCH per POST, at least every FLUSH_S.

    The event loop only appends to a deque, so the send path stays as cheap as before; a
    POST that fails is sent again, with the same receipts, after a growing pause.
    """

    MAX_BATCH = 1000
    FLUSH_S = 0.2
    MAX_BACKOFF_S = 5.0
    TIMEOUT_S = 10.0

    def __init__(self, options: ReceiptOptions) -> None:
        self.options = options
        self._auth = f"Bearer {options.token}"
        self._due: deque[tuple[float, int]] = deque()  # (monotonic due time, message id)
        self._rng = random.Random(options.seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def accepted(self, message_id: int) -> None:
        """Called on the gateway's event loop for every message it took."""
        self._due.append((time.monotonic() + self.options.delay_s, message_id))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-receipts", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after one last try at the receipts already due; later ones are dropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "posted": self._counts["posted"],
                "undelivered": self._counts["undelivered"],
                "posts": self._counts["posts"],
                "failed_posts": self._counts["failed_posts"],
                "waiting": len(self._due),
            }

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        backoff = self.FLUSH_S
        while True:
            stopping = self._stop.is_set()
            self._take_due(batch)
            if batch:
                if self._post(batch):
                    batch, backoff = [], self.FLUSH_S
                    if len(self._due) and self._due[0][0] <= time.monotonic():
                        continue  # more than a batch was due: send the next one now
                else:
                    if stopping:
                        return
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.MAX_BACKOFF_S)
                    continue
            if stopping:
                return
            self._stop.wait(self._until_next())

    def _until_next(self) -> float:
        if not self._due:
            return self.FLUSH_S
        return min(self.FLUSH_S, max(0.0, self._due[0][0] - time.monotonic()))

    def _take_due(self, batch: list[dict[str, Any]]) -> None:
        now, due = time.monotonic(), self._due
        at = None
        while due and len(batch) < self.MAX_BATCH and due[0][0] <= now:
            _, message_id = due.popleft()
            at = at or dt.datetime.now(dt.UTC).isoformat()
            if self._rng.random() < self.options.undelivered_share:
                receipt = {"id": message_id, "status": "undelivered", "error": self.options.error}
            else:
                receipt = {"id": message_id, "status": "delivered"}
            batch.append({**receipt, "at": at})

    def _post(self, batch: list[dict[str, Any]]) -> bool:
        request = urllib.request.Request(
            self.options.url,
            data=json.dumps(batch).encode(),
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT_S) as reply:
                ok = 200 <= reply.status < 300
        except (urllib.error.URLError, OSError) as exc:
            log.warning("receipts not taken (%d): %s", len(batch), exc)
            ok = False
        with self._lock:
            if ok:
                self._counts["posts"] += 1
                self._counts["posted"] += len(batch)
                self._counts["undelivered"] += sum(r["status"] == "undelivered" for r in batch)
            else:
                self._counts["failed_posts"] += 1
        return ok


def _checked(steps: list[Step]) -> list[Step]:
    for step in steps:
        if step not in (TIMEOUT, MALFORMED, SLOW) and not (
            isinstance(step, int) and 100 <= step <= 599
        ):
            raise ValueError(f"a scripted step is a status or {TIMEOUT!r}, {MALFORMED!r}, {SLOW!r}")
    return steps


class _Script:
    """Per-message status queues plus an optional hook; attempts count every send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[int, deque[Step]] = {}
        self._attempts: dict[int, int] = {}
        self.hook: ScriptHook | None = None

    def set(self, steps: Mapping[int, list[Step]] | ScriptHook | None) -> None:
        with self._lock:
            self._queues, self._attempts, self.hook = {}, {}, None
            if callable(steps):
                self.hook = steps
            elif steps:
                self._queues = {int(k): deque(_checked(v)) for k, v in steps.items() if v}

    def add(self, message_id: int, steps: list[Step]) -> None:
        with self._lock:
            self._queues.setdefault(message_id, deque()).extend(_checked(steps))

    def next_step(self, message_id: int) -> Step | None:
        if self.hook is None and not self._queues:
            return None  # the hot path: nothing scripted
        with self._lock:
            attempt = self._attempts[message_id] = self._attempts.get(message_id, 0) + 1
            queue = self._queues.get(message_id)
            if queue:
                step = queue.popleft()
                if not queue:
                    del self._queues[message_id]  # keeps the unscripted fast path reachable
                return step
            hook = self.hook
        return hook(message_id, attempt) if hook else None


def _error_body(status: int, message: str, errors: dict[str, str] | None = None) -> bytes:
    payload: dict[str, Any] = {"code": status, "message": message}
    if errors:
        payload["errors"] = errors
    return json.dumps(payload).encode()


def _body_errors(path_id: int, body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    errors = {}
    message_id = body.get("id")
    if type(message_id) is not int:
        errors["id"] = "must be an integer"
    elif message_id != path_id:
        errors["id"] = "must equal the id in the path"
    phone = body.get("phone")
    if not isinstance(phone, str) or not phone.isascii() or not phone.isdigit():
        errors["phone"] = "must be a string of digits"
    if not isinstance(body.get("text"), str):
        errors["text"] = "must be a string"
    # Optional: when the message stops being worth delivering.
    valid_until = body.get("valid_until")
    if valid_until is not None and not _is_iso_instant(valid_until):
        errors["valid_until"] = "must be an ISO 8601 instant with its offset"
    return errors


def _is_iso_instant(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


class GatewayApp:
    """The raw ASGI application: auth, validation, faults, recording."""

    def __init__(
        self,
        token: str,
        seed: int | None = 0,
        record_bodies: bool = True,
        receipts: ReceiptOptions | None = None,
        **behaviour: Any,
    ) -> None:
        self.token = token
        self.receipts = ReceiptPoster(receipts) if receipts else None
        self._auth = f"Bearer {token}".encode()
        self.behaviour = Behaviour(**behaviour)
        self.recorder = Recorder(record_bodies=record_bodies)
        self.script = _Script()
        self._rng = random.Random(seed)

    def set_behaviour(self, seed: int | None = None, **changes: Any) -> Behaviour:
        """Change some behaviour fields at runtime; a seed restarts the fault sequence."""
        # One attribute swap, so the event loop never sees a half-updated behaviour.
        self.behaviour = replace(self.behaviour, **changes)
        if seed is not None:
            self._rng = random.Random(seed)
        return self.behaviour

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if path.startswith(SEND_PREFIX) and method == "POST":
            await self._send_route(scope, receive, send, path[len(SEND_PREFIX) :])
        elif path == "/_stats" and method == "GET":
            stats = self.recorder.stats()
            if self.receipts:
                stats["receipts"] = self.receipts.stats()
            await _reply(send, 200, json.dumps(stats).encode())
        elif path == "/_reset" and method == "POST":
            self.recorder.reset()
            await _reply(send, 200, SUCCESS_BODY)
        elif path == "/healthz":
            await _reply(send, 200, SUCCESS_BODY)
        else:
            await _reply(send, 404, _error_body(404, "not found"))

    async def _send_route(self, scope: dict[str, Any], receive: Any, send: Any, raw: str) -> None:
        raw_body = await _read_body(receive)
        if not self._is_authorized(scope["headers"]):
            self.recorder.record(None, "unauthorized", 401)
            await _reply(send, 401, _error_body(401, "invalid or missing bearer token"))
            return
        if not raw.isascii() or not raw.isdigit():
            self.recorder.record(None, "invalid", 400)
            await _reply(send, 400, _error_body(400, "message id in the path must be an integer"))
            return
        message_id = int(raw)
        try:
            body = json.loads(raw_body)
        except ValueError:
            self.recorder.record(message_id, "invalid", 400)
            await _reply(send, 400, _error_body(400, "body is not valid JSON"))
            return
        errors = _body_errors(message_id, body)
        if errors:
            self.recorder.record(message_id, "invalid", 422)
            await _reply(send, 422, _error_body(422, "invalid message", errors))
            return
        await self._answer(message_id, body, receive, send)

    def _is_authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name == b"authorization":
                return value == self._auth
        return False

    def _pick_step(self, message_id: int) -> Step:
        step = self.script.next_step(message_id)
        if step is not None:
            return step
        b = self.behaviour
        # One draw against cumulative thresholds, so the rates are exact shares.
        r = self._rng.random()
        for rate, outcome in (
            (b.timeout_rate, TIMEOUT),
            (b.fail_rate, b.fail_status),
            (b.status_429_rate, 429),
            (b.reject_rate, 400),
            (b.malformed_rate, MALFORMED),
            (b.slow_rate, SLOW),
        ):
            if r < rate:
                return outcome
            r -= rate
        return 200

    async def _answer(self, message_id: int, body: Any, receive: Any, send: Any) -> None:
        step = self._pick_step(message_id)
        b = self.behaviour
        if step == TIMEOUT:
            await self._hang(message_id, receive, send, b.hang_s)
            return
        delay_ms = b.slow_ms if step == SLOW else b.delay_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if step in (200, SLOW):
            # Recorded before the reply: a real gateway has delivered even if the client left.
            self.recorder.record(message_id, "delivered", 200, body)
            if self.receipts:
                self.receipts.accepted(message_id)
            await _reply(send, 200, SUCCESS_BODY)
        elif step == MALFORMED:
            self.recorder.record(message_id, MALFORMED, 200)
            await _reply(send, 200, MALFORMED_BODY)
        else:
            status = int(step)
            self.recorder.record(message_id, f"status_{status}", status)
            headers = JSON_HEADERS
            if status == 429 and b.retry_after_s > 0:
                headers = [*JSON_HEADERS, (b"retry-after", str(b.retry_after_s).encode())]
            await _reply(send, status, _error_body(status, "injected failure"), headers)

    async def _hang(self, message_id: int, receive: Any, send: Any, hang_s: float) -> None:
        self.recorder.record(message_id, TIMEOUT, None)
        try:
            # receive() returns once the client gives up, which ends the wait early.
            await asyncio.wait_for(receive(), timeout=hang_s)
        except TimeoutError:
            await _reply(send, 504, _error_body(504, "gateway timeout"))


async def _read_body(receive: Any) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def _reply(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = JSON_HEADERS
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _uvicorn_config(app: GatewayApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        # Bounds stop() when requests are parked in a delay or a hang.
        timeout_graceful_shutdown=1,
        backlog=4096,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class GatewayServer:
    """The gateway on a background thread with its own event loop, for tests and benches."""

    app_class: type[GatewayApp] = GatewayApp  # a test double may record more than the sandbox

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "sandbox-token",
        seed: int | None = 0,
        record_bodies: bool = True,
        script: Mapping[int, list[Step]] | ScriptHook | None = None,
        receipts: ReceiptOptions | None = None,
        **behaviour: Any,
    ) -> None:
        self.host = host
        self.token = token
        self.app = self.app_class(
            token, seed=seed, record_bodies=record_bodies, receipts=receipts, **behaviour
        )
        self.app.script.set(script)
        self.recorder = self.app.recorder
        self._requested_port = port
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        """Serve in a background thread; return once the socket accepts connections."""
        sock = _bind(self.host, self._requested_port)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sandbox-gateway", daemon=True
        )
        self._thread.start()
        if self.app.receipts:
            self.app.receipts.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox gateway did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving; requests parked in a delay or a hang are cut after about a second."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None
        if self.app.receipts:
            self.app.receipts.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_behaviour(self, seed: int | None = None, **changes: Any) -> Behaviour:
        """Change behaviour fields (delay_ms, fail_rate, ...) while serving."""
        return self.app.set_behaviour(seed=seed, **changes)

    @property
    def behaviour(self) -> Behaviour:
        return self.app.behaviour

    def set_script(self, steps: Mapping[int, list[Step]] | ScriptHook | None) -> None:
        """Replace the script: {message_id: [steps in order]}, a hook, or None."""
        self.app.script.set(steps)

    def script_statuses(self, message_id: int, steps: list[Step]) -> None:
        """Queue steps (statuses, "timeout", "malformed", "slow") for one message id."""
        self.app.script.add(message_id, steps)

    def stats(self) -> dict[str, Any]:
        return self.recorder.stats()

    def reset(self) -> None:
        self.recorder.reset()

    def delivery_count(self, message_id: int) -> int:
        return self.recorder.delivery_count(message_id)

    def last_body(self, message_id: int) -> dict[str, Any] | None:
        return self.recorder.last_body(message_id)

    def delivered_ids(self) -> set[int]:
        return self.recorder.delivered_ids()

    def requests(self) -> list[RequestRecord]:
        return self.recorder.requests()


class _AnnouncingServer(uvicorn.Server):
    """Prints one line once the socket is listening, for scripts that wait for it."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self._line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self._line:
            print(self._line, flush=True)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox.gateway", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    p.add_argument("--token", default="sandbox-token")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record-bodies", action="store_true", help="keep only counts")
    p.add_argument(
        "--workers", type=int, default=1, help="capacity mode only: /_stats is per worker"
    )
    for name, default in asdict(Behaviour()).items():
        kind = int if name in ("fail_status", "retry_after_s") else float
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    # The token from the environment by default, so it does not show in the process list.
    p.add_argument(
        "--receipts-url",
        default=os.environ.get("SANDBOX_RECEIPTS_URL", ""),
        help="post delivery receipts here (default $SANDBOX_RECEIPTS_URL; empty: none)",
    )
    p.add_argument("--receipts-token", default=os.environ.get("SANDBOX_RECEIPTS_TOKEN", ""))
    p.add_argument("--receipt-delay-s", type=float, default=1.0)
    p.add_argument("--undelivered-share", type=float, default=0.05)
    args = p.parse_args(argv)
    if args.receipts_url and not args.receipts_token:
        p.error("--receipts-url needs a token: --receipts-token or $SANDBOX_RECEIPTS_TOKEN")
    return args


def _receipt_options(args: argparse.Namespace) -> ReceiptOptions | None:
    if not args.receipts_url:
        return None
    return ReceiptOptions(
        args.receipts_url,
        args.receipts_token,
        delay_s=args.receipt_delay_s,
        undelivered_share=args.undelivered_share,
        seed=args.seed,
    )


def _serve(sock: socket.socket, args: argparse.Namespace, line: str) -> None:
    behaviour = {name: getattr(args, name) for name in asdict(Behaviour())}
    app = GatewayApp(
        args.token,
        seed=args.seed,
        record_bodies=not args.no_record_bodies,
        receipts=_receipt_options(args),
        **behaviour,
    )
    server = _AnnouncingServer(_uvicorn_config(app), line)
    # uvicorn handles signals only while serving and re-raises the one it caught when done;
    # these handlers cover both ends, so SIGTERM and SIGINT always exit cleanly with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    # Started here, so each forked worker has its own poster thread.
    if app.receipts:
        app.receipts.start()
    try:
        server.run(sockets=[sock])
    finally:
        if app.receipts:
            app.receipts.stop()


def _serve_workers(sock: socket.socket, args: argparse.Namespace, line: str) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sock.listen(4096)  # connections queue in the kernel until a worker accepts them
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_serve, args=(sock, args, "")) for _ in range(args.workers)]
    for w in workers:
        w.start()
    print(line, flush=True)
    while not stop.wait(0.5):
        if any(not w.is_alive() for w in workers):
            break
    for w in workers:
        if w.pid is not None and w.is_alive():
            os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        w.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox gateway until SIGTERM or SIGINT."""
    args = _parse_args(argv)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    line = f"sandbox gateway listening on http://{args.host}:{port} (workers={args.workers})"
    if args.workers > 1:
        _serve_workers(sock, args, line)
    else:
        _serve(sock, args, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
