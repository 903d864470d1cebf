"""Where the trigger-kept counters disagree with count(*): campaign_progress, notification_count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from shared.domain.statuses import MessageStatus

COLUMNS = ("total", *(str(s) for s in MessageStatus))

_COUNTED = ",\n".join(
    ["count(*) AS total"]
    + [f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in MessageStatus]
)
MISMATCHES = text(
    f"""
    WITH counted AS (SELECT campaign_id, {_COUNTED} FROM message GROUP BY campaign_id)
    SELECT p.campaign_id, {", ".join(f"p.{c} AS counter_{c}" for c in COLUMNS)},
           {", ".join(f"coalesce(c.{c}, 0) AS counted_{c}" for c in COLUMNS)}
      FROM campaign_progress p LEFT JOIN counted c USING (campaign_id)
     WHERE ({", ".join(f"p.{c}" for c in COLUMNS)})
           IS DISTINCT FROM ({", ".join(f"coalesce(c.{c}, 0)" for c in COLUMNS)})
    """
)


def counter_mismatches(conn: Connection) -> dict[int, dict[str, tuple[int, int]]]:
    """{campaign_id: {column: (counter, count(*))}} for every campaign whose counters are off."""
    found: dict[int, dict[str, tuple[int, int]]] = {}
    for row in conn.execute(MISMATCHES).mappings():
        values: dict[str, Any] = dict(row)
        found[row["campaign_id"]] = {
            c: (values[f"counter_{c}"], values[f"counted_{c}"])
            for c in COLUMNS
            if values[f"counter_{c}"] != values[f"counted_{c}"]
        }
    return found


NOTIFICATION_MISMATCHES = text(
    """
    WITH counted AS (SELECT channel, status, count(*) AS n FROM notification GROUP BY 1, 2)
    SELECT coalesce(c.channel, k.channel) AS channel, coalesce(c.status, k.status) AS status,
           coalesce(k.n, 0) AS counter, coalesce(c.n, 0) AS counted
      FROM counted c
      FULL JOIN (SELECT channel, status, sum(n) AS n FROM notification_count GROUP BY 1, 2) k
           USING (channel, status)
     WHERE coalesce(k.n, 0) <> coalesce(c.n, 0)
    """
)


def notification_count_mismatches(conn: Connection) -> dict[tuple[str, str], tuple[int, int]]:
    """{(channel, status): (counter, count(*))} wherever notification_count is off."""
    return {
        (row.channel, row.status): (int(row.counter), int(row.counted))
        for row in conn.execute(NOTIFICATION_MISMATCHES)
    }


def mismatches_in(engines: Iterable[Engine]) -> dict[str, dict[str, tuple[int, int]]]:
    """counter_mismatches of every database, keyed "<database>/<campaign_id>"; disposes each."""
    found: dict[str, dict[str, tuple[int, int]]] = {}
    for engine in engines:
        with engine.connect() as conn:
            found.update(
                {f"{engine.url.database}/{k}": v for k, v in counter_mismatches(conn).items()}
            )
        engine.dispose()
    return found
