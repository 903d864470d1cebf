import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from services.sender.control import ControlQueue, HeldCampaigns, HeldState, next_state
from shared.messaging.envelopes import CampaignEvent, DecodeError, GatewayDelivery


def event(campaign_id):
    return CampaignEvent(campaign_id).encode()


def snapshot(*ids):
    return json.dumps({"campaign_ids": list(ids)}).encode()


def test_pause_holds_and_resume_releases():
    paused = next_state(HeldState(), "campaign.paused", event(7))
    resumed = next_state(paused, "campaign.resumed", event(7))

    assert paused.held == {7}
    assert resumed.held == frozenset()


def test_snapshot_replaces_the_paused_campaigns():
    state = next_state(HeldState(), "campaign.paused", event(1))

    state = next_state(state, "campaign.held", snapshot(2, 3))

    assert state.held == {2, 3}


def test_cancelled_campaign_stays_held_through_snapshots_and_resumes():
    state = next_state(HeldState(), "campaign.cancelled", event(5))

    state = next_state(state, "campaign.held", snapshot())
    state = next_state(state, "campaign.resumed", event(5))

    assert state.held == {5}


@pytest.mark.parametrize(
    ("routing_key", "body"),
    [
        ("campaign.held", b"not json"),
        ("campaign.held", b'{"campaign_ids": ["1"]}'),
        ("campaign.held", b"[1, 2]"),
        ("campaign.paused", b'{"campaign": 1}'),
    ],
)
def test_malformed_events_are_refused(routing_key, body):
    with pytest.raises(DecodeError):
        next_state(HeldState(), routing_key, body)


def test_a_malformed_event_changes_nothing():
    held = HeldCampaigns()
    held.apply("campaign.paused", event(4))

    held.apply("campaign.held", b"garbage")

    assert 4 in held


def receive(queue: ControlQueue, routing_key: str, body: bytes) -> None:
    """One control event as pika hands it over: only the routing key and body matter."""
    deliver = cast(Any, SimpleNamespace(routing_key=routing_key))
    queue._on_event(cast(Any, None), deliver, cast(Any, None), body)


def test_gateway_verdicts_reach_the_router_and_never_hold_a_campaign():
    heard: list[GatewayDelivery] = []
    held = HeldCampaigns()
    queue = ControlQueue(held, heard.append)
    verdicts = GatewayDelivery({"alpha": 0.31, "beta": 0.97}, frozenset({"alpha"}))

    receive(queue, "gateway.delivery", verdicts.encode())
    receive(queue, "gateway.delivery", b'{"gateways": {"x": 1}}')

    assert heard == [verdicts]
    assert 1 not in held and held._state == HeldState()
