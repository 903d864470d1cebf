"""Client statements: insert, update, delete, keyset listing, upsert."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, text, update

from shared.db.models import Client

CLIENT_COLUMNS = ("phone", "operator_code", "tags", "timezone", "email", "attributes")


def insert_client(conn: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Insert one client and return it; IntegrityError on a duplicate phone."""
    return (
        conn.execute(insert(Client).values(**values).returning(*Client.__table__.c))
        .mappings()
        .one()
    )


def get_client(conn: Connection, client_id: int) -> RowMapping | None:
    return conn.execute(select(Client.__table__).where(Client.id == client_id)).mappings().first()


def clients_by_id(conn: Connection, client_ids: Sequence[int]) -> dict[int, RowMapping]:
    """The clients of these ids that exist, by id, in one statement."""
    if not client_ids:
        return {}
    stmt = select(Client.__table__).where(Client.id.in_(sorted(set(client_ids))))
    return {row["id"]: row for row in conn.execute(stmt).mappings()}


def update_client(conn: Connection, client_id: int, values: Mapping[str, Any]) -> RowMapping | None:
    """Set the given columns; None when the client does not exist."""
    stmt = (
        update(Client)
        .where(Client.id == client_id)
        .values(**values, updated_at=func.now())
        .returning(*Client.__table__.c)
    )
    return conn.execute(stmt).mappings().first()


def delete_client(conn: Connection, client_id: int) -> bool:
    """Delete the client; its messages stay, with client_id set to NULL by the foreign key."""
    deleted = conn.execute(delete(Client).where(Client.id == client_id).returning(Client.id))
    return deleted.first() is not None


def list_clients(
    conn: Connection,
    *,
    limit: int,
    after: int | None = None,
    tag: str | None = None,
    operator_code: str | None = None,
    phone_prefix: str | None = None,
) -> list[RowMapping]:
    """One keyset page ordered by id; `tags @>` lets the GIN index answer the tag filter.

    `phone_prefix` (E.164 digits with '+') is a range on the phone's unique index: ':' sorts
    right after '9', so [prefix, prefix + ':') holds exactly the phones that start with it.
    """
    stmt = select(Client.__table__).order_by(Client.id).limit(limit)
    if phone_prefix is not None:
        stmt = stmt.where(Client.phone >= phone_prefix, Client.phone < phone_prefix + ":")
    if after is not None:
        stmt = stmt.where(Client.id > after)
    if tag is not None:
        stmt = stmt.where(Client.tags.contains([tag]))
    if operator_code is not None:
        stmt = stmt.where(Client.operator_code == operator_code)
    return list(conn.execute(stmt).mappings())


def attribute_key_exists(conn: Connection, key: str) -> bool:
    """Whether any client has this attribute key (answered by the GIN index on attributes)."""
    stmt = text("SELECT EXISTS (SELECT 1 FROM client WHERE attributes ? :key)")
    return bool(conn.execute(stmt, {"key": key}).scalar())


# One statement per chunk: the rows travel as a single jsonb parameter, and xmax = 0 on the
# returned row tells an insert from an update.
UPSERT_CLIENTS = text(
    """
    INSERT INTO client (phone, operator_code, tags, timezone, email, attributes)
    SELECT r.phone, r.operator_code, r.tags, r.timezone, r.email, r.attributes
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        phone text, operator_code text, tags text[], timezone text, email text, attributes jsonb
    )
    ON CONFLICT (phone) DO UPDATE SET
        operator_code = EXCLUDED.operator_code,
        tags = EXCLUDED.tags,
        timezone = EXCLUDED.timezone,
        email = EXCLUDED.email,
        attributes = EXCLUDED.attributes,
        updated_at = now()
    RETURNING (xmax = 0) AS created
    """
)


def upsert_clients(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Insert or replace clients by phone (phones must be unique in `rows`); (created, updated)."""
    if not rows:
        return 0, 0
    payload = json.dumps([{column: row[column] for column in CLIENT_COLUMNS} for row in rows])
    flags = conn.execute(UPSERT_CLIENTS, {"rows": payload}).scalars().all()
    created = sum(1 for flag in flags if flag)
    return created, len(flags) - created
