"""load_channel_modules(names): channels defined outside Herald, plugged in by module name.

A channel module defines `RULES` (a `shared.domain.channels.ChannelRules`: its name and the
client field it sends to) and `messenger_factory(settings)` returning a `ChannelFactory`
(its sending and its outcome classification). Naming it in HERALD_CHANNEL_MODULES is all it
takes: the API accepts campaigns for it, the broker gets its queue, the scheduler addresses
and publishes its messages, and a sender serving it (HERALD_SENDER_CHANNELS) delivers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

from shared.config import ConfigError
from shared.domain import channels


def load_channel_modules(names: Iterable[str]) -> dict[str, ModuleType]:
    """Import each module, register its rules in this process; {channel: module}."""
    loaded: dict[str, ModuleType] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"HERALD_CHANNEL_MODULES names a module that cannot be imported: {name!r} ({exc})"
            ) from None
        rules = getattr(module, "RULES", None)
        if not isinstance(rules, channels.ChannelRules) or not callable(
            getattr(module, "messenger_factory", None)
        ):
            raise ConfigError(
                f"HERALD_CHANNEL_MODULES: {name!r} must define RULES (ChannelRules) and "
                "messenger_factory(settings)"
            )
        loaded[channels.register(rules).name] = module
    return loaded
