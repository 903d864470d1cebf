"""Composition root: messenger registry, two consumers per enabled channel, graceful drain.

Each channel has a campaign lane and a priority lane (notifications), consumed on connections
of their own with workers of their own: a notification batch never waits behind campaign
batches for a prefetch slot, a dispatch turn or a delivery slot.

SIGTERM or SIGINT stops taking batches, lets those in flight finish and be acked for up to
DRAIN_TIMEOUT_S, then exits 0; anything still unacked is redelivered to another sender.
"""

from __future__ import annotations

import gc
import logging
import resource
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType

from services.sender.breaker import ChannelBreaker, breaker_policy
from services.sender.control import ControlQueue, HeldCampaigns
from services.sender.dispatcher import Dispatcher
from services.sender.health import HealthReporter
from services.sender.worker import RetryPolicy, Worker
from shared import metrics
from shared.channels.registry import build_registry
from shared.config import Settings, service_settings
from shared.domain.deliveries import CAMPAIGN, NOTIFICATION
from shared.domain.throttle import priority_concurrency
from shared.logging import configure, secrets_of
from shared.messaging.consumer import Consumer
from shared.messaging.envelopes import GatewayDelivery
from shared.messaging.topology import delivery_queue

log = logging.getLogger("services.sender")

DRAIN_TIMEOUT_S = 20.0
GC_GEN0_THRESHOLD = 50_000  # allocations between collections (Python's default: 700)

Pairs = list[tuple[Consumer, Worker]]


def build_consumer(settings: Settings, channel: str, worker: Worker, kind: str) -> Consumer:
    return Consumer(
        settings.amqp_url,
        f"herald-sender-{channel}" + ("-priority" if kind == NOTIFICATION else ""),
        delivery_queue(channel, kind),
        settings.sender_prefetch,
        settings.retry_delays_ms,
        worker.handle,
        on_tick=worker.on_tick,
        on_session_lost=worker.on_session_lost,
    )


def build_pairs(
    settings: Settings, dispatchers: Mapping[str, Dispatcher], held: HeldCampaigns
) -> Pairs:
    """A consumer and its worker for each channel's two lanes; they share the dispatchers.

    The first worker also carries the process's control queue on its connection.
    """
    policy = RetryPolicy(settings.retry_delays_ms, settings.max_attempts)

    def tell_gateways(verdicts: GatewayDelivery) -> None:
        for dispatcher in dispatchers.values():
            dispatcher.tell_gateway_delivery(verdicts)

    pairs: Pairs = []
    for index, channel in enumerate(dispatchers):
        control = ControlQueue(held, tell_gateways) if index == 0 else None
        health = HealthReporter(dispatchers, settings.sender_health_s) if index == 0 else None
        # Delivered items without a confirmed outcome are what a broker restart can make
        # another sender send again: no more of them than deliveries in flight.
        worker = Worker(
            dispatchers,
            policy,
            control=control,
            max_unreported=settings.sender_concurrency,
            health=health,
        )
        pairs.append((build_consumer(settings, channel, worker, CAMPAIGN), worker))
        priority = Worker(
            dispatchers,
            policy,
            max_unreported=priority_concurrency(settings.sender_concurrency),
        )
        pairs.append((build_consumer(settings, channel, priority, NOTIFICATION), priority))
    return pairs


def stop_when_drained(pairs: Pairs, timeout_s: float) -> None:
    """Wait until every worker has drained (or the timeout), then stop the consumers."""
    for _, worker in pairs:
        worker.begin_drain()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(
        worker.is_drained or not consumer.is_connected for consumer, worker in pairs
    ):
        time.sleep(0.05)
    for consumer, _ in pairs:
        consumer.stop()


def raise_open_files_limit(needed: int) -> None:
    """Every delivery in flight may hold a socket: lift the soft limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def tune_gc() -> None:
    """Collect cycles rarely: with a thousand deliveries in flight, every gen-0 collection
    walks thousands of live tasks and connections, a third of the sender's CPU as measured
    here. Almost everything is freed by reference counting anyway; what start-up built is
    frozen out of the collector's way.
    """
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)


def main() -> int:
    settings = service_settings("sender", signs_links=True)
    configure("sender", settings.log_level, secrets_of(settings))
    metrics.serve(settings.metrics_port)
    # Room for the pooled connections of every channel (SMS: a pool per gateway), plus the
    # broker's and the logs'.
    pools = len(settings.sender_channels) + len(settings.routing.gateways) - 1
    raise_open_files_limit(settings.sender_concurrency * pools + 256)

    registry = build_registry(settings)
    channels = settings.sender_channels
    unknown = [c for c in channels if c not in registry]
    if unknown:
        log.error(
            "HERALD_SENDER_CHANNELS names channels with no messenger: %s; known: %s",
            ", ".join(unknown),
            ", ".join(sorted(registry)),
        )
        return 2
    held = HeldCampaigns()
    dispatchers = {
        c: Dispatcher(
            c,
            registry[c],
            settings.sender_concurrency,
            ChannelBreaker(c, breaker_policy(settings)),
            held,
        )
        for c in channels
    }
    pairs = build_pairs(settings, dispatchers, held)
    log.info(
        "sender consuming %s: up to %d deliveries in flight, prefetch %d batches",
        ",".join(channels),
        settings.sender_concurrency,
        settings.sender_prefetch,
    )
    tune_gc()
    consume_until_drained(pairs)
    for dispatcher in dispatchers.values():
        dispatcher.close()
    log.info("sender stopped")
    return 0


def consume_until_drained(pairs: Pairs) -> None:
    """Run the consumers, the first on this (the main) thread, until a signal drains them."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        # The handler runs between bytecodes of the main thread, inside pika: it only
        # starts the drain, which touches no connection.
        threading.Thread(
            target=stop_when_drained, args=(pairs, DRAIN_TIMEOUT_S), name="drain", daemon=True
        ).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    others = [threading.Thread(target=c.run, name=f"consume-{c.queue}") for c, _ in pairs[1:]]
    for thread in others:
        thread.start()
    pairs[0][0].run()
    for thread in others:
        thread.join()


if __name__ == "__main__":
    sys.exit(main())
