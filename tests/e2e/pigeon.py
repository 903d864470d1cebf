"""A third channel, defined in this one module: carrier pigeons to a client's phone number.

It exists to show that a channel is one module: named in HERALD_CHANNEL_MODULES, nothing else
in Herald changes. Each pigeon is a line in the loft file (HERALD_PIGEON_LOFT); a number
ending in 0 has no roost, which this channel, like any other, classifies itself: permanent.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from shared.channels.base import MessengerFactory
from shared.config import Settings
from shared.domain.channels import ChannelRules
from shared.domain.deliveries import DeliveryItem
from shared.domain.outcomes import DeliveryResult, permanent, sent

RULES = ChannelRules("pigeon", address_field="phone")

_lock = threading.Lock()


class PigeonMessenger:
    channel = RULES.name

    def __init__(self, loft: Path) -> None:
        self.loft = loft

    def send(self, item: DeliveryItem) -> DeliveryResult:
        if item.address.endswith("0"):
            return permanent(f"no roost at {item.address}")
        with _lock, self.loft.open("a") as loft:
            loft.write(f"{item.message_id}\t{item.address}\t{item.text}\n")
        return sent()

    def close(self) -> None:
        pass


def messenger_factory(settings: Settings) -> MessengerFactory:
    loft = Path(os.environ["HERALD_PIGEON_LOFT"])
    return lambda: PigeonMessenger(loft)
