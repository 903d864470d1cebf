"""Client use cases: create, read, replace, update, delete, list; one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from shared.db.queries import clients as queries
from shared.db.queries.statuses import cancel_client_pending
from shared.errors import Conflict, NotFound

UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Mapping[Any, Any]]
    next_after: int | None


def fetch_page(fetch: Callable[[int], Sequence[RowMapping]], limit: int) -> Page:
    """Ask for one row more than the page to learn whether another page follows."""
    rows = list(fetch(limit + 1))
    if len(rows) > limit:
        return Page(rows[:limit], rows[limit - 1]["id"])
    return Page(rows, None)


def duplicate_phone(phone: str) -> Conflict:
    return Conflict(
        "a client with this phone already exists", {"phone": [f"{phone} is already taken"]}
    )


def is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "pgcode", None) == UNIQUE_VIOLATION


def not_found(client_id: int) -> NotFound:
    return NotFound(f"client {client_id} does not exist")


def create_client(engine: Engine, values: Mapping[str, Any]) -> RowMapping:
    """Store a new client; Conflict when the phone is taken."""
    try:
        with engine.begin() as conn:
            return queries.insert_client(conn, values)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise duplicate_phone(values["phone"]) from exc


def get_client(engine: Engine, client_id: int) -> RowMapping:
    with engine.connect() as conn:
        row = queries.get_client(conn, client_id)
    if row is None:
        raise not_found(client_id)
    return row


def update_client(engine: Engine, client_id: int, values: Mapping[str, Any]) -> RowMapping:
    """Change the given fields (all of them for a replacement); Conflict when the phone is taken."""
    try:
        with engine.begin() as conn:
            row = (
                queries.update_client(conn, client_id, values)
                if values
                else queries.get_client(conn, client_id)
            )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise duplicate_phone(values.get("phone", "")) from exc
    if row is None:
        raise not_found(client_id)
    return row


def delete_client(engine: Engine, client_id: int) -> None:
    """Delete a client; its pending messages are cancelled, its history stays."""
    with engine.begin() as conn:
        cancel_client_pending(conn, client_id)
        if not queries.delete_client(conn, client_id):
            raise not_found(client_id)


def list_clients(
    engine: Engine,
    *,
    limit: int,
    after: int | None = None,
    tag: str | None = None,
    operator_code: str | None = None,
    phone: str | None = None,
) -> Page:
    """One page of clients by id, optionally with a tag, an operator code and a phone prefix."""
    with engine.connect() as conn:
        return fetch_page(
            lambda n: queries.list_clients(
                conn,
                limit=n,
                after=after,
                tag=tag,
                operator_code=operator_code,
                phone_prefix=phone,
            ),
            limit,
        )
