"""SmtpSink: aiosmtpd on loopback capturing every message, with scripted replies and drops.

script(address, steps): "451"/"550"/"421" replies to its next RCPTs, "drop" aborts its DATA.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import re
import socket
import ssl
import subprocess
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.waiting import wait_until

REPLIES = {
    "421": "421 4.7.0 Too many messages, closing connection",
    "450": "450 4.2.1 Mailbox busy, try later",
    "451": "451 4.3.0 Temporary local problem, try later",
    "452": "452 4.2.2 Mailbox full",
    "454": "454 4.7.0 TLS not available",
    "550": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    "552": "552 5.2.2 Mailbox over quota",
    "554": "554 5.7.1 Message rejected as spam",
}
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    session: int

    @property
    def message_id(self) -> str | None:
        match = MESSAGE_ID.search(self.data.split(b"\r\n\r\n", 1)[0])
        return match.group(1).decode() if match else None

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass(frozen=True, slots=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed_certificate(directory: Path) -> Certificate:
    """A throwaway certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    cert, key = directory / "sink.crt", directory / "sink.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _TrackedSMTP(SMTP):
    """Numbers each connection and tells the sink when it opens and closes."""

    def __init__(self, handler: Any, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink
        self.number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        is_new = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if is_new:
            self.sink._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._closed(self)
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        return _TrackedSMTP(self.handler, self.sink, **self.SMTP_kwargs)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not self.sink._admit_transaction(server):
            return await close_with(server, REPLIES["421"])
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        step = self.sink._next_step(address)
        if step == "drop":
            envelope.drop = True
        elif step == "421":
            return await close_with(server, REPLIES["421"])
        elif step is not None:
            return REPLIES[step].format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink._count("rsets")
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if getattr(envelope, "drop", False):
            server.transport.abort()
            return "250 OK"  # never reaches the client: the connection is gone
        self.sink._record(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content, server.number)
        )
        return "250 2.0.0 OK: queued"


async def close_with(server: Any, reply: str) -> str:
    await server.push(reply)
    server.transport.abort()
    return reply


class SmtpSink:
    """A loopback SMTP server for tests; thread-safe counters and captured messages."""

    def __init__(
        self,
        *,
        tls: str = "none",
        certificate: Certificate | None = None,
        credentials: tuple[str, str] | None = None,
        max_per_session: int = 0,
        port: int | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.max_per_session = max_per_session
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._scripts: dict[str, deque[str]] = {}
        self._transactions: Counter[int] = Counter()
        self._live: dict[int, _TrackedSMTP] = {}
        self._counts: Counter[str] = Counter()
        self._numbers = itertools.count(1)
        self.max_concurrent = 0
        self.auth_attempts: list[tuple[bytes, bytes]] = []
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if tls == "ssl":
            assert certificate is not None
            kwargs["ssl_context"] = certificate.server_context()
        elif tls == "starttls":
            assert certificate is not None
            kwargs.update(tls_context=certificate.server_context(), require_starttls=True)
        if credentials is not None:
            kwargs.update(
                authenticator=self._authenticator(credentials),
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS; implicit TLS is TLS from the start.
                auth_require_tls=tls == "starttls",
            )
        self._controller = _Controller(self, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SmtpSink:
        self._controller.start()
        # The controller's own readiness probe is not a client: forget it.
        wait_until(lambda: not self.open_connections, timeout=5, interval=0.02)
        with self._lock:
            self._counts.clear()
            self.max_concurrent = 0
        return self

    def stop(self) -> None:
        self._controller.stop()

    # -- scripting ------------------------------------------------------------------------

    def script(self, address: str, steps: Iterable[str]) -> None:
        """Answer the next RCPTs to address with these steps, then accept it."""
        with self._lock:
            self._scripts.setdefault(address.lower(), deque()).extend(steps)

    def drop_connections(self) -> None:
        """Abort every open connection, as a relay restarting or timing out idle clients."""
        with self._lock:
            servers = list(self._live.values())
        for server in servers:
            transport = cast(asyncio.Transport, server.transport)
            self._controller.loop.call_soon_threadsafe(transport.abort)
        wait_until(lambda: not self.open_connections, timeout=5, interval=0.02)

    # -- what it saw ----------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def received_for(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    def count(self, name: str) -> int:
        """'connections' opened, 'rsets' received."""
        with self._lock:
            return self._counts[name]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._live)

    def wait_for_messages(self, count: int, timeout: float = 10) -> list[Received]:
        wait_until(lambda: len(self._messages) >= count, timeout=timeout, interval=0.02)
        return self.messages

    # -- called on the server's loop ------------------------------------------------------

    def _opened(self, server: _TrackedSMTP) -> None:
        with self._lock:
            self._counts["connections"] += 1
            server.number = next(self._numbers)
            self._live[server.number] = server
            self.max_concurrent = max(self.max_concurrent, len(self._live))

    def _closed(self, server: _TrackedSMTP) -> None:
        with self._lock:
            self._live.pop(server.number, None)

    def _admit_transaction(self, server: _TrackedSMTP) -> bool:
        with self._lock:
            self._transactions[server.number] += 1
            return not self.max_per_session or (
                self._transactions[server.number] <= self.max_per_session
            )

    def _next_step(self, address: str) -> str | None:
        with self._lock:
            steps = self._scripts.get(address.lower())
            return steps.popleft() if steps else None

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _record(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        user, password = (c.encode() for c in credentials)

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            is_known = isinstance(data, LoginPassword)
            if is_known:
                with self._lock:
                    self.auth_attempts.append((data.login, data.password))
            ok = is_known and data.login == user and data.password == password
            return AuthResult(success=ok, handled=False)

        return authenticate
