"""Signed unsubscribe tokens: a client id and a channel under HMAC-SHA256, URL-safe base64.

A token is `<payload>.<signature>`; one that does not verify names no client at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

# Separates these MACs from any other use of the same key.
PURPOSE = b"herald-unsubscribe:"
PAYLOAD = re.compile(r"([1-9][0-9]{0,18}):([a-z][a-z0-9_-]{0,31})")
MAX_TOKEN_CHARS = 200
UNSUBSCRIBE_PATH = "/unsubscribe/"


@dataclass(frozen=True, slots=True)
class OptOut:
    client_id: int
    channel: str


def sign_unsubscribe(key: str, client_id: int, channel: str) -> str:
    """The token that lets whoever holds it opt `client_id` out of `channel`."""
    payload = f"{client_id}:{channel}".encode()
    if not PAYLOAD.fullmatch(payload.decode()):
        raise ValueError(f"cannot sign client {client_id!r} and channel {channel!r}")
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def unsubscribe_url(public_url: str, key: str, client_id: int, channel: str) -> str:
    """The public link that opts `client_id` out of `channel`."""
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}{sign_unsubscribe(key, client_id, channel)}"


def verify_unsubscribe(key: str, token: str) -> OptOut | None:
    """The client and channel a token was signed for, or None if it is not a valid token."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    encoded_payload, encoded_mac = token.split(".")
    payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
    if payload is None or mac is None:
        return None
    # Compared before anything else is read from the payload, in constant time.
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    match = PAYLOAD.fullmatch(payload.decode("ascii", errors="replace"))
    if match is None:
        return None
    return OptOut(int(match[1]), match[2])


def _mac(key: str, payload: bytes) -> bytes:
    return hmac.new(key.encode(), PURPOSE + payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Only the canonical spelling: otherwise unused low bits would let altered text verify.
    return raw if _b64(raw) == text else None
