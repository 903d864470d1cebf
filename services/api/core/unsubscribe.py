"""Opt-outs through signed links (read one, follow one), and who a campaign left out and why.

A link that does not verify, or names a client that no longer exists, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from shared.db.queries import recipients as queries
from shared.domain import channels
from shared.domain.signing import OptOut, verify_unsubscribe
from shared.errors import NotFound

UNKNOWN_LINK = "this unsubscribe link is not valid"


@dataclass(frozen=True, slots=True)
class OptOutView:
    client_id: int
    channel: str
    opted_out: bool
    address: str | None


def verified(key: str, token: str) -> OptOut:
    """The opt-out a token names; NotFound unless it verifies and names a known channel."""
    opt_out = verify_unsubscribe(key, token)
    if opt_out is None or opt_out.channel not in channels.names():
        raise NotFound(UNKNOWN_LINK)
    return opt_out


def read_link(engine: Engine, key: str, token: str) -> OptOutView:
    """What following the link would do, without doing it."""
    opt_out = verified(key, token)
    with engine.connect() as conn:
        state = queries.opt_out_state(conn, opt_out.client_id, opt_out.channel)
    if state is None:
        raise NotFound(UNKNOWN_LINK)
    return OptOutView(
        opt_out.client_id, opt_out.channel, bool(state["is_opted_out"]), mask(state["email"])
    )


def follow_link(engine: Engine, key: str, token: str) -> OptOutView:
    """Record the opt-out (idempotent) and cancel the client's pending messages on the channel."""
    opt_out = verified(key, token)
    with engine.begin() as conn:
        record = queries.record_opt_out(conn, opt_out.client_id, opt_out.channel)
        if not record.client_exists:
            raise NotFound(UNKNOWN_LINK)
        state = queries.opt_out_state(conn, opt_out.client_id, opt_out.channel)
    email = state["email"] if state is not None else None
    return OptOutView(opt_out.client_id, opt_out.channel, True, mask(email))


def mask(email: str | None) -> str | None:
    """'ann@example.com' -> 'a**@example.com': enough to recognise, not to harvest."""
    if not email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}" if local else None
