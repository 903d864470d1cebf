"""Recipient statements for channels: find a client by address, record an opt-out, who is left out.

An opt-out also cancels the client's pending messages on that channel, in the same statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db.queries.audience import HAS_ADDRESS, MATCHES_FILTER, address_field, opted_out
from shared.db.queries.statuses import cancel_client_pending

CLIENT_BY_EMAIL = text(
    "SELECT * FROM client WHERE lower(email) = lower(:address) ORDER BY id LIMIT 1"
)

CLIENT_BY_PHONE = text("SELECT * FROM client WHERE phone = :phone")

OPT_OUT_STATE = text(
    "SELECT email, :channel = ANY(opted_out) AS is_opted_out FROM client WHERE id = :client_id"
)

OPT_OUT = text(
    """
    WITH opted AS (
        UPDATE client
           SET opted_out = array_append(opted_out, :channel), updated_at = now()
         WHERE id = :client_id AND NOT (:channel = ANY(opted_out))
        RETURNING id
    )
    SELECT EXISTS (SELECT 1 FROM client WHERE id = :client_id) AS client_exists,
           (SELECT count(*) FROM opted) > 0 AS newly_opted_out
    """
)

# Many clients at once (e-mail bounces and complaints); pending messages are left alone: the
# next campaign leaves them out and counts them in left_out.
OPT_OUT_CLIENTS = text(
    """
    UPDATE client
       SET opted_out = array_append(opted_out, :channel), updated_at = now()
     WHERE id = ANY(:client_ids) AND NOT (:channel = ANY(opted_out))
    """
).bindparams(bindparam("client_ids", type_=ARRAY(BigInteger)))

# Clients the campaign's filter matches who got no message, by reason. Before the campaign
# starts this is a forecast; afterwards it counts whom materialisation left out (or who
# joined the filter later and was never going to be included).
LEFT_OUT = text(
    f"""
    SELECT count(*) FILTER (WHERE NOT ({HAS_ADDRESS})) AS no_address,
           count(*) FILTER (WHERE {HAS_ADDRESS} AND {opted_out()}) AS opted_out
      FROM campaign k
      JOIN client c ON {MATCHES_FILTER}
     WHERE k.id = :campaign_id
       AND (NOT ({HAS_ADDRESS}) OR {opted_out()})
       AND NOT EXISTS (
           SELECT 1 FROM message m WHERE m.campaign_id = k.id AND m.client_id = c.id
       )
    """
)


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    client_exists: bool
    newly_opted_out: bool
    cancelled_messages: int


def client_by_email(conn: Connection, address: str) -> RowMapping | None:
    """The client with this e-mail (case-insensitive; the oldest if several share it)."""
    return conn.execute(CLIENT_BY_EMAIL, {"address": address}).mappings().first()


def client_by_phone(conn: Connection, phone: str) -> RowMapping | None:
    """The client with this E.164 phone."""
    return conn.execute(CLIENT_BY_PHONE, {"phone": phone}).mappings().first()


def opt_out_state(conn: Connection, client_id: int, channel: str) -> RowMapping | None:
    """The client's e-mail and whether it opted out of the channel; None if it does not exist."""
    params = {"client_id": client_id, "channel": channel}
    return conn.execute(OPT_OUT_STATE, params).mappings().first()


def record_opt_out(conn: Connection, client_id: int, channel: str) -> OptOutRecord:
    """Add the channel to the client's opt-outs (once) and cancel its pending messages there."""
    row = conn.execute(OPT_OUT, {"client_id": client_id, "channel": channel}).one()
    cancelled = cancel_client_pending(conn, client_id, channel) if row.client_exists else 0
    return OptOutRecord(row.client_exists, row.newly_opted_out, cancelled)


RECORD_LEFT_OUT = text(
    f"""
    UPDATE campaign_progress p
       SET left_out_no_address = lo.no_address, left_out_opted_out = lo.opted_out
      FROM ({LEFT_OUT.text}) AS lo
     WHERE p.campaign_id = :campaign_id
    """
)


def record_left_out(conn: Connection, campaign_id: int) -> None:
    """Store who the campaign leaves out, once its recipients are fixed."""
    params = {"campaign_id": campaign_id, "address_field": address_field(conn, campaign_id)}
    conn.execute(RECORD_LEFT_OUT, params)


def opt_out_clients(conn: Connection, client_ids: Sequence[int], channel: str) -> int:
    """Opt the clients out of the channel in one statement; returns how many were not yet."""
    if not client_ids:
        return 0
    params = {"client_ids": list(client_ids), "channel": channel}
    return conn.execute(OPT_OUT_CLIENTS, params).rowcount
