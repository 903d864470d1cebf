"""One scheduler tick: start, keep windows, close, release under throttles, finish; snapshots.

Every step reads progress counters and probes indexes, so a tick with nothing due costs a few
queries whatever the size of the campaigns waiting.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from services.scheduler import metrics
from services.scheduler.lifecycle import close_unsendable, finish_done, start_due
from services.scheduler.releaser import prune_channel_releases, release_due
from services.scheduler.windows import keep_windows
from shared.config import ChannelLimits, Settings
from shared.db.queries.scheduling import held_campaigns
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import CAMPAIGNS_EXCHANGE

HELD_ROUTING_KEY = "campaign.held"
HELD_EVERY_S = 5.0
PRUNE_EVERY_S = 60.0


@dataclass
class Ticker:
    """The scheduler's loop body, with what it remembers between ticks."""

    settings: Settings
    limits: Mapping[str, ChannelLimits] = field(default_factory=dict)
    turn: int = 0  # rotates who gets the odd unit of a channel budget
    held_at: float = -math.inf
    pruned_at: float = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> Ticker:
        return cls(settings, settings.channel_limits)

    def tick(self, engine: Engine, publisher: ConfirmingPublisher) -> int:
        """One pass over every campaign; returns how many messages were released."""
        with metrics.TICK_SECONDS.time():
            start_due(engine, self.settings.message_partition_ids)
            keep_windows(engine)
            close_unsendable(engine)
            released = release_due(engine, publisher, self.settings, self.limits, self.turn)
            finish_done(engine)
            self.turn += 1
            self.housekeeping(engine, publisher)
        return released

    def housekeeping(self, engine: Engine, publisher: ConfirmingPublisher) -> None:
        now = time.monotonic()
        if now - self.held_at >= HELD_EVERY_S:
            publish_held(engine, publisher)
            self.held_at = now
        if now - self.pruned_at >= PRUNE_EVERY_S:
            prune_channel_releases(engine, self.limits)
            self.pruned_at = now


def publish_held(engine: Engine, publisher: ConfirmingPublisher) -> list[int]:
    """Tell senders which campaigns are paused or cancelled with messages still out.

    A snapshot, not a change: a sender started after a pause learns of it from the next one.
    """
    with engine.connect() as conn:
        ids = held_campaigns(conn)
    body = json.dumps({"campaign_ids": ids}).encode()
    publisher.publish(CAMPAIGNS_EXCHANGE, HELD_ROUTING_KEY, body)
    return ids
