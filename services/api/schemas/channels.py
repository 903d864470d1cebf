"""KnownChannel: a OneOf over the channels registered when a request (or the spec) asks.

Channels from HERALD_CHANNEL_MODULES register at start-up, after the schemas were defined, so
a OneOf fixed at import would refuse them and leave them out of /openapi.json's enum.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import validate

from shared.domain import channels


class KnownChannel(validate.OneOf):
    def __init__(self) -> None:
        super().__init__(())

    @property  # read at each call, never fixed at construction
    def choices(self) -> tuple[str, ...]:
        return channels.names()

    @choices.setter
    def choices(self, _value: Iterable[Any]) -> None:
        pass

    def _format_error(self, value: Any) -> str:
        return self.error.format(input=value, choices=", ".join(self.choices), labels="")
