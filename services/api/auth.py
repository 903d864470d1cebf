"""Bearer token -> scope; write methods need the write scope. Also the app's dependencies.

Every path under the API prefix is guarded; health, metrics and docs stay public.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy import Engine

from shared.config import Settings

API_PREFIX = "/api/v1"
RECEIPTS_PREFIX = API_PREFIX + "/receipts"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What views need from the composition root."""

    settings: Settings
    engine: Engine
    broker_ready: Callable[[], bool]


def context() -> ApiContext:
    """The current app's dependencies."""
    return current_app.extensions["herald"]


def scope_of(header: str | None, tokens: Mapping[str, str]) -> str | None:
    """The scope of the bearer token in an Authorization header, or None if it is not valid."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    # Compare against every token in constant time so timing does not reveal a prefix match.
    for known, scope in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = scope
    return found


def require_token() -> None:
    """before_request hook: 401 without a valid token, 403 for the wrong scope.

    Receipts paths take only a receipts token, and a receipts token only those paths.
    """
    if not (request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")):
        return
    scope = scope_of(request.headers.get("Authorization"), context().settings.api_tokens)
    if scope is None:
        abort(401, message="a valid bearer token is required", headers=CHALLENGE)
    is_receipts_path = request.path.startswith(RECEIPTS_PREFIX)
    if is_receipts_path != (scope == "receipts"):
        needed = "a receipts token" if is_receipts_path else "a read or write token"
        abort(403, message=f"this token has {scope} scope; this path needs {needed}")
    if request.method in WRITE_METHODS and scope not in ("write", "receipts"):
        abort(403, message="this token has read scope; writing needs a write token")
    g.scope = scope


def token_scope() -> str:
    """The scope of the request's token (set once require_token has let it through)."""
    return str(g.scope)


def request_id() -> str:
    """The request's correlation id (from X-Request-ID, or generated)."""
    return str(g.request_id)
