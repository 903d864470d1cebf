"""Every status a message, a notification or a campaign can have, and every move, as data.

This is the one place the rules live: `shared/db/queries/statuses.py` has one named statement
per move below (a test holds the two to each other), the database refuses a status not listed
here (a CHECK constraint) and keeps campaign_progress in step with message statuses itself (a
trigger), so no statement moves a counter by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    # What a receipt said after the gateway took it (`sent`): on the handset, or not.
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


class NotificationStatus(StrEnum):
    """A notification waits `queued` (released to a sender or not) until its outcome."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


# What a sender reports of an item: a final status, or "held" (not sent, its campaign paused).
OUTCOME_STATUSES = ("sent", "failed", "expired", "held")
# A message still on its way: a campaign with none of these left is over.
OPEN_MESSAGE_STATUSES = frozenset({MessageStatus.PENDING, MessageStatus.QUEUED})
FINAL_MESSAGE_STATUSES = frozenset(MessageStatus) - OPEN_MESSAGE_STATUSES
# Taken by the gateway or the relay: still `sent`, or since told apart by a receipt.
ACCEPTED_STATUSES = ("sent", "delivered", "undelivered")
# Campaigns the scheduler still works on; the others send nothing more.
ACTIVE_CAMPAIGN_STATUSES = frozenset({CampaignStatus.RUNNING, CampaignStatus.PAUSED})
FINAL_CAMPAIGN_STATUSES = frozenset(
    {CampaignStatus.CANCELLED, CampaignStatus.COMPLETED, CampaignStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class Move:
    """A named change of status: from any of `sources` to one of `targets`, by `actor`.

    `sources` empty means the row is created with one of `targets`.
    """

    name: str
    sources: frozenset[str]
    targets: frozenset[str]
    actor: str

    def allows(self, source: str | None, target: str) -> bool:
        return target in self.targets and (source in self.sources or not self.sources)


def _move(name: str, sources: set[str], targets: set[str], actor: str) -> Move:
    return Move(name, frozenset(sources), frozenset(targets), actor)


M = MessageStatus
MESSAGE_MOVES: Mapping[str, Move] = {
    move.name: move
    for move in (
        # Recipients are fixed at the start; a zone whose window opens after the end expires.
        _move("materialise", set(), {M.PENDING, M.EXPIRED}, "scheduler"),
        # A due message whose client was deleted since can never be sent.
        _move("claim_due", {M.PENDING}, {M.QUEUED, M.CANCELLED}, "scheduler"),
        # An outcome may reach a message whose claim has not committed yet (still pending);
        # "held" (paused before sending) puts it back to pending.
        _move(
            "apply_outcomes",
            {M.PENDING, M.QUEUED},
            {M.SENT, M.FAILED, M.EXPIRED, M.PENDING},
            "stats",
        ),
        _move("close_pending", {M.PENDING}, {M.EXPIRED, M.CANCELLED}, "scheduler"),
        _move("expire_late", {M.PENDING}, {M.EXPIRED}, "scheduler"),
        # The client was deleted or opted out of the channel.
        _move("cancel_client_pending", {M.PENDING}, {M.CANCELLED}, "api"),
        _move("requeue_failed", {M.FAILED}, {M.PENDING}, "api"),
        # A receipt for a message the gateway took; a receipt that came before the sent
        # outcome waits and is applied with it.
        _move("apply_receipts", {M.SENT}, {M.DELIVERED, M.UNDELIVERED}, "stats"),
        _move("apply_early_receipts", {M.SENT}, {M.DELIVERED, M.UNDELIVERED}, "stats"),
    )
}

N = NotificationStatus
NOTIFICATION_MOVES: Mapping[str, Move] = {
    move.name: move
    for move in (
        _move("accept", set(), {N.QUEUED}, "api"),
        # Handed to the priority lane: still queued, with released_at set.
        _move("release_notifications", {N.QUEUED}, {N.QUEUED}, "scheduler"),
        # "held" never reaches a notification: only campaigns are paused.
        _move("apply_notification_outcomes", {N.QUEUED}, {N.SENT, N.FAILED, N.EXPIRED}, "stats"),
        # Not released before its expires_at: it never will be.
        _move("expire_notifications", {N.QUEUED}, {N.EXPIRED}, "scheduler"),
        # Only while not yet released: once with a sender it is on its way.
        _move("cancel_notification", {N.QUEUED}, {N.CANCELLED}, "api"),
        # Receipts name ids, unique across messages and notifications: one statement each.
        _move("apply_receipts", {N.SENT}, {N.DELIVERED, N.UNDELIVERED}, "stats"),
        _move("apply_early_receipts", {N.SENT}, {N.DELIVERED, N.UNDELIVERED}, "stats"),
    )
}

C = CampaignStatus
CAMPAIGN_MOVES: Mapping[str, Move] = {
    move.name: move
    for move in (
        _move("create", set(), {C.SCHEDULED}, "api"),
        _move("start", {C.SCHEDULED}, {C.RUNNING}, "scheduler"),
        # Nothing pending or queued: completed, or expired when messages ran out of time.
        _move("finish", {C.RUNNING}, {C.COMPLETED, C.EXPIRED}, "scheduler"),
        # A paused campaign whose end has passed can never resume.
        _move("expire_idle", {C.PAUSED}, {C.EXPIRED}, "scheduler"),
        # Failed messages sent again: a completed campaign runs again.
        _move("reopen", {C.COMPLETED}, {C.RUNNING}, "api"),
        _move("pause", {C.SCHEDULED, C.RUNNING}, {C.PAUSED}, "api"),
        # A campaign paused before its start resumes as scheduled: it still waits for starts_at.
        _move("resume", {C.PAUSED}, {C.RUNNING, C.SCHEDULED}, "api"),
        _move("cancel", {C.SCHEDULED, C.RUNNING, C.PAUSED}, {C.CANCELLED}, "api"),
    )
}
# What an operator may ask for through the API.
ACTIONS = ("pause", "resume", "cancel")


class IllegalTransition(ValueError):
    """The campaign's status does not allow the requested action."""


def transition(current: CampaignStatus, action: str, has_started: bool = True) -> CampaignStatus:
    """Return the status after `action`; idempotent when already there, else IllegalTransition."""
    move = CAMPAIGN_MOVES[action]
    if action == "resume":
        target = CampaignStatus.RUNNING if has_started else CampaignStatus.SCHEDULED
    else:
        (target,) = (CampaignStatus(t) for t in move.targets)
    if current == target:
        return target
    if not move.allows(current, target):
        raise IllegalTransition(f"cannot {action} a campaign that is {current}")
    return target
