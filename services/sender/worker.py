"""Consumer handler: decode -> dispatch -> publish outcomes, retries, dead letters -> ack.

Decoding and dispatching happen on the connection thread and return at once; the
deliveries run in the dispatcher's pool, and `finish` comes back through call_soon, so
every publish and ack stays on the connection thread and heartbeats keep flowing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from services.sender.dispatcher import Dispatcher, Results
from shared import metrics
from shared.domain.retries import next_retry_delay_ms
from shared.messaging.consumer import Delivery, Session
from shared.messaging.envelopes import (
    DecodeError,
    DeliveryBatch,
    DeliveryItem,
    Outcome,
    OutcomeBatch,
)
from shared.messaging.publisher import PublishFailed
from shared.messaging.topology import (
    DEAD_EXCHANGE,
    OUTCOMES_EXCHANGE,
    RETRY_EXCHANGE,
    retry_routing_key,
)

log = logging.getLogger(__name__)

ERROR_HEADER = "x-herald-error"
MAX_ERROR_HEADER_CHARS = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays_ms: tuple[int, ...]
    max_attempts: int  # 0: no cap


@dataclass(slots=True)
class Plan:
    """What one finished batch turns into: final outcomes, retries per tier, dead letters."""

    outcomes: list[Outcome] = field(default_factory=list)
    retries: dict[int, list[DeliveryItem]] = field(default_factory=dict)
    dead: list[DeliveryItem] = field(default_factory=list)
    last_error: str | None = None


def plan_results(results: Results, policy: RetryPolicy, now: float) -> Plan:
    """Route each result: sent/expired/failed become outcomes; transient ones retry or die."""
    plan = Plan()
    for item, result in results:
        if result.kind in ("sent", "expired"):
            plan.outcomes.append(
                Outcome(item.message_id, result.kind, item.attempt, now, result.error)
            )
            continue
        if result.is_transient:
            delay_ms = next_retry_delay_ms(
                item.attempt, policy.delays_ms, policy.max_attempts, item.deadline, now
            )
            if delay_ms is not None:
                plan.retries.setdefault(delay_ms, []).append(
                    replace(item, attempt=item.attempt + 1)
                )
                continue
        plan.outcomes.append(Outcome(item.message_id, "failed", item.attempt, now, result.error))
        plan.dead.append(item)
        plan.last_error = result.error
    return plan


class Worker:
    """Handles `deliver.<channel>` deliveries for the channels it has dispatchers for."""

    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher],
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dispatchers = dispatchers
        self._policy = policy
        self._clock = clock
        # Delivery tags dispatched and not yet acked; only touched on the connection thread.
        self._pending: set[int] = set()
        self._is_draining = False
        self._is_cancelled = False

    def handle(self, delivery: Delivery, session: Session) -> None:
        """Decode a batch and hand it to its channel's dispatcher; poison propagates."""
        try:
            batch = DeliveryBatch.decode(delivery.body)
        except DecodeError:
            metrics.SENDER_DEAD_LETTERS.labels(_queue_channel(delivery)).inc()
            raise
        metrics.SENDER_BATCHES_CONSUMED.labels(batch.channel).inc()
        dispatcher = self._dispatchers.get(batch.channel)
        if dispatcher is None:
            log.error("no messenger for channel %r; batch dead-lettered", batch.channel)
            metrics.SENDER_DEAD_LETTERS.labels(_queue_channel(delivery)).inc()
            session.reject(delivery, requeue=False)
            return

        def on_done(results: Results) -> None:
            session.call_soon(lambda: self._finish(session, delivery, batch, results))

        dispatcher.dispatch(batch.items, on_done)
        # Safe after dispatching: on_done's finish can only run on this thread, later.
        self._pending.add(delivery.delivery_tag)

    def begin_drain(self) -> None:
        """Stop taking batches; those in flight still finish. Safe from any thread."""
        self._is_draining = True

    @property
    def is_drained(self) -> bool:
        """Consuming is cancelled and every dispatched batch has been acked or rejected."""
        return self._is_cancelled and not self._pending

    def on_tick(self, session: Session) -> None:
        """Between deliveries: once draining, cancel the consumer (never inside a callback)."""
        if self._is_draining and not self._is_cancelled:
            # Cancelling also requeues deliveries pika holds but has not handed over yet.
            for tag in session.channel.consumer_tags:
                session.channel.basic_cancel(tag)
            self._is_cancelled = True
            log.info("stopped consuming; %d batches still in flight", len(self._pending))

    def on_session_lost(self) -> None:
        # The broker requeues whatever this session held unacked; late finishes are dropped.
        self._pending.clear()
        self._is_cancelled = False

    def _finish(
        self, session: Session, delivery: Delivery, batch: DeliveryBatch, results: Results
    ) -> None:
        self._pending.discard(delivery.delivery_tag)
        plan = plan_results(results, self._policy, self._clock())
        try:
            self._publish(session, delivery, batch, plan)
        except PublishFailed as exc:
            # Redelivery resends the whole batch; the message ids as idempotency keys
            # keep the gateway from sending twice.
            log.warning("publishing results failed (%s); batch requeued", exc)
            session.reject(delivery, requeue=True)
            return
        session.ack(delivery)
        _count(batch.channel, plan)

    def _publish(
        self, session: Session, delivery: Delivery, batch: DeliveryBatch, plan: Plan
    ) -> None:
        headers = _headers(delivery, batch)
        publisher = session.publisher
        if plan.outcomes:
            body = OutcomeBatch(batch.campaign_id, tuple(plan.outcomes)).encode()
            publisher.publish(OUTCOMES_EXCHANGE, f"outcome.{batch.channel}", body, headers)
        for delay_ms, items in sorted(plan.retries.items()):
            body = DeliveryBatch(batch.campaign_id, batch.channel, tuple(items)).encode()
            key = retry_routing_key(batch.channel, delay_ms)
            publisher.publish(RETRY_EXCHANGE, key, body, headers)
        if plan.dead:
            body = DeliveryBatch(batch.campaign_id, batch.channel, tuple(plan.dead)).encode()
            error = (plan.last_error or "")[:MAX_ERROR_HEADER_CHARS]
            publisher.publish(DEAD_EXCHANGE, batch.channel, body, {**headers, ERROR_HEADER: error})
            log.info("%d %s items dead-lettered: %s", len(plan.dead), batch.channel, error)


def _headers(delivery: Delivery, batch: DeliveryBatch) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "x-campaign-id": delivery.headers.get("x-campaign-id", batch.campaign_id)
    }
    if delivery.correlation_id:
        headers["x-correlation-id"] = delivery.correlation_id
    return headers


def _queue_channel(delivery: Delivery) -> str:
    # A batch that cannot be read has no channel of its own; the routing key names the queue's.
    return delivery.routing_key


def _count(channel: str, plan: Plan) -> None:
    retried = sum(len(items) for items in plan.retries.values())
    if retried:
        metrics.SENDER_RETRIES.labels(channel).inc(retried)
    if plan.dead:
        metrics.SENDER_DEAD_LETTERS.labels(channel).inc(len(plan.dead))
