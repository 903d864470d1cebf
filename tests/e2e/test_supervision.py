"""`make run` keeps the stack running: a killed service comes back and the campaign completes.

The stack runs as `python -m deploy.stack` in a process group of its own, driven through the
REST API and the gateway only; services are killed by the PIDs the stack printed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sandbox.gateway import GatewayServer
from shared.db.migrate import rebuild
from tests.conftest import WRITE_TOKEN, reset_vhost
from tests.e2e.conftest import E2E_DATABASE_URL, E2E_VHOST
from tests.support.api_client import ApiClient
from tests.support.stack_process import StackProcess, is_alive
from tests.support.waiting import wait_until

DATABASE_URL = f"{E2E_DATABASE_URL}_supervised"
VHOST = f"{E2E_VHOST}_supervised"
GATEWAY_TOKEN = "supervised-gateway-token"
RECIPIENTS = 6000
RATE = 500  # per second: about 12 s of sending, long enough for three kills in turn
PREFETCH, BATCH = 10, 100
BACK_WITHIN_S = 5.0


def fresh_stack_env(gateway: GatewayServer) -> dict[str, str]:
    """An empty database and vhost, and the environment of a stack that uses them."""
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    return {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
        "HERALD_GATEWAY_URL": gateway.url,
        "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000,4000",
    }


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer(token=GATEWAY_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path: Path, gateway: GatewayServer) -> Iterator[StackProcess]:
    env = {
        **fresh_stack_env(gateway),
        "HERALD_SENDER_PREFETCH": str(PREFETCH),
        "HERALD_BATCH_SIZE": str(BATCH),
    }
    process = StackProcess(env, tmp_path / "logs")
    try:
        yield process.start()
    finally:
        if process.process and process.process.poll() is None:
            try:
                process.interrupt()
            except TimeoutError:
                pass
        print(process.output()[-4000:])


def launch(api: ApiClient, recipients: int, rate: int | None) -> int:
    clients = [{"phone": f"+7916{4000000 + i:07d}", "tags": ["s"]} for i in range(recipients)]
    assert api.import_clients(clients)["rejected"] == 0
    now = dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {
        "name": "supervised",
        "channel": "http",
        "text": "Hello",
        "filter": {"tags": ["s"], "operator_codes": []},
        "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
    }
    if rate:
        body["rate_limit"] = rate
    return api.create_campaign(**body)["id"]


def kill_and_see_it_back(stack: StackProcess, name: str) -> tuple[int, int]:
    old = stack.pids()[name]
    os.kill(old, signal.SIGKILL)
    new = wait_until(
        lambda: (pid := stack.pids()[name]) != old and is_alive(pid) and pid, BACK_WITHIN_S + 1
    )
    return old, new


def test_a_killed_sender_scheduler_and_stats_come_back_and_the_campaign_completes(
    stack: StackProcess, gateway: GatewayServer
) -> None:
    api = ApiClient(stack.api_url, WRITE_TOKEN)
    campaign_id = launch(api, RECIPIENTS, RATE)
    before = dict(stack.pids())

    def has_delivered(count: int) -> bool:
        return gateway.stats()["deliveries"] >= count

    restarted = {}
    for name, after in (("sender-1", 500), ("scheduler", 2000), ("stats", 3500)):
        wait_until(partial(has_delivered, after), timeout=60)
        restarted[name] = kill_and_see_it_back(stack, name)
    final = wait_until(partial(api.completed_stats, campaign_id), timeout=120)

    counts = gateway.stats()
    print(f"kill in turn: {counts['duplicates']} duplicates, restarts {restarted}")
    assert final["sent"] == RECIPIENTS
    assert counts["distinct_ids"] == RECIPIENTS
    # The documented bound: the killed sender's unacked batches, prefetch x batch size.
    assert counts["duplicates"] <= PREFETCH * BATCH
    for name, (old, new) in restarted.items():
        assert old == before[name] and is_alive(new), name
        assert f"{name} started again (pid {new})" in stack.output()
    # make run names the broker's management UI beside the API (its plugins were enabled).
    assert "http://127.0.0.1:15672/" in stack.output()
    others = set(before) - set(restarted)
    assert all(stack.pids()[name] == before[name] for name in others)  # nobody else restarted


CYCLES = 20
STOP_WITHIN_S = 10.0
CYCLE_RECIPIENTS = 20_000
CYCLE_RATE = 1000


@pytest.mark.slow
def test_twenty_stops_by_ctrl_c_each_end_every_process_and_lose_nothing(
    tmp_path: Path, gateway: GatewayServer
) -> None:
    """Some stops come while the services start, some while the campaign runs."""
    env = fresh_stack_env(gateway)
    campaign_id = None
    stop_seconds = []
    for cycle in range(CYCLES):
        stack = StackProcess(env, tmp_path / f"logs-{cycle}")
        try:
            if cycle % 4 == 1:
                # Stop while the services are still starting (before the API is ready).
                stack.start_only()
                time.sleep(0.3 + 0.4 * (cycle % 3))
            else:
                stack.start()
                api = ApiClient(stack.api_url, WRITE_TOKEN)
                if campaign_id is None:
                    campaign_id = launch(api, CYCLE_RECIPIENTS, CYCLE_RATE)
                time.sleep(0.5 * (cycle % 5))
            stop_seconds.append(stack.interrupt(STOP_WITHIN_S))
        finally:
            stack.kill()

    assert campaign_id is not None
    stack = StackProcess(env, tmp_path / "logs-last").start()
    try:
        api = ApiClient(stack.api_url, WRITE_TOKEN)
        final = wait_until(
            lambda: (s := api.stats(campaign_id))["status"] == "completed" and s, timeout=120
        )
    finally:
        stack.interrupt(STOP_WITHIN_S)

    counts = gateway.stats()
    print(
        f"{CYCLES} stops: slowest {max(stop_seconds):.1f}s, "
        f"mean {sum(stop_seconds) / len(stop_seconds):.1f}s; "
        f"campaign: {counts['distinct_ids']} delivered, {counts['duplicates']} duplicates"
    )
    assert final["sent"] == CYCLE_RECIPIENTS
    assert counts["distinct_ids"] == CYCLE_RECIPIENTS
