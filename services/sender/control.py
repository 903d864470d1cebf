"""HeldCampaigns and ControlQueue: which campaigns' items must not start, kept current.

Each sender process consumes campaign events through a queue of its own on its connection:
campaign.paused and .cancelled hold a campaign, .resumed releases it, and the periodic
campaign.held snapshot (from the scheduler) replaces the paused ones, so a sender started
after a pause learns of it within a snapshot's period.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from shared import metrics
from shared.messaging.consumer import Session
from shared.messaging.envelopes import CampaignEvent, DecodeError, GatewayDelivery
from shared.messaging.topology import GATEWAY_DELIVERY_KEY, declare_sender_control

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeldState:
    paused: frozenset[int] = frozenset()
    # Kept apart from the snapshot: a cancelled campaign never comes back, so forgetting it
    # would only let its items still in retry tiers be sent.
    cancelled: frozenset[int] = frozenset()

    @property
    def held(self) -> frozenset[int]:
        return self.paused | self.cancelled


def next_state(state: HeldState, routing_key: str, body: bytes) -> HeldState:
    """The state after one control event; DecodeError for a body that makes no sense."""
    if routing_key == "campaign.held":
        return HeldState(snapshot_ids(body), state.cancelled)
    campaign_id = CampaignEvent.decode(body).campaign_id
    if routing_key == "campaign.paused":
        return HeldState(state.paused | {campaign_id}, state.cancelled)
    if routing_key == "campaign.resumed":
        return HeldState(state.paused - {campaign_id}, state.cancelled)
    if routing_key == "campaign.cancelled":
        return HeldState(state.paused, state.cancelled | {campaign_id})
    return state


def snapshot_ids(body: bytes) -> frozenset[int]:
    """The ids of a campaign.held snapshot: {"campaign_ids": [1, 2]}."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    ids = data.get("campaign_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise DecodeError("field 'campaign_ids' missing or not a list of integers")
    return frozenset(ids)


class HeldCampaigns:
    """The held campaign ids; read from any thread, changed on the connection's thread."""

    def __init__(self) -> None:
        self._state = HeldState()
        # One attribute read per lookup: a frozenset swapped whole is safe without a lock.
        self._held: frozenset[int] = frozenset()
        self._lock = threading.Lock()

    def __contains__(self, campaign_id: object) -> bool:
        return campaign_id in self._held

    def apply(self, routing_key: str, body: bytes) -> None:
        """Take one control event; a malformed one is logged and ignored."""
        try:
            with self._lock:
                before = self._held
                self._state = next_state(self._state, routing_key, body)
                self._held = self._state.held
        except DecodeError as exc:
            log.error("ignoring malformed %s event: %s", routing_key, exc)
            return
        metrics.SENDER_HELD_CAMPAIGNS.set(len(self._held))
        if self._held != before:
            log.info("%s: holding campaigns %s", routing_key, sorted(self._held) or "none")


def instance_name() -> str:
    """Names this process's control queue: host, pid, and a suffix fresh for each connection."""
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"


GatewayListener = Callable[[GatewayDelivery], None]


class ControlQueue:
    """Declares the process's control queue on each new session and feeds HeldCampaigns,
    and the gateways' delivery verdicts to whoever routes between them."""

    def __init__(
        self, held: HeldCampaigns, on_gateway_delivery: GatewayListener | None = None
    ) -> None:
        self.held = held
        self._on_gateway_delivery = on_gateway_delivery
        self._session: Session | None = None
        self.consumer_tag: str | None = None

    def ensure_attached(self, session: Session) -> None:
        """Declare and consume the control queue once per session (connection thread only)."""
        if session is self._session:
            return
        name = declare_sender_control(session.channel, instance_name())
        # Auto-ack: an event lost with a connection is made good by the next snapshot.
        self.consumer_tag = session.channel.basic_consume(name, self._on_event, auto_ack=True)
        self._session = session
        log.info("listening for campaign control events on %s", name)

    @property
    def is_attached(self) -> bool:
        return self._session is not None and self._session.is_alive

    def _on_event(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        if method.routing_key == GATEWAY_DELIVERY_KEY:
            self._tell_gateway_delivery(body)
            return
        # pika's stubs make Basic.Deliver.routing_key Optional; a delivery always has one.
        self.held.apply(method.routing_key, body)  # type: ignore[arg-type]

    def _tell_gateway_delivery(self, body: bytes) -> None:
        try:
            verdicts = GatewayDelivery.decode(body)
        except DecodeError as exc:
            log.error("ignoring malformed %s event: %s", GATEWAY_DELIVERY_KEY, exc)
            return
        if self._on_gateway_delivery is not None:
            self._on_gateway_delivery(verdicts)
