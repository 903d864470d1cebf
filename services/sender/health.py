"""HealthReporter: every few seconds, this sender's breaker states on the outcomes exchange.

Stats keeps the newest snapshot of each sender, and the API shows them (the console's
operations page): whether a channel or a gateway is held back, and which senders are alive.
One small message per period, from the connection thread of the worker that carries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from services.sender.control import instance_name
from services.sender.dispatcher import Dispatcher
from shared.messaging.consumer import Session
from shared.messaging.envelopes import SenderHealth
from shared.messaging.publisher import SnapshotPublisher
from shared.messaging.topology import OUTCOMES_EXCHANGE, SENDER_HEALTH_KEY

log = logging.getLogger(__name__)


class HealthReporter:
    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher],
        every_s: float,
        instance: str | None = None,
    ) -> None:
        self._dispatchers = dispatchers
        self._every_s = every_s
        self.instance = instance or instance_name()
        self._due = 0.0
        self._snapshots = SnapshotPublisher("breaker states", log)

    def snapshot(self) -> SenderHealth:
        circuits: dict[str, str] = {}
        gateways: dict[str, str] = {}
        for dispatcher in self._dispatchers.values():
            channel_states, gateway_states = dispatcher.breaker_states()
            circuits.update(channel_states)
            gateways.update(gateway_states)
        return SenderHealth(self.instance, circuits, gateways)

    def on_tick(self, session: Session) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self._every_s
        body = self.snapshot().encode()
        self._snapshots.publish(session.publisher, OUTCOMES_EXCHANGE, SENDER_HEALTH_KEY, body)
