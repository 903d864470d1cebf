"""SmtpPool: a few kept-open SMTP sessions per process, spread over relays, one thread each.

A relay that cannot be reached cools down for RELAY_COOLDOWN_S behind the others.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter

from shared.config import Settings
from shared.domain.outcomes import DeliveryResult, connection_failed, timed_out, transient

log = logging.getLogger(__name__)

RELAY_COOLDOWN_S = 5.0
CONNECT_TIMEOUT_CAP_S = 5.0

CONNECTIONS_OPENED = Counter(
    "herald_sender_smtp_connections_opened", "SMTP sessions opened (login included)."
)
RELAY_FAILURES = Counter(
    "herald_sender_smtp_relay_failures", "Failed attempts to open an SMTP session to a relay."
)


@dataclass(frozen=True, slots=True, order=True)
class Relay:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_relays(settings: Settings) -> tuple[Relay, ...]:
    """HERALD_SMTP_RELAYS ("host:port,host:port"), or the single HERALD_SMTP_HOST/PORT."""
    relays: list[Relay] = []
    for part in filter(None, (p.strip() for p in settings.smtp_relays.split(","))):
        host, colon, port = part.rpartition(":")
        if not colon or host.endswith(":"):  # no port given, or a bare IPv6 address
            host, port = part, str(settings.smtp_port)
        relays.append(Relay(host.strip("[]"), int(port)))
    return tuple(dict.fromkeys(relays)) or (Relay(settings.smtp_host, settings.smtp_port),)


class RelayRotation:
    """Round robin over the relays; one that failed goes last until its cool-down ends."""

    def __init__(
        self,
        relays: tuple[Relay, ...],
        cooldown_s: float = RELAY_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._relays = relays
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._turn = 0
        self._cooling_until: dict[Relay, float] = {}

    def order(self) -> list[Relay]:
        """Every relay, the next in turn first; those cooling down last, soonest back first."""
        with self._lock:
            now = self._clock()
            ready = [r for r in self._relays if self._cooling_until.get(r, 0.0) <= now]
            cooling = sorted(
                (r for r in self._relays if r not in ready), key=self._cooling_until.__getitem__
            )
            if ready:
                start = self._turn % len(ready)
                ready = ready[start:] + ready[:start]
            self._turn += 1
        return ready + cooling

    def failed(self, relay: Relay) -> bool:
        """Start (or extend) the relay's cool-down; True if it was not cooling down already."""
        with self._lock:
            now = self._clock()
            was_ready = self._cooling_until.get(relay, 0.0) <= now
            self._cooling_until[relay] = now + self._cooldown_s
        return was_ready

    def recovered(self, relay: Relay) -> None:
        with self._lock:
            self._cooling_until.pop(relay, None)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How to open one SMTP session. The password never appears in a repr or a log."""

    tls: str = "none"
    user: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 30.0
    local_hostname: str = "localhost"
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)


@functools.cache
def local_hostname() -> str:
    """The name to greet with, looked up once: getfqdn() can take seconds with slow DNS."""
    return socket.getfqdn()


def session_options(
    settings: Settings, tls_context: ssl.SSLContext | None = None
) -> SessionOptions:
    """The settings' way of opening a session: TLS mode, login, timeout, greeting name."""
    return SessionOptions(
        tls=settings.smtp_tls,
        user=settings.smtp_user,
        password=settings.smtp_password,
        timeout_s=settings.smtp_timeout_s,
        local_hostname=local_hostname(),
        tls_context=tls_context
        or (ssl.create_default_context() if settings.smtp_tls != "none" else None),
    )


SessionError = OSError | smtplib.SMTPException


def open_first_session(
    relays: Iterable[Relay],
    options: SessionOptions,
    on_failure: Callable[[Relay, SessionError], None] = lambda relay, exc: None,
) -> tuple[Relay, smtplib.SMTP]:
    """A session to the first relay, in order, that takes one; else raise the last failure."""
    last: SessionError = OSError("no SMTP relay configured")
    for relay in relays:
        try:
            return relay, open_session(relay, options)
        except (OSError, smtplib.SMTPException) as exc:
            on_failure(relay, exc)
            last = exc
    raise last


def open_session(relay: Relay, options: SessionOptions) -> smtplib.SMTP:
    """Connect, greet, secure and log in; raise OSError or SMTPException on any failure."""
    # Given to the constructor, which connects at once: the host is also the name TLS checks.
    connect_timeout = min(CONNECT_TIMEOUT_CAP_S, options.timeout_s)
    smtp: smtplib.SMTP
    if options.tls == "ssl":
        smtp = smtplib.SMTP_SSL(
            relay.host,
            relay.port,
            local_hostname=options.local_hostname,
            timeout=connect_timeout,
            context=options.tls_context,
        )
    else:
        smtp = smtplib.SMTP(
            relay.host, relay.port, local_hostname=options.local_hostname, timeout=connect_timeout
        )
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(options.timeout_s)
        smtp.ehlo_or_helo_if_needed()
        if options.tls == "starttls":
            smtp.starttls(context=options.tls_context)
            smtp.ehlo_or_helo_if_needed()
        if options.user:
            smtp.login(options.user, options.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


@dataclass(slots=True)
class Connection:
    relay: Relay
    smtp: smtplib.SMTP
    transactions: int = 0


class SmtpPool:
    """At most `size` open sessions per process, each used by one thread at a time."""

    def __init__(
        self,
        rotation: RelayRotation,
        options: SessionOptions,
        size: int,
        max_per_connection: int,
    ) -> None:
        self._rotation = rotation
        self._options = options
        self._size = max(1, size)
        self._max_per_connection = max(1, max_per_connection)
        # A thread holds a slot while it holds a connection or is opening one, so open
        # sessions never outnumber the slots however many threads deliver.
        self._slots = threading.BoundedSemaphore(self._size)
        self._lock = threading.Lock()
        self._idle: dict[Relay, list[Connection]] = {}
        self._open_count = 0
        self._is_closed = False

    def acquire_slot(self, timeout_s: float) -> bool:
        return self._slots.acquire(timeout=max(0.0, timeout_s))

    def release_slot(self) -> None:
        self._slots.release()

    def checkout(self) -> Connection | DeliveryResult:
        """A live session (an idle one that answers RSET, or a new one), or why there is none."""
        order = self._rotation.order()
        while True:
            connection = self._take_idle_or_reserve(order)
            if connection is None:
                return self._connect(order)
            if is_alive(connection):
                return connection
            # The server dropped it while idle: reconnect without costing the item a try.
            self._discard(connection, polite=False)

    def checkin(self, connection: Connection, is_reusable: bool) -> None:
        """Keep a healthy session for the next message; close it when spent or broken."""
        spent = connection.transactions >= self._max_per_connection
        if is_reusable and not spent:
            with self._lock:
                if not self._is_closed:
                    self._idle.setdefault(connection.relay, []).append(connection)
                    return
        # A spent session gets a QUIT: providers answer 421 past their per-session limit.
        self._discard(connection, polite=is_reusable)

    def close(self) -> None:
        """Close every idle session; sessions in use close when they come back."""
        with self._lock:
            self._is_closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            self._discard(connection, polite=True)

    def _take_idle_or_reserve(self, order: list[Relay]) -> Connection | None:
        """An idle session of the relay in turn; else room for a new one (None); else any idle."""
        with self._lock:
            if self._idle.get(order[0]):
                return self._idle[order[0]].pop()
            if self._open_count < self._size:
                self._open_count += 1
                return None
            # Every session is open already: reuse another relay's rather than churn.
            for relay in order:
                if self._idle.get(relay):
                    return self._idle[relay].pop()
            # Unreachable while callers hold a slot; open one rather than fail.
            self._open_count += 1
            return None

    def _connect(self, order: list[Relay]) -> Connection | DeliveryResult:
        """Open a session to the first relay that takes one; the reserved room is given back
        whatever happens otherwise."""
        failure: DeliveryResult = transient("no SMTP relay configured")

        def cool_down(relay: Relay, exc: SessionError) -> None:
            nonlocal failure
            RELAY_FAILURES.inc()
            failure = session_failure(relay, exc)
            # Once per outage, not once per message: a relay down is a flood otherwise.
            if self._rotation.failed(relay):
                log.warning("SMTP relay %s failed, cooling down: %s", relay, failure.error)

        try:
            relay, smtp = open_first_session(order, self._options, cool_down)
        except (OSError, smtplib.SMTPException):
            with self._lock:
                self._open_count -= 1
            return failure
        except BaseException:
            with self._lock:
                self._open_count -= 1
            raise
        self._rotation.recovered(relay)
        CONNECTIONS_OPENED.inc()
        return Connection(relay, smtp)

    def _discard(self, connection: Connection, *, polite: bool) -> None:
        with self._lock:
            self._open_count -= 1
        try:
            if polite:
                connection.smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass  # closing anyway
        finally:
            connection.smtp.close()


def is_alive(connection: Connection) -> bool:
    """RSET a reused session: it clears any transaction state and proves the server is there."""
    try:
        code, _ = connection.smtp.rset()
    except (OSError, smtplib.SMTPException):
        return False
    return code == 250


def session_failure(relay: Relay, exc: BaseException) -> DeliveryResult:
    """Opening a session failed: the relay may be back soon, so the item is retried."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return transient(f"SMTP relay {relay}: {exc.smtp_code} {text[:200]}")
    if isinstance(exc, TimeoutError):
        return timed_out(exc)
    return connection_failed(exc)
