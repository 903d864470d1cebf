"""build_registry(settings) -> {channel: factory}: the one place channels are plugged in."""

from __future__ import annotations

from urllib.parse import urlsplit

from services.sender.messengers.base import MessengerFactory
from services.sender.messengers.http_gateway import CHANNEL as HTTP
from services.sender.messengers.http_gateway import HttpGatewayMessenger, make_pool
from services.sender.messengers.smtp import CHANNEL as EMAIL
from services.sender.messengers.smtp import smtp_factory
from shared.config import Settings


def build_registry(settings: Settings) -> dict[str, MessengerFactory]:
    """Map each channel to a factory the dispatcher calls once per worker thread."""
    return {HTTP: http_gateway_factory(settings), EMAIL: smtp_factory(settings)}


def http_gateway_factory(settings: Settings) -> MessengerFactory:
    """Every messenger the factory makes shares one pool; nothing connects until a send."""
    pool = make_pool(settings)
    base_path = urlsplit(settings.gateway_url).path
    return lambda: HttpGatewayMessenger(pool, base_path, settings.gateway_token)
