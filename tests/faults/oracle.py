"""The checker: what the database, the stats endpoint and the gateway say about one campaign.

Lost = sent according to Herald but never received by the gateway, plus messages that never
reached a final status. Duplicates = deliveries of the campaign's ids beyond the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from sandbox.gateway import GatewayServer

FINAL = ("sent", "failed", "expired", "cancelled")
COUNTED = ("pending", "queued", *FINAL)

# One line per scenario, printed at the end of the session (see conftest.py).
REPORT: list[str] = []


@dataclass(frozen=True, slots=True)
class Figures:
    recipients: int
    statuses: dict[str, int]
    stats: dict[str, Any]
    unfinished: int
    sent_not_delivered: int
    delivered_not_sent: int
    duplicates: int
    failed_without_reason: int
    failed_within_budget: int
    over_budget: int

    @property
    def lost(self) -> int:
        return self.unfinished + self.sent_not_delivered

    def stats_mismatches(self) -> dict[str, tuple[int, int]]:
        """Counts where the stats endpoint and the message rows disagree: {name: (api, db)}."""
        wanted = {"total": self.recipients, **{s: self.statuses.get(s, 0) for s in COUNTED}}
        return {k: (self.stats[k], v) for k, v in wanted.items() if self.stats[k] != v}

    def short_of_all_sent(self, recipients: int) -> dict[str, Any]:
        """What keeps this from "all `recipients` sent, exactly recorded": {} when nothing."""
        problems: dict[str, Any] = {
            "lost": self.lost,
            "delivered_not_sent": self.delivered_not_sent,
            "stats_mismatches": self.stats_mismatches(),
        }
        if self.statuses != {"sent": recipients}:
            problems["statuses"] = self.statuses
        return {k: v for k, v in problems.items() if v}

    def line(self, scenario: str, seconds: float, bound: int | None = None) -> str:
        within = f" (bound {bound})" if bound is not None else ""
        counts = " ".join(f"{s}={self.statuses.get(s, 0)}" for s in FINAL if self.statuses.get(s))
        if self.delivered_not_sent:
            counts += f" delivered_but_not_sent={self.delivered_not_sent}"
        return (
            f"FAULT {scenario}: recipients={self.recipients} lost={self.lost} "
            f"duplicates={self.duplicates}{within} completed_in={seconds:.1f}s {counts}"
        )


def measure(
    engine: Engine,
    campaign_id: int,
    gateway: GatewayServer,
    stats: dict[str, Any],
    max_attempts: int = 0,
) -> Figures:
    """Compare the campaign's message rows with the gateway's record and the stats endpoint."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, attempts, last_error FROM message WHERE campaign_id = :c"),
            {"c": campaign_id},
        ).all()
    received = {row.id: gateway.delivery_count(row.id) for row in rows}
    sent = {row.id for row in rows if row.status == "sent"}
    failed = [row for row in rows if row.status == "failed"]
    return Figures(
        recipients=len(rows),
        statuses=dict(Counter(row.status for row in rows)),
        stats=stats,
        unfinished=sum(1 for row in rows if row.status not in FINAL),
        sent_not_delivered=sum(1 for i in sent if received[i] == 0),
        delivered_not_sent=sum(1 for i, n in received.items() if n and i not in sent),
        duplicates=sum(n - 1 for n in received.values() if n > 1),
        failed_without_reason=sum(1 for row in failed if not row.last_error),
        failed_within_budget=sum(1 for row in failed if row.attempts < max_attempts),
        over_budget=sum(1 for row in rows if max_attempts and row.attempts > max_attempts),
    )


def report(line: str) -> None:
    """Keep a scenario's figures for the end of the session, and show them now."""
    REPORT.append(line)
    print(line)
