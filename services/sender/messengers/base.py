"""Messenger protocol, MessengerFactory alias: the port every delivery channel implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.domain.outcomes import DeliveryResult
from shared.messaging.envelopes import DeliveryItem


class Messenger(Protocol):
    """Delivers one item over one channel and says how it went."""

    channel: str

    def send(self, item: DeliveryItem) -> DeliveryResult:
        """Deliver item; a failed delivery is a result, never an exception."""
        ...

    def close(self) -> None:
        """Release connections; the messenger is not used afterwards."""
        ...


MessengerFactory = Callable[[], Messenger]
