"""DeliveryResult (sent | transient | permanent | expired | held | deferred) and reply rules.

Transient results are retried through the broker's delay tiers; permanent ones never are.
Held and deferred items were not attempted: their campaign is paused, their channel's
circuit breaker open.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from typing import Literal

Kind = Literal["sent", "transient", "permanent", "expired", "held", "deferred"]

SENT: Kind = "sent"
TRANSIENT: Kind = "transient"
PERMANENT: Kind = "permanent"
EXPIRED: Kind = "expired"
HELD: Kind = "held"
DEFERRED: Kind = "deferred"

BODY_EXCERPT_CHARS = 200
# Statuses that say "not now" rather than "never": the request itself may be fine.
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    kind: Kind
    error: str | None = None
    gateway: str | None = None  # which of the channel's gateways answered
    segments: int | None = None  # SMS parts the gateway took
    # The gateway asked not to be called again before this many seconds (Retry-After).
    retry_after_s: float | None = None
    # A transient failure after which the gateway may still have taken the message (no
    # reply, a cut connection, an unreadable reply): retries go to that gateway, not another.
    unsure: bool = False

    @property
    def is_sent(self) -> bool:
        return self.kind == SENT

    @property
    def is_transient(self) -> bool:
        return self.kind == TRANSIENT


def sent() -> DeliveryResult:
    return DeliveryResult(SENT)


def transient(error: str) -> DeliveryResult:
    return DeliveryResult(TRANSIENT, error)


def permanent(error: str) -> DeliveryResult:
    return DeliveryResult(PERMANENT, error)


def expired() -> DeliveryResult:
    return DeliveryResult(EXPIRED, "campaign ended before delivery")


def held() -> DeliveryResult:
    """Not sent: the campaign is paused or cancelled."""
    return DeliveryResult(HELD)


def deferred(why: str = "not sent: the channel's circuit breaker is open") -> DeliveryResult:
    """Not sent: the channel's circuit breaker is open, or every gateway of a route is."""
    return DeliveryResult(DEFERRED, why)


def classify_http(
    status: int,
    body: bytes,
    retry_after: str | None = None,
    throttle_codes: frozenset[int] = frozenset(),
    now: float = 0.0,
) -> DeliveryResult:
    """Classify a gateway reply: 200 with {"code": 0} is sent; 5xx, 408, 429 retry.

    A throttled reply (429, or a body whose code is one of `throttle_codes`) is transient and
    carries its Retry-After, read against `now` (epoch seconds) when it is a date.
    """
    code = _reply_code(body)
    if status == 429 or (code is not None and code in throttle_codes):
        return DeliveryResult(
            TRANSIENT,
            f"throttled: HTTP {status}: {_excerpt(body)}",
            retry_after_s=parse_retry_after(retry_after, now),
        )
    if status == 200:
        return sent() if code == 0 else DeliveryResult(TRANSIENT, "malformed reply", unsure=True)
    error = f"HTTP {status}: {_excerpt(body)}"
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return permanent(error)
    # 5xx, 408, 429, and statuses the protocol never uses (1xx, other 2xx, 3xx):
    # nothing says the message is bad, so it may succeed later.
    return transient(error)


def classify_smtp(code: int, reply: bytes | str) -> DeliveryResult:
    """Classify an SMTP reply (RFC 5321): 2yz sent, 5yz permanent, anything else transient."""
    if 200 <= code < 300:
        return sent()
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    error = f"SMTP {code}: {text[:BODY_EXCERPT_CHARS]}"
    if 500 <= code < 600:
        return permanent(error)
    # 4yz (421 closing, 450/451 try later, 452 full, 454 TLS or auth unavailable) and codes
    # a relay should never send: nothing says the message itself is refused for good.
    return transient(error)


def connection_failed(exc: BaseException, unsure: bool = True) -> DeliveryResult:
    """A refused, reset or broken connection: the gateway may be back soon.

    `unsure` unless the connection was refused before a byte of the request went out.
    """
    return DeliveryResult(
        TRANSIENT, f"connection error: {type(exc).__name__}: {exc}", unsure=unsure
    )


def timed_out(exc: BaseException) -> DeliveryResult:
    """No reply in time; the gateway may still have sent it, which the idempotency key absorbs."""
    return DeliveryResult(TRANSIENT, f"timeout: {type(exc).__name__}: {exc}", unsure=True)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _reply_code(body: bytes) -> int | None:
    """The integer `code` of a JSON reply body, or None."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    # `type(...) is int` so that false and 0.0 are not taken for the integer 0.
    if isinstance(data, dict) and type(data.get("code")) is int:
        return int(data["code"])
    return None


def _excerpt(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]
