"""Consumer handler: decode -> dispatch -> publish outcomes, retries, dead letters -> ack.

Decoding and dispatching happen on the connection thread and return at once; deliveries run
on the dispatcher's loop. A batch's results are published when its last item is in, which
comes back through call_soon; a batch whose items are all with the messenger but still not
done after PARTIAL_AFTER_S has what is finished published from on_tick meanwhile, so slow
recipients delay only themselves. Every publish and ack stays on the connection thread; the
ack comes after the last publish.

When the session is lost its batches are abandoned: the broker delivers them again, so no
more of their items go to the messenger, and the results of those that did are kept for a
redelivery to this sender to settle instead of sending them twice (see kept.py). What another
sender may send again is what this one had delivered without a confirmed outcome, so that is
bounded too: a batch is handed to the dispatcher only while fewer than `max_unreported` items
are with it and unreported; the others wait their turn here, still unacked.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from services.sender.control import ControlQueue
from services.sender.dispatcher import BatchProgress, Dispatcher, Results
from services.sender.health import HealthReporter
from services.sender.kept import KeptResults
from shared import metrics
from shared.domain.deliveries import NOTIFICATION
from shared.domain.outcomes import DEFERRED, EXPIRED, HELD, SENT, TRANSIENT, DeliveryResult
from shared.domain.retries import GiveUp, deferral_delay_ms, plan_retry
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
    lane_key,
    retry_routing_key,
)

log = logging.getLogger(__name__)

ERROR_HEADER = "x-herald-error"
MAX_ERROR_HEADER_CHARS = 1000
PARTIAL_AFTER_S = 0.5  # a batch this old publishes its finished results without the rest
PARTIAL_EVERY_S = 0.1
EXPIRED_WHILE_DEFERRED = "campaign ended while the channel's circuit breaker was open"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays_ms: tuple[int, ...]
    max_attempts: int  # 0: no cap


@dataclass(slots=True)
class Plan:
    """What finished results turn into: final outcomes, retries per tier, dead letters."""

    at: float
    outcomes: list[Outcome] = field(default_factory=list)
    retries: dict[int, list[DeliveryItem]] = field(default_factory=dict)
    dead: list[DeliveryItem] = field(default_factory=list)
    last_error: str | None = None

    def settle(
        self,
        item: DeliveryItem,
        status: str,
        attempts: int,
        error: str | None,
        result: DeliveryResult | None = None,
    ) -> None:
        gateway = result.gateway if result else None
        segments = result.segments if result else None
        self.outcomes.append(
            Outcome(item.message_id, status, attempts, self.at, error, gateway, segments)
        )

    def park(
        self, item: DeliveryItem, status: str, error: str | None, result: DeliveryResult
    ) -> None:
        """A final outcome for an item that was tried and can no longer be sent."""
        self.settle(item, status, item.attempt, error, result)
        self.dead.append(item)
        self.last_error = error


def plan_results(results: Results, policy: RetryPolicy, now: float) -> Plan:
    """Route each result: final outcomes, a retry tier, or the parking lot with an outcome."""
    plan = Plan(now)
    for item, result in results:
        _plan_one(plan, item, result, policy, now)
    return plan


def _plan_one(
    plan: Plan, item: DeliveryItem, result: DeliveryResult, policy: RetryPolicy, now: float
) -> None:
    # `attempt` is the number of the attempt this delivery was; items not tried made one fewer.
    if result.kind == SENT:
        plan.settle(item, "sent", item.attempt, None, result)
    elif result.kind == EXPIRED:
        plan.settle(item, "expired", item.attempt - 1, result.error)
    elif result.kind == HELD:
        plan.settle(item, "held", item.attempt - 1, None)
    elif result.kind == DEFERRED:
        delay_ms = deferral_delay_ms(policy.delays_ms, item.deadline, now)
        if delay_ms is None:
            plan.settle(item, "expired", item.attempt - 1, EXPIRED_WHILE_DEFERRED)
        else:
            plan.retries.setdefault(delay_ms, []).append(item)
    elif result.kind == TRANSIENT:
        decision = plan_retry(
            item.attempt,
            policy.delays_ms,
            policy.max_attempts,
            item.deadline,
            now,
            result.retry_after_s,
        )
        if decision is GiveUp.EXHAUSTED:
            plan.park(item, "failed", result.error, result)
        elif decision is GiveUp.DEADLINE:
            plan.park(item, "expired", result.error, result)
        else:
            # After an unsure failure the next attempt goes to the same gateway, whose
            # idempotency key absorbs a repeat; another gateway would send it twice.
            gateway = result.gateway if result.unsure else item.gateway
            retry = replace(item, attempt=item.attempt + 1, gateway=gateway)
            plan.retries.setdefault(int(decision), []).append(retry)
    else:
        plan.park(item, "failed", result.error, result)


@dataclass(slots=True)
class InFlight:
    delivery: Delivery
    batch: DeliveryBatch
    progress: BatchProgress
    to_send: Sequence[DeliveryItem]  # for the dispatcher; emptied once dispatched
    partial_at: float = 0.0  # monotonic time of its next partial publish
    # Items given to the dispatcher (with any settled from kept results) and not yet published.
    unreported: int = 0
    # Items whose outcomes, retries or dead letters the broker has confirmed.
    published: list[DeliveryItem] = field(default_factory=list)


class Worker:
    """Handles `deliver.<channel>` deliveries for the channels it has dispatchers for."""

    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher],
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
        control: ControlQueue | None = None,
        kept: KeptResults | None = None,
        max_unreported: int = 0,
        health: HealthReporter | None = None,
    ) -> None:
        self._dispatchers = dispatchers
        self._health = health
        self._policy = policy
        self._clock = clock
        self._control = control
        self._kept = kept if kept is not None else KeptResults()
        self._max_unreported = max_unreported  # 0: no bound
        # Batches taken and not yet acked, by delivery tag; connection thread only.
        self._in_flight: dict[int, InFlight] = {}
        self._waiting: deque[int] = deque()  # tags of batches not yet dispatched, in order
        self._unreported = 0
        self._last_partial = 0.0
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
        tag = delivery.delivery_tag
        finish = functools.partial(self._finish, session, tag)
        # Only a batch the broker delivered before can hold items this sender delivered.
        kept = self._kept if delivery.redelivered and len(self._kept) else None
        items = kept.unpublished(batch.items) if kept else batch.items
        progress = BatchProgress(items, lambda: session.call_soon(finish))
        flight = InFlight(delivery, batch, progress, items)
        self._in_flight[tag] = flight
        if kept:
            flight.to_send = self._settle_kept(kept, batch, progress)
        if flight.to_send:
            self._waiting.append(tag)
            self._dispatch_waiting()
        elif not items:
            session.call_soon(finish)

    def begin_drain(self) -> None:
        """Stop taking batches; those in flight still finish. Safe from any thread."""
        self._is_draining = True

    @property
    def is_drained(self) -> bool:
        """Consuming is cancelled and every dispatched batch has been acked or rejected."""
        return self._is_cancelled and not self._in_flight

    def on_tick(self, session: Session) -> None:
        """Between deliveries: listen for control events, publish partial results, drain."""
        if self._control is not None:
            self._control.ensure_attached(session)
        if self._health is not None:
            self._health.on_tick(session)
        now = time.monotonic()
        if now - self._last_partial >= PARTIAL_EVERY_S:
            self._last_partial = now
            self._publish_partial(session, now)
            self._kept.prune()
        if self._is_draining and not self._is_cancelled:
            # Cancelling also requeues deliveries pika holds but has not handed over yet.
            # The control consumer stays: items still waiting must hear of a pause.
            control_tag = self._control.consumer_tag if self._control else None
            for tag in list(session.channel.consumer_tags):
                if tag != control_tag:
                    session.channel.basic_cancel(tag)
            self._is_cancelled = True
            log.info("stopped consuming; %d batches still in flight", len(self._in_flight))

    def on_session_lost(self) -> None:
        # The broker requeues whatever this session held unacked and delivers it again, here
        # or to another sender, and late finishes for the old session are dropped. So items
        # still waiting (for a slot, or here for their turn) are not sent any more; those with
        # the messenger finish and their results, with those already in, are kept for a
        # redelivery here to settle.
        done = sending = 0
        for flight in self._in_flight.values():
            batch_done, batch_sending = flight.progress.abandon(self._kept)
            done, sending = done + batch_done, sending + batch_sending
            if flight.published:
                self._kept.mark_published(flight.published)
        self._waiting.clear()
        self._unreported = 0
        if self._in_flight:
            held = sum(len(flight.batch.items) for flight in self._in_flight.values())
            log.warning(
                "session lost holding %d batches (%d items): %d done and %d with the messenger "
                "are kept for their redelivery, the other %d will not be sent",
                len(self._in_flight),
                held,
                done,
                sending,
                held - done - sending,
            )
        self._in_flight.clear()
        self._is_cancelled = False

    def _dispatch_waiting(self) -> None:
        """Hand waiting batches to their dispatchers, in order, while the bound allows."""
        while self._waiting:
            flight = self._in_flight.get(self._waiting[0])
            if flight is None:
                self._waiting.popleft()
                continue
            count = len(flight.progress.items)
            bound = self._max_unreported
            # A batch larger than the bound still goes, alone.
            if bound and self._unreported and self._unreported + count > bound:
                return
            self._waiting.popleft()
            flight.unreported = count
            self._unreported += count
            now = time.monotonic()
            flight.progress.started = now
            flight.partial_at = now + PARTIAL_AFTER_S
            dispatcher = self._dispatchers[flight.batch.channel]
            priority = flight.batch.kind == NOTIFICATION
            dispatcher.dispatch(
                flight.batch.campaign_id, flight.progress, flight.to_send, priority=priority
            )
            flight.to_send = ()

    def _is_short_of_room(self) -> bool:
        """A batch waits to be dispatched, and the batches now finishing will not make room."""
        if not self._waiting or not self._max_unreported:
            return False
        head = self._in_flight.get(self._waiting[0])
        if head is None:
            return False
        finishing = sum(f.unreported for f in self._in_flight.values() if f.progress.is_complete)
        needed = self._unreported - finishing + len(head.progress.items)
        return needed > self._max_unreported

    def _settle_kept(
        self, kept: KeptResults, batch: DeliveryBatch, progress: BatchProgress
    ) -> Sequence[DeliveryItem]:
        """Settle a redelivered batch's items from kept results; returns those left to send."""
        to_send = kept.claim(progress.items, progress.record)
        progress.mark_handed_over(len(progress.items) - len(to_send))
        settled = len(batch.items) - len(to_send)
        if settled:
            metrics.SENDER_KEPT_RESULTS_USED.labels(batch.channel).inc(settled)
            log.info(
                "redelivered batch: %d of %d items settled from their earlier delivery",
                settled,
                len(batch.items),
            )
        return to_send

    def _publish_partial(self, session: Session, now: float) -> None:
        # While a batch waits for room that no finishing batch will make, the finished items
        # that only slow ones hold back are what takes the room: publish them now, not later.
        is_short = self._is_short_of_room()
        for tag, flight in list(self._in_flight.items()):
            progress = flight.progress
            # Items still waiting for a slot are not slow, only queued: they will be done
            # soon, and publishing each batch in parts would cost a confirm per part.
            if not progress.is_all_handed_over or progress.is_complete:
                continue
            if now < flight.partial_at and not is_short:
                continue
            # Then at twice the age each time: a batch waiting on a hung gateway for the
            # whole timeout publishes in a handful of parts.
            flight.partial_at = now + (now - progress.started)
            results = progress.take()
            if results and not self._publish_results(session, flight, results):
                self._remove(tag)
        self._dispatch_waiting()

    def _finish(self, session: Session, tag: int) -> None:
        flight = self._in_flight.get(tag)
        if flight is None:
            return
        if self._publish_results(session, flight, flight.progress.take()):
            session.ack(flight.delivery)
        # Only now: if the session goes during the publish or the ack, the batch is still
        # in flight, so it is abandoned with its results kept.
        self._remove(tag)
        self._dispatch_waiting()

    def _remove(self, tag: int) -> None:
        flight = self._in_flight.pop(tag)
        self._unreported -= flight.unreported

    def _publish_results(self, session: Session, flight: InFlight, results: Results) -> bool:
        """Publish what the results turn into; on failure requeue the batch and say False."""
        plan = plan_results(results, self._policy, self._clock())
        try:
            self._publish(session, flight.delivery, flight.batch, plan)
        except PublishFailed as exc:
            # Redelivery resends the whole batch; the message ids as idempotency keys
            # keep the gateway from sending twice.
            log.warning("publishing results failed (%s); batch requeued", exc)
            session.reject(flight.delivery, requeue=True)
            return False
        flight.published.extend(item for item, _ in results)
        reported = min(len(results), flight.unreported)
        flight.unreported -= reported
        self._unreported -= reported
        _count(flight.batch.channel, plan)
        return True

    def _publish(
        self, session: Session, delivery: Delivery, batch: DeliveryBatch, plan: Plan
    ) -> None:
        headers = _headers(delivery, batch)
        publisher = session.publisher
        if plan.outcomes:
            body = OutcomeBatch(batch.campaign_id, tuple(plan.outcomes), batch.kind).encode()
            publisher.publish(OUTCOMES_EXCHANGE, f"outcome.{batch.channel}", body, headers)
        for delay_ms, items in sorted(plan.retries.items()):
            body = replace(batch, items=tuple(items)).encode()
            key = retry_routing_key(batch.channel, delay_ms, batch.kind)
            publisher.publish(RETRY_EXCHANGE, key, body, headers)
        if plan.dead:
            body = replace(batch, items=tuple(plan.dead)).encode()
            error = (plan.last_error or "")[:MAX_ERROR_HEADER_CHARS]
            # Parked under its lane's key, so a replay puts it back where it came from.
            key = lane_key(batch.channel, batch.kind)
            publisher.publish(DEAD_EXCHANGE, key, body, {**headers, ERROR_HEADER: error})
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
