"""The whole stack as processes on its own database and vhost, with a gateway the test serves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.migrate import rebuild
from tests.conftest import WRITE_TOKEN, reset_vhost
from tests.support.api_client import ApiClient
from tests.support.processes import free_port

E2E_DATABASE_URL = os.environ.get(
    "HERALD_E2E_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_e2e"
)
E2E_VHOST = os.environ.get("HERALD_E2E_VHOST", "herald_e2e")
GATEWAY_TOKEN = "e2e-gateway-token"


@dataclass
class Running:
    stack: Stack
    gateway: GatewayServer
    api: ApiClient
    api_url: str


def stack_env(api_port: int, **more: str) -> dict[str, str]:
    """What an e2e stack runs with: its own database and vhost, quick ticks and retries."""
    return {
        "HERALD_DATABASE_URL": E2E_DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{E2E_VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
        "HERALD_API_PORT": str(api_port),
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000,4000",
        **more,
    }


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Start api, scheduler, two senders and stats against a fresh database and vhost."""
    rebuild(E2E_DATABASE_URL)
    reset_vhost(E2E_VHOST)
    gateway = GatewayServer(token=GATEWAY_TOKEN).start()
    api_port = free_port()
    env = stack_env(api_port, HERALD_GATEWAY_URL=gateway.url, HERALD_GATEWAY_TOKEN=GATEWAY_TOKEN)
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=2, log_dir=log_dir, metrics_base=19100)
    api_url = f"http://127.0.0.1:{api_port}"
    stack.start()
    try:
        stack.wait_ready(api_url)
        yield Running(stack, gateway, ApiClient(api_url, WRITE_TOKEN), api_url)
    finally:
        stack.stop()
        gateway.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")
