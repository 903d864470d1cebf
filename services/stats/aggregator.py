"""Drain outcome and receipt batches; apply them in one transaction of bulk statements; ack after.

Applying is idempotent (only queued messages take an outcome, only sent ones a receipt), so a
redelivery after a crash between commit and ack changes nothing. Receipts are applied after
the outcomes of the same flush, and a receipt that came before its message's sent outcome
waits in early_receipt until that outcome is applied.
"""

from __future__ import annotations

import collections
import logging
import time

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.db.queries.recipients import opt_out_clients
from shared.db.queries.sender_health import record_sender_health
from shared.db.queries.statuses import (
    apply_early_receipts,
    apply_notification_outcomes,
    apply_outcomes,
    apply_receipts,
    forget_early_receipts,
)
from shared.domain.deliveries import CAMPAIGN, NOTIFICATION
from shared.domain.gateway_delivery import DeliveryShares
from shared.domain.receipts import Receipt
from shared.messaging.consumer import Delivery, Session
from shared.messaging.envelopes import (
    DecodeError,
    GatewayDelivery,
    Outcome,
    OutcomeBatch,
    ReceiptBatch,
    SenderHealth,
)
from shared.messaging.publisher import SnapshotPublisher
from shared.messaging.topology import (
    CAMPAIGNS_EXCHANGE,
    GATEWAY_DELIVERY_KEY,
    RECEIPT_KEY_PREFIX,
    SENDER_HEALTH_KEY,
)

log = logging.getLogger(__name__)

GATEWAY_VERDICT_EVERY_S = 5.0  # how often the senders hear which gateways deliver too little

OUTCOMES = Counter(
    "herald_stats_outcomes_received_total", "Delivery outcomes received.", ["status", "kind"]
)
APPLIED = Counter(
    "herald_stats_outcomes_applied_total",
    "Outcomes that moved a message or a notification to a final status.",
    ["kind"],
)
RECEIPTS = Counter(
    "herald_stats_receipts_total",
    "Delivery receipts by what became of them: applied, early (kept until the sent outcome),"
    " ignored (already final) or unknown (no such id).",
    ["result"],
)
EARLY_APPLIED = Counter(
    "herald_stats_early_receipts_applied_total",
    "Receipts kept early and applied once their message's sent outcome was.",
)
OPTED_OUT = Counter(
    "herald_stats_receipts_opted_out_total",
    "Clients opted out of e-mail by a permanent bounce or a complaint.",
)
EARLY_RECEIPT_SWEEP_S = 3600.0
FLUSH_SECONDS = Histogram(
    "herald_stats_flush_duration_seconds",
    "Time to apply one drained set of outcome batches.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Aggregator:
    """Buffers deliveries of outcome batches; flush() applies and acks them together."""

    def __init__(
        self,
        engine: Engine,
        flush_max: int,
        flush_s: float,
        early_receipt_days: int = 7,
        gateway_shares: DeliveryShares | None = None,
    ) -> None:
        self.engine = engine
        # Judges gateways by their receipts and tells the senders (None: receipts move no
        # traffic, HERALD_GATEWAY_MIN_DELIVERY_SHARE=0).
        self.gateway_shares = gateway_shares
        self.verdict_at = 0.0
        self.told_low: frozenset[str] = frozenset()
        self.verdicts = SnapshotPublisher("gateway delivery verdicts", log)
        self.flush_max = flush_max
        self.flush_s = flush_s
        self.early_receipt_days = early_receipt_days
        self.pending: list[tuple[Delivery, OutcomeBatch | ReceiptBatch]] = []
        self.oldest = 0.0
        self.retry_at = 0.0
        self.sweep_at = 0.0

    def on_delivery(self, delivery: Delivery, session: Session) -> None:
        batch: OutcomeBatch | ReceiptBatch
        if delivery.routing_key == SENDER_HEALTH_KEY:
            self.record_health(delivery, session)
            return
        if delivery.routing_key.startswith(RECEIPT_KEY_PREFIX):
            batch = ReceiptBatch.decode(delivery.body)
        else:
            batch = OutcomeBatch.decode(delivery.body)
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append((delivery, batch))
        if len(self.pending) >= self.flush_max:
            self.flush(session)

    def record_health(self, delivery: Delivery, session: Session) -> None:
        """Keep a sender's breaker states. A snapshot is soon replaced by the next, so one
        that cannot be read or stored is dropped, never retried."""
        try:
            health = SenderHealth.decode(delivery.body)
            with self.engine.begin() as conn:
                record_sender_health(conn, health.instance, health.circuits, health.gateways)
        except DecodeError as exc:
            log.warning("a sender.health message was not understood: %s", exc)
        except SQLAlchemyError as exc:
            log.warning("sender breaker states not stored: %s", exc)
        session.channel.basic_ack(delivery.delivery_tag)

    def on_tick(self, session: Session) -> None:
        if self.pending and time.monotonic() - self.oldest >= self.flush_s:
            self.flush(session)
        if time.monotonic() >= self.sweep_at:
            self.sweep_early_receipts()
        if self.gateway_shares is not None and time.monotonic() >= self.verdict_at:
            self.tell_gateway_delivery(session)

    def tell_gateway_delivery(self, session: Session) -> None:
        """Publish the gateways' verdicts to every sender: a snapshot, so none is missed."""
        assert self.gateway_shares is not None
        self.verdict_at = time.monotonic() + GATEWAY_VERDICT_EVERY_S
        verdicts = self.gateway_shares.verdicts(time.time())
        snapshot = GatewayDelivery(
            {name: v.share for name, v in verdicts.items()},
            frozenset(name for name, v in verdicts.items() if v.low),
        )
        if snapshot.low != self.told_low:
            log.warning(
                "gateways delivering under %.0f%% by their receipts: %s",
                self.gateway_shares.min_share * 100,
                ", ".join(f"{n} {snapshot.shares[n]:.0%}" for n in sorted(snapshot.low)) or "none",
            )
        # Unroutable while no sender runs: said once, not every few seconds.
        if self.verdicts.publish(
            session.publisher, CAMPAIGNS_EXCHANGE, GATEWAY_DELIVERY_KEY, snapshot.encode()
        ):
            self.told_low = snapshot.low

    def sweep_early_receipts(self) -> None:
        """Forget receipts kept for messages that never became sent (failed, expired)."""
        self.sweep_at = time.monotonic() + EARLY_RECEIPT_SWEEP_S
        try:
            with self.engine.begin() as conn:
                forgotten = forget_early_receipts(conn, self.early_receipt_days)
        except SQLAlchemyError as exc:
            log.warning("early receipts not swept: %s", exc)
            return
        if forgotten:
            log.info(
                "forgot %d early receipts older than %d days", forgotten, self.early_receipt_days
            )

    def on_session_lost(self) -> None:
        # Unacked deliveries come back on the next connection.
        self.pending.clear()

    def flush(self, session: Session) -> None:
        if time.monotonic() < self.retry_at:
            return
        by_kind: dict[str, list[Outcome]] = {}
        receipts: list[Receipt] = []
        for _, batch in self.pending:
            if isinstance(batch, ReceiptBatch):
                receipts.extend(batch.receipts)
            else:
                by_kind.setdefault(batch.kind, []).extend(batch.outcomes)
        messages = by_kind.get(CAMPAIGN, [])
        notifications = by_kind.get(NOTIFICATION, [])
        sent_ids = [o.message_id for o in (*messages, *notifications) if o.status == "sent"]
        try:
            with FLUSH_SECONDS.time(), self.engine.begin() as conn:
                applied = {
                    CAMPAIGN: apply_outcomes(conn, messages),
                    NOTIFICATION: apply_notification_outcomes(conn, notifications),
                }
                # Outcomes first: a receipt of this very flush then finds its message sent.
                late = apply_early_receipts(conn, sent_ids)
                result = apply_receipts(conn, receipts)
                clients = sorted({*late.opt_out_clients, *result.opt_out_clients})
                opted_out = opt_out_clients(conn, clients, "email")
        except SQLAlchemyError as exc:
            # Keep the deliveries unacked and try again shortly: nothing is lost.
            waiting = len(messages) + len(notifications) + len(receipts)
            log.warning("database unavailable, %d outcomes and receipts wait: %s", waiting, exc)
            self.retry_at = time.monotonic() + 2.0
            return
        session.channel.basic_ack(self.pending[-1][0].delivery_tag, multiple=True)
        self.pending.clear()
        for kind, outcomes in by_kind.items():
            for status, n in collections.Counter(o.status for o in outcomes).items():
                OUTCOMES.labels(status, kind).inc(n)
            APPLIED.labels(kind).inc(applied.get(kind, 0))
        RECEIPTS.labels("applied").inc(result.messages + result.notifications)
        RECEIPTS.labels("early").inc(result.early)
        RECEIPTS.labels("ignored").inc(result.ignored)
        RECEIPTS.labels("unknown").inc(result.unknown)
        EARLY_APPLIED.inc(late.messages + late.notifications)
        if self.gateway_shares is not None:
            now = time.time()
            self.gateway_shares.add(now, late.by_gateway)
            self.gateway_shares.add(now, result.by_gateway)
        OPTED_OUT.inc(opted_out)
        if result.unknown:
            log.info("%d receipts named no message or notification", result.unknown)
