"""A stand-in for the broker session the stats aggregator acks through."""

from __future__ import annotations


class FakeSession:
    """Just the ack the aggregator gives after its commit."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.channel = self

    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.acked.append(tag)
