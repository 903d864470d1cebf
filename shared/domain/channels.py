"""What every part of Herald must know of a channel, as data: its name and where it sends.

The scheduler picks each message's address with `address_field`, materialisation leaves out
clients without one, and the API checks a campaign against `needs_subject` and `allows_html`.
A channel beyond the built-in two registers its rules from its own module at start-up
(`shared/channels/plugins.py`), and from then on every part of Herald knows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The client columns a channel may send to.
ADDRESS_FIELDS = ("phone", "email")


@dataclass(frozen=True, slots=True)
class ChannelRules:
    name: str
    address_field: str
    needs_subject: bool = False
    allows_html: bool = False

    def __post_init__(self) -> None:
        if self.address_field not in ADDRESS_FIELDS:
            raise ValueError(f"address_field must be one of {ADDRESS_FIELDS}")


HTTP = ChannelRules("http", "phone")
EMAIL = ChannelRules("email", "email", needs_subject=True, allows_html=True)
BUILT_IN: Mapping[str, ChannelRules] = {rules.name: rules for rules in (HTTP, EMAIL)}

_registered: dict[str, ChannelRules] = dict(BUILT_IN)


class UnknownChannel(LookupError):
    """No channel of that name is registered."""


def register(rules: ChannelRules) -> ChannelRules:
    """Make a channel known to every part of Herald in this process; returns it."""
    _registered[rules.name] = rules
    return rules


def rules_for(name: str) -> ChannelRules:
    try:
        return _registered[name]
    except KeyError:
        raise UnknownChannel(f"no channel {name!r}; known: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    return tuple(_registered)
