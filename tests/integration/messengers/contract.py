"""MessengerContract: the behaviour every messenger must show against its loopback fake.

A subclass provides the `fake` fixture and the hooks below; pytest collects these tests
once per subclass, as kombu's shared integration classes run once per transport.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from shared.channels.base import Messenger
from shared.domain.outcomes import PERMANENT, SENT, TRANSIENT
from shared.messaging.envelopes import DeliveryItem

_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)


class MessengerContract:
    address = "+15550100000"

    @pytest.fixture
    def fake(self) -> Any:
        raise NotImplementedError

    def make_messenger(self, fake: Any) -> Messenger:
        raise NotImplementedError

    def make_unreachable_messenger(self) -> Messenger:
        raise NotImplementedError

    def fail_next(self, fake: Any, message_id: int, fault: str) -> None:
        """Make the next send of message_id meet fault: "transient", "permanent" or "drop"."""
        raise NotImplementedError

    def delivered_count(self, fake: Any, message_id: int) -> int:
        raise NotImplementedError

    @pytest.fixture
    def messenger(self, fake: Any) -> Any:
        messenger = self.make_messenger(fake)
        yield messenger
        messenger.close()

    def make_item(self) -> DeliveryItem:
        return DeliveryItem(next(_ids), self.address, "Hello", 1, time.time() + 3600)

    def test_delivered_item_is_sent(self, fake, messenger):
        item = self.make_item()

        result = messenger.send(item)

        assert result.kind == SENT
        assert self.delivered_count(fake, item.message_id) == 1

    def test_server_error_is_transient(self, fake, messenger):
        item = self.make_item()
        self.fail_next(fake, item.message_id, "transient")

        result = messenger.send(item)

        assert result.kind == TRANSIENT
        assert result.error

    def test_rejected_item_is_permanent(self, fake, messenger):
        item = self.make_item()
        self.fail_next(fake, item.message_id, "permanent")

        result = messenger.send(item)

        assert result.kind == PERMANENT
        assert result.error

    def test_server_down_is_transient(self):
        messenger = self.make_unreachable_messenger()

        result = messenger.send(self.make_item())

        messenger.close()
        assert result.kind == TRANSIENT

    @pytest.mark.parametrize("fault", ["transient", "permanent", "drop"])
    def test_never_raises_and_recovers_for_the_next_item(self, fake, messenger, fault):
        failing, following = self.make_item(), self.make_item()
        self.fail_next(fake, failing.message_id, fault)

        result = messenger.send(failing)
        next_result = messenger.send(following)

        assert result.kind in (TRANSIENT, PERMANENT)
        assert next_result.kind == SENT

    def test_channel_is_named(self, messenger):
        assert isinstance(messenger.channel, str) and messenger.channel
