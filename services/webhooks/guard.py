"""The connect-time check: a resolver that refuses names resolving to refused addresses.

The API checked the URL when it was stored; a DNS change since then must not point a webhook
inside the network, so every connection is checked again on the addresses it would use.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from shared.domain.webhooks import address_refusal, literal_address


class AddressRefused(OSError):
    """The host resolves to an address webhooks may not reach."""


def refusal_of_host(host: str, allow_private: bool) -> str | None:
    """Why a host written as an IP literal is refused (aiohttp does not resolve literals)."""
    literal = literal_address(host)
    if literal is None or allow_private:
        return None
    return address_refusal(literal)


class GuardedResolver(AbstractResolver):
    """Wraps the default resolver; refuses the whole name when any address is refused."""

    def __init__(self, allow_private: bool, resolver: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.resolver.resolve(host, port, family)
        if not self.allow_private:
            for result in results:
                reason = address_refusal(result["host"])
                if reason is not None:
                    raise AddressRefused(f"{host} refused at connect time: {reason}")
        return results

    async def close(self) -> None:
        await self.resolver.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolver, name)
