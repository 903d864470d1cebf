"""The message table's partitions: made ahead of the ids, dropped whole when their time is up.

Partitions cover ranges of message ids (migration 0010). Ids come from one sequence, so a range
is a stretch of time; `ensure_ahead` makes ranges before materialisation needs them and
`drop_expired` drops a range once every campaign with rows in it finished more than the
retention ago, after summing what its figures need (per gateway, sends per second) into the
*_archive tables. A row outside every range lands in the overflow partition: never lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, Text

from shared.domain.statuses import ACCEPTED_STATUSES, FINAL_CAMPAIGN_STATUSES

OVERFLOW = "message_overflow"
# One scheduler makes partitions at a time (two would race for the same name).
ENSURE_LOCK_KEY = 0x6D5F7061  # "m_pa"
# A drop waits this long at most for the lock on the message table, then tries next run:
# waiting longer would hold every outcome statement queued behind it.
DROP_LOCK_TIMEOUT = "2s"
_BOUND = re.compile(r"FROM \((MINVALUE|'?(-?\d+)'?)\) TO \((MAXVALUE|'?(-?\d+)'?)\)")

PARTITIONS = text(
    """
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
           pg_total_relation_size(c.oid) AS bytes, c.reltuples::bigint AS rows_estimate
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'message'::regclass
    """
)

NEXT_ID = text(
    "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM message_id_seq"
)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of the message table: ids in [low, high); None is unbounded."""

    name: str
    low: int | None
    high: int | None
    bytes: int
    rows_estimate: int

    @property
    def is_overflow(self) -> bool:
        return self.name == OVERFLOW


@dataclass(frozen=True, slots=True)
class Dropped:
    name: str
    rows: int
    campaigns: int


def parse_bound(bound: str) -> tuple[int | None, int | None]:
    """(low, high) of a range partition's bound as PostgreSQL prints it; None is unbounded."""
    match = _BOUND.search(bound)
    if match is None:
        raise ValueError(f"not a range bound: {bound!r}")
    low = None if match.group(2) is None else int(match.group(2))
    high = None if match.group(4) is None else int(match.group(4))
    return low, high


def partitions(conn: Connection) -> list[Partition]:
    """Every partition, range partitions by their ids and the overflow last."""
    found: list[Partition] = []
    for row in conn.execute(PARTITIONS):
        low, high = (None, None) if row.name == OVERFLOW else parse_bound(row.bound)
        found.append(Partition(row.name, low, high, row.bytes, max(row.rows_estimate, 0)))
    return sorted(found, key=lambda p: (p.is_overflow, _low_key(p)))


def next_message_id(conn: Connection) -> int:
    return int(conn.execute(NEXT_ID).scalar_one())


def plan_ranges(
    top: int, overflow_max: int | None, needed_up_to: int, span: int
) -> list[tuple[int, int]]:
    """New ranges [low, high) of `span` ids from `top` until `needed_up_to` is covered.

    Ids already in the overflow stay there: a new range starts above them, since attaching a
    range that overflow rows fall in would fail.
    """
    if span <= 0:
        raise ValueError("span must be positive")
    ranges: list[tuple[int, int]] = []
    low = top
    if overflow_max is not None and overflow_max >= low:
        low = overflow_max + 1
    while low < needed_up_to:
        ranges.append((low, low + span))
        low += span
    return ranges


def ensure_ahead(conn: Connection, ahead: int, span: int) -> list[str]:
    """Make range partitions so ids up to the sequence's next value + `ahead` have one.

    Run in a transaction of its own: attaching locks the tables the foreign keys name until
    commit. Returns the new partitions' names.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENSURE_LOCK_KEY})
    ranged = [p for p in partitions(conn) if not p.is_overflow]
    top = max((p.high for p in ranged if p.high is not None), default=1)
    overflow_max = conn.execute(text(f"SELECT max(id) FROM {OVERFLOW}")).scalar_one()
    needed = next_message_id(conn) + ahead
    made = []
    for low, high in plan_ranges(top, overflow_max, needed, span):
        name = f"message_p{low}"
        # Made apart and attached: attaching an empty table takes no lock that stops writes.
        conn.execute(
            text(f"CREATE TABLE {name} (LIKE message INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        )
        conn.execute(
            text(f"ALTER TABLE message ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")
        )
        made.append(name)
    return made


def client_count(conn: Connection) -> int:
    """An upper bound on any campaign's recipients: what materialisation may need in ids."""
    return int(conn.execute(text("SELECT count(*) FROM client")).scalar_one())


# Distinct campaigns of one partition: a skip scan over its (campaign_id, ...) index, one
# probe per campaign however many rows it holds.
CAMPAIGNS_IN = """
    WITH RECURSIVE c AS (
        (SELECT campaign_id FROM {table} ORDER BY campaign_id LIMIT 1)
        UNION ALL
        SELECT (SELECT campaign_id FROM {table} m
                 WHERE m.campaign_id > c.campaign_id ORDER BY campaign_id LIMIT 1)
          FROM c WHERE c.campaign_id IS NOT NULL
    )
    SELECT campaign_id FROM c WHERE campaign_id IS NOT NULL
"""

# A campaign holds its rows while it may still change them, and for the retention after.
STILL_KEPT = text(
    """
    SELECT count(*) FROM campaign
     WHERE id = ANY(:ids)
       AND (status <> ALL(:final) OR finished_at IS NULL
            OR finished_at > now() - make_interval(days => :days))
    """
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)), bindparam("final", type_=ARRAY(Text)))

LOCK_CAMPAIGNS = text(
    "SELECT id FROM campaign WHERE id = ANY(:ids) ORDER BY id FOR SHARE"
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))

ARCHIVE_GATEWAYS = """
    INSERT INTO campaign_gateway_archive AS a
           (campaign_id, gateway, sent, delivered, undelivered, segments)
    SELECT campaign_id, coalesce(gateway, ''), count(*),
           count(*) FILTER (WHERE status = 'delivered'),
           count(*) FILTER (WHERE status = 'undelivered'),
           coalesce(sum(segments), 0)
      FROM {table}
     WHERE status = ANY(:accepted)
     GROUP BY 1, 2
    ON CONFLICT (campaign_id, gateway) DO UPDATE
       SET sent = a.sent + excluded.sent, delivered = a.delivered + excluded.delivered,
           undelivered = a.undelivered + excluded.undelivered,
           segments = a.segments + excluded.segments
"""

ARCHIVE_SENDS = """
    INSERT INTO campaign_sent_archive AS a (campaign_id, second, sent)
    SELECT campaign_id, floor(extract(epoch FROM sent_at))::bigint, count(*)
      FROM {table}
     WHERE sent_at IS NOT NULL
     GROUP BY 1, 2
    ON CONFLICT (campaign_id, second) DO UPDATE SET sent = a.sent + excluded.sent
"""

COUNT_DROPPED = """
    UPDATE campaign k SET messages_dropped = k.messages_dropped + d.n
      FROM (SELECT campaign_id, count(*) AS n FROM {table} GROUP BY campaign_id) d
     WHERE k.id = d.campaign_id
    RETURNING d.n
"""


def droppable(conn: Connection, partition: Partition, days: int, next_id: int) -> bool:
    """Whether no id can still land in the partition and none of its campaigns keeps it.

    An empty one is left: it costs nothing, and a sequence moved back would fill it again.

    Its campaigns are share-locked until the transaction ends: one cannot be reopened (its
    failed messages requeued) while its rows are being dropped.
    """
    if partition.is_overflow or partition.high is None or partition.high > next_id:
        return False
    campaigns = list(conn.execute(text(CAMPAIGNS_IN.format(table=partition.name))).scalars())
    if not campaigns:
        return False
    conn.execute(LOCK_CAMPAIGNS, {"ids": campaigns})
    final = sorted(str(s) for s in FINAL_CAMPAIGN_STATUSES)
    kept = conn.execute(STILL_KEPT, {"ids": campaigns, "final": final, "days": days})
    return kept.scalar_one() == 0


def expired_partitions(conn: Connection, days: int) -> list[Partition]:
    """Partitions every campaign of which finished more than `days` ago, oldest first."""
    next_id = next_message_id(conn)
    return [p for p in partitions(conn) if droppable(conn, p, days, next_id)]


def drop_if_expired(conn: Connection, name: str, days: int) -> Dropped | None:
    """Sum the partition's figures into the archives and drop it, if it is still expired.

    One transaction, under the lock partitions are made under, so two schedulers never drop
    or make the same one; None when it is gone or no longer expired.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENSURE_LOCK_KEY})
    found = {p.name: p for p in partitions(conn)}
    partition = found.get(name)
    if partition is None or not droppable(conn, partition, days, next_message_id(conn)):
        return None
    conn.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
    accepted = {"accepted": list(ACCEPTED_STATUSES)}
    conn.execute(
        text(ARCHIVE_GATEWAYS.format(table=name)).bindparams(
            bindparam("accepted", type_=ARRAY(Text))
        ),
        accepted,
    )
    conn.execute(text(ARCHIVE_SENDS.format(table=name)))
    counts = list(conn.execute(text(COUNT_DROPPED.format(table=name))).scalars())
    conn.execute(text(f"DROP TABLE {name}"))
    return Dropped(name, sum(counts), len(counts))


def sizes(found: Sequence[Partition]) -> tuple[int, int]:
    """(rows estimate, bytes) over the partitions."""
    return sum(p.rows_estimate for p in found), sum(p.bytes for p in found)


def _low_key(partition: Partition) -> int:
    return -(2**63) if partition.low is None else partition.low
