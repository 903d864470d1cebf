"""Operations at a glance: message totals, campaigns by status, parked messages, breakers.

Every figure is one set-based statement or one broker question; the dead-letter count is
asked at most every DEAD_LETTERS_FRESH_S per API process (several consoles poll this), and
after a failure not again for DEAD_LETTERS_RETRY_S, so a broker that hangs cannot hold up
every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from shared.config import Settings
from shared.db.queries.campaigns import PROGRESS_COUNTS
from shared.db.queries.sender_health import live_senders
from shared.domain.delivery import delivery_figures
from shared.domain.statuses import CampaignStatus
from shared.messaging.connection import CONNECTION_ERRORS, MANAGEMENT_PORT, broker_hosts
from shared.messaging.queues import message_count
from shared.messaging.topology import DEAD_QUEUE

log = logging.getLogger(__name__)

DEAD_LETTERS_FRESH_S = 2.0
DEAD_LETTERS_RETRY_S = 10.0
# Worst first: what the operations page shows when senders disagree.
BREAKER_SEVERITY = ("open", "half-open", "closed")

TOTALS = text(
    "SELECT "
    + ", ".join(f"coalesce(sum({name}), 0)::bigint AS {name}" for name in PROGRESS_COUNTS)
    + " FROM campaign_progress"
)
CAMPAIGNS_BY_STATUS = text("SELECT status, count(*) AS n FROM campaign GROUP BY status")


class DeadLetters:
    """The parking queue's depth, cached; None while the broker cannot be asked."""

    def __init__(self, ask: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self._ask = ask
        self._clock = clock
        self._lock = threading.Lock()
        self._value: int | None = None
        self._until = 0.0

    def __call__(self) -> int | None:
        with self._lock:
            now = self._clock()
            if now < self._until:
                return self._value
            try:
                self._value = self._ask()
                self._until = now + DEAD_LETTERS_FRESH_S
            except CONNECTION_ERRORS as exc:
                log.warning("dead-letter count unavailable: %s", type(exc).__name__)
                self._value = None
                self._until = now + DEAD_LETTERS_RETRY_S
            return self._value


def dead_letters_of(settings: Settings) -> DeadLetters:
    return DeadLetters(
        lambda: message_count(settings.amqp_url, DEAD_QUEUE, "herald-api-operations")
    )


def worst_state(states: list[str]) -> str:
    """The most severe breaker state of a list; unknown when there is none."""
    for state in BREAKER_SEVERITY:
        if state in states:
            return state
    return "unknown"


def management_urls(settings: Settings) -> list[str]:
    """RabbitMQ's management UI on each node HERALD_AMQP_URL names."""
    hosts = dict.fromkeys(broker_hosts(settings.amqp_url))
    return [f"http://{host}:{MANAGEMENT_PORT}/" for host in hosts]


def operations(engine: Engine, settings: Settings, dead_letters: DeadLetters) -> dict[str, Any]:
    with engine.connect() as conn:
        stored = dict(conn.execute(TOTALS).mappings().one())
        by_status = {row.status: row.n for row in conn.execute(CAMPAIGNS_BY_STATUS)}
        senders = live_senders(conn, settings.sender_health_stale_s)
    states = [s for row in senders for s in (*row["circuits"].values(), *row["gateways"].values())]
    return {
        "totals": {**stored, **delivery_figures(stored)},
        "campaigns_by_status": {str(s): by_status.get(str(s), 0) for s in CampaignStatus},
        "dead_letters": dead_letters(),
        "breaker": worst_state(states) if senders else "unknown",
        "senders": [dict(row) for row in senders],
        "links": {"docs": "/docs", "metrics": "/metrics", "broker_ui": management_urls(settings)},
    }
