"""DeliveryItem: one message as a messenger sends it, whatever carried it there.

A plain value so that messengers need nothing of the broker; envelopes encodes it.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a batch carries: a campaign's messages, or notifications (the priority lane).
CAMPAIGN = "campaign"
NOTIFICATION = "notification"
KINDS = (CAMPAIGN, NOTIFICATION)


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    message_id: int
    address: str
    text: str
    attempt: int
    deadline: float  # epoch seconds: the campaign's ends_at, a notification's expires_at
    subject: str | None = None
    html: str | None = None  # e-mail: the rendered HTML alternative
    client_id: int | None = None  # e-mail: whom the unsubscribe link names
    operator_code: str | None = None  # SMS: picks the route (shared/domain/routes.py)
    # SMS: the gateway may deliver until then, and not after (epoch seconds; None: deadline).
    valid_until: float | None = None
    # SMS: the gateway an earlier attempt may have reached; retries stay with it.
    gateway: str | None = None
