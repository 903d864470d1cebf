"""Loopback gateway with scripted faults (5xx, 429, slow, malformed) for tests.

A thin layer over sandbox.gateway.GatewayServer: a test token, the env a service needs to
reach it, and a helper that sends one valid request the way Herald does.
"""

from __future__ import annotations

from typing import Any

import requests

from sandbox.gateway import Behaviour, GatewayServer, RequestRecord, ScriptHook, Step

__all__ = ["Behaviour", "FakeGateway", "RequestRecord", "ScriptHook", "Step", "GATEWAY_TOKEN"]

GATEWAY_TOKEN = "test-gateway-token"


class FakeGateway(GatewayServer):
    """The sandbox gateway on 127.0.0.1 and a free port, with the test token."""

    def __init__(self, token: str = GATEWAY_TOKEN, **options: Any) -> None:
        super().__init__(host="127.0.0.1", port=0, token=token, **options)

    def env(self) -> dict[str, str]:
        """Return the HERALD_GATEWAY_* variables that point a service at this gateway."""
        return {"HERALD_GATEWAY_URL": self.url, "HERALD_GATEWAY_TOKEN": self.token}

    def send(
        self,
        message_id: int,
        phone: str = "79001234567",
        text: str = "hello",
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> requests.Response:
        """POST one send request as Herald does and return the raw response."""
        return requests.post(
            f"{self.url}/v1/send/{message_id}",
            json={"id": message_id, "phone": phone, "text": text},
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=timeout_s,
        )
