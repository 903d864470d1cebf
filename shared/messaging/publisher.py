"""ConfirmingPublisher: persistent, mandatory, confirmed publishes with headers; PublishFailed."""

from __future__ import annotations

import logging
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError

from shared.messaging.envelopes import CONTENT_TYPE


class PublishFailed(RuntimeError):
    """The broker did not take responsibility for the message (nacked or unroutable)."""


class ConfirmingPublisher:
    """Publishes on a channel in confirm mode: a return means the broker holds the message."""

    def __init__(self, channel: BlockingChannel) -> None:
        self.channel = channel
        self.channel.confirm_delivery()

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm."""
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers or {},
            correlation_id=correlation_id,
        )
        try:
            self.channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        except (NackError, UnroutableError) as exc:
            raise PublishFailed(f"{exchange}/{routing_key}: {exc}") from exc


class SnapshotPublisher:
    """Publishes a periodic snapshot. A refused one is only logged, once until one gets
    through, because the next snapshot replaces it anyway."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self._what = what
        self._log = logger
        self._failing = False

    def publish(self, publisher: ConfirmingPublisher, exchange: str, key: str, body: bytes) -> bool:
        """Whether the broker took it."""
        try:
            publisher.publish(exchange, key, body)
        except PublishFailed as exc:
            if not self._failing:
                self._log.warning("%s not published: %s", self._what, exc)
            self._failing = True
            return False
        self._failing = False
        return True
