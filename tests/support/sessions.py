"""A stand-in for the broker session the stats aggregator acks through."""

from __future__ import annotations


class FakeSession:
    """The ack the aggregator gives after its commit, and what it publishes to the senders."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, str, bytes]] = []
        self.channel = self
        self.publisher = self

    def publish(self, exchange: str, routing_key: str, body: bytes, headers: object = None) -> None:
        self.published.append((exchange, routing_key, body))

    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.acked.append(tag)
