"""build_registry(settings) -> {channel: factory}: the one place channels are plugged in."""

from __future__ import annotations

from functools import partial

from shared.channels.base import AsyncMessengerFactory, ChannelFactory
from shared.channels.http_gateway import CHANNEL as HTTP
from shared.channels.http_gateway import open_http_gateway
from shared.channels.plugins import load_channel_modules
from shared.channels.smtp import CHANNEL as EMAIL
from shared.channels.smtp import smtp_factory
from shared.config import Settings


def build_registry(settings: Settings) -> dict[str, ChannelFactory]:
    """Map each channel to its factory: blocking ones per delivery thread, async ones once."""
    registry: dict[str, ChannelFactory] = {
        HTTP: http_gateway_factory(settings),
        EMAIL: smtp_factory(settings),
    }
    for name, module in load_channel_modules(settings.channel_modules).items():
        registry[name] = module.messenger_factory(settings)
    return registry


def http_gateway_factory(settings: Settings) -> AsyncMessengerFactory:
    """One messenger, made on the dispatcher's loop; nothing connects until a send."""
    return partial(open_http_gateway, settings)
