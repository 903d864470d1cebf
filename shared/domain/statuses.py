"""CampaignStatus, MessageStatus (StrEnum) and the campaign transitions operators may ask for."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    EXPIRED = "expired"


class MessageStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL_CAMPAIGN_STATUSES = frozenset(
    {CampaignStatus.CANCELLED, CampaignStatus.COMPLETED, CampaignStatus.EXPIRED}
)
FINAL_MESSAGE_STATUSES = frozenset(
    {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELLED}
)

# action -> (statuses it may be applied to, resulting status)
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "pause": (frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), CampaignStatus.RUNNING),
    "cancel": (
        frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}),
        CampaignStatus.CANCELLED,
    ),
}


class IllegalTransition(ValueError):
    """The campaign's status does not allow the requested action."""


def transition(current: CampaignStatus, action: str, has_started: bool = True) -> CampaignStatus:
    """Return the status after `action`; idempotent when already there, else IllegalTransition.

    A campaign paused before its start resumes as scheduled: it still waits for starts_at.
    """
    allowed, target = TRANSITIONS[action]
    if action == "resume" and not has_started:
        target = CampaignStatus.SCHEDULED
    if current == target:
        return target
    if current not in allowed:
        raise IllegalTransition(f"cannot {action} a campaign that is {current}")
    return target
