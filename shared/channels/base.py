"""Messenger and AsyncMessenger protocols, their factories: the port every channel implements.

A channel's messenger either blocks (smtplib) or is a coroutine (aiohttp); the dispatcher
runs a blocking one on a few threads and an async one on its event loop, with the same
rules around both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.domain.deliveries import DeliveryItem
from shared.domain.outcomes import DeliveryResult


class Messenger(Protocol):
    """Delivers one item over one channel and says how it went, blocking its thread."""

    channel: str

    def send(self, item: DeliveryItem) -> DeliveryResult:
        """Deliver item; a failed delivery is a result, never an exception."""
        ...

    def close(self) -> None:
        """Release connections; the messenger is not used afterwards."""
        ...


class AsyncMessenger(Protocol):
    """Delivers items concurrently on one event loop; one instance serves every delivery."""

    channel: str

    async def send(self, item: DeliveryItem) -> DeliveryResult:
        """Deliver item; a failed delivery is a result, never an exception."""
        ...

    async def close(self) -> None:
        """Release connections; the messenger is not used afterwards."""
        ...


# Called once per delivery thread.
MessengerFactory = Callable[[], Messenger]
# A coroutine function, awaited once on the dispatcher's loop (where its sessions must live).
AsyncMessengerFactory = Callable[[], Awaitable[AsyncMessenger]]
ChannelFactory = MessengerFactory | AsyncMessengerFactory
