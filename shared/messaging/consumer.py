"""Consumer: reconnecting loop, bounded prefetch, manual acks handed back thread-safely.

The handler runs on the connection's thread and must return quickly; slow work goes to a
pool, whose threads hand acks and publishes back through `Session.call_soon`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from shared.logging import correlation_id
from shared.messaging.connection import CONNECTION_ERRORS, Backoff, BrokerNodes
from shared.messaging.envelopes import DecodeError
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import declare_all

log = logging.getLogger(__name__)

HANDLER_FAILURE_PAUSE_S = 1.0  # after a handler fails, so a broken dependency is not hammered
STOP_CHECK_S = 0.05


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    delivery_tag: int
    routing_key: str
    redelivered: bool
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def correlation_id(self) -> str | None:
        value = self.headers.get("x-correlation-id")
        return value if isinstance(value, str) else None


class Session:
    """One live connection: its consuming channel, a confirming publisher, thread-safe hand-back."""

    def __init__(self, connection: BlockingConnection, retry_delays_ms: tuple[int, ...]) -> None:
        self.connection = connection
        self.channel: BlockingChannel = connection.channel()
        declare_all(self.channel, retry_delays_ms)
        self.publisher = ConfirmingPublisher(connection.channel())
        self.is_alive = True

    def ack(self, delivery: Delivery) -> None:
        self.channel.basic_ack(delivery.delivery_tag)

    def reject(self, delivery: Delivery, requeue: bool) -> None:
        self.channel.basic_nack(delivery.delivery_tag, requeue=requeue)

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the connection's thread; dropped if the connection is gone (redelivered)."""
        if not self.is_alive:
            return
        try:
            self.connection.add_callback_threadsafe(functools.partial(self._run_if_alive, fn))
        except CONNECTION_ERRORS:
            log.warning("connection gone; the broker will redeliver the work")

    def _run_if_alive(self, fn: Callable[[], None]) -> None:
        if self.is_alive:
            fn()

    def close(self) -> None:
        self.is_alive = False
        try:
            if self.connection.is_open:
                self.connection.close()
        except CONNECTION_ERRORS:
            pass


Handler = Callable[[Delivery, Session], None]


class Consumer:
    """Consume one queue for ever: reconnect with backoff, call on_tick between deliveries."""

    def __init__(
        self,
        amqp_url: str,
        name: str,
        queue: str,
        prefetch: int,
        retry_delays_ms: tuple[int, ...],
        handler: Handler,
        on_tick: Callable[[Session], None] | None = None,
        tick_s: float = 0.1,
        on_session_lost: Callable[[], None] | None = None,
    ) -> None:
        self.nodes = BrokerNodes(amqp_url)
        self.name = name
        self.queue = queue
        self.prefetch = prefetch
        self.retry_delays_ms = retry_delays_ms
        self.handler = handler
        self.on_tick = on_tick
        self.tick_s = tick_s
        self.on_session_lost = on_session_lost
        # A plain flag, not an Event: stop() is called from signal handlers, which run on the
        # main thread between bytecodes, and an Event's lock may be held right then by the
        # very thread the handler interrupts.
        self._stop_requested = False
        self.is_connected = False

    def stop(self) -> None:
        """Stop after the delivery being handled; safe from a signal handler or any thread."""
        self._stop_requested = True

    def _pause(self, seconds: float) -> None:
        """Sleep, but return within STOP_CHECK_S of a stop()."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(STOP_CHECK_S, left))

    def run(self) -> None:
        """Consume until stop(); survives broker restarts."""
        backoff = Backoff()
        while not self._stop_requested:
            session: Session | None = None
            try:
                session = Session(self.nodes.connect(self.name), self.retry_delays_ms)
                session.channel.basic_qos(prefetch_count=self.prefetch)
                session.channel.basic_consume(
                    self.queue, functools.partial(self._on_message, session)
                )
                self.is_connected = True
                log.info("consuming %s", self.queue)
                backoff.reset()
                self._serve(session)
            except CONNECTION_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
                self._pause(delay)
            finally:
                self.is_connected = False
                if session is not None:
                    session.close()
                    if self.on_session_lost:
                        self.on_session_lost()

    def _serve(self, session: Session) -> None:
        while not self._stop_requested:
            session.connection.process_data_events(time_limit=self.tick_s)
            if self.on_tick:
                self.on_tick(session)

    def _on_message(
        self,
        session: Session,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        if self._stop_requested:
            # pika hands over every delivery it buffered in one call; after a stop they stay
            # unacked and go back to the queue when the connection closes.
            return
        # pika's stubs make every Basic.Deliver field Optional (its constructor's defaults);
        # the broker always sends a delivery tag and a routing key.
        delivery = Delivery(
            body=body,
            delivery_tag=method.delivery_tag,  # type: ignore[arg-type]
            routing_key=method.routing_key,  # type: ignore[arg-type]
            redelivered=bool(method.redelivered),
            headers=dict(properties.headers or {}),
        )
        token = correlation_id.set(delivery.correlation_id)
        # One line per batch (never per item), so a campaign's path can be followed by its id.
        log.info(
            "received from %s",
            self.queue,
            extra={
                "campaign_id": delivery.headers.get("x-campaign-id"),
                "redelivered": delivery.redelivered,
            },
        )
        try:
            self.handler(delivery, session)
        except DecodeError as exc:
            log.error("poison message on %s dead-lettered: %s", self.queue, exc)
            session.reject(delivery, requeue=False)
        except CONNECTION_ERRORS:
            raise
        except Exception:
            # A bug or a dependency failure: give the message back and slow down.
            log.exception("handler failed on %s; message requeued", self.queue)
            session.reject(delivery, requeue=True)
            self._pause(HANDLER_FAILURE_PAUSE_S)
        finally:
            correlation_id.reset(token)
