"""known_channel: a validator that accepts the channels registered when a request arrives.

Channels from HERALD_CHANNEL_MODULES register at start-up, after the schemas were defined, so
a fixed OneOf list would refuse them.
"""

from __future__ import annotations

from marshmallow import ValidationError

from shared.domain import channels


def known_channel(value: str) -> None:
    """Refuse a channel no module registered, naming the known ones."""
    if value not in channels.names():
        raise ValidationError(f"Must be one of: {', '.join(channels.names())}.")
