"""Three gateways, two routes by operator code: a gateway dies midway and its route moves on.

916 numbers go to alpha (then gamma), 926 numbers to beta (then gamma). alpha is stopped while
the campaign runs: its route fails over to gamma within seconds, every recipient is delivered
exactly once through a gateway of its own route, and the campaign's per-gateway counts add up
to what each gateway took.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.migrate import rebuild
from tests.conftest import WRITE_TOKEN, reset_vhost
from tests.e2e.conftest import E2E_DATABASE_URL, E2E_VHOST, stack_env
from tests.support.api_client import ApiClient
from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until

TOKEN = "e2e-routes-token"
NAMES = ("alpha", "beta", "gamma")
ROUTES = {"operators": {"916": ["alpha", "gamma"], "926": ["beta", "gamma"]}, "default": ["gamma"]}
RECIPIENTS = 1200
RATE_PER_S = 150
FAILOVER_S = 5.0


@dataclass
class RoutedStack:
    api: ApiClient
    gateways: dict[str, GatewayServer]


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedStack]:
    rebuild(E2E_DATABASE_URL)
    reset_vhost(E2E_VHOST)
    gateways = {name: GatewayServer(token=TOKEN).start() for name in NAMES}
    api_port = free_port()
    env = stack_env(
        api_port,
        HERALD_GATEWAYS=json.dumps(
            {name: {"url": g.url, "token": TOKEN} for name, g in gateways.items()}
        ),
        HERALD_ROUTES=json.dumps(ROUTES),
        HERALD_BREAKER_MIN_CALLS="20",
        HERALD_BREAKER_OPEN_S="2",
        # A message cut off mid-request at the dying gateway waits this long for it, then moves.
        HERALD_GATEWAY_UNSURE_WAIT_S="3",
    )
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=2, log_dir=log_dir, metrics_base=free_port_block(20))
    api_url = f"http://127.0.0.1:{api_port}"
    stack.start()
    try:
        stack.wait_ready(api_url)
        yield RoutedStack(ApiClient(api_url, WRITE_TOKEN), gateways)
    finally:
        stack.stop()
        for gateway in gateways.values():
            gateway.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


def clients() -> list[dict]:
    return [
        {"phone": f"+7{'916' if i % 2 == 0 else '926'}{2000000 + i:07d}", "timezone": "UTC"}
        for i in range(RECIPIENTS)
    ]


def test_a_dead_gateway_loses_its_route_to_the_next_and_every_recipient_gets_one_sms(routed):
    alpha, beta, gamma = (routed.gateways[name] for name in NAMES)
    assert routed.api.import_clients(clients())["created"] == RECIPIENTS
    now = dt.datetime.now(dt.UTC)
    ends_at = now + dt.timedelta(hours=1)
    campaign = routed.api.create_campaign(
        name="routed across three gateways",
        channel="http",
        text="Your code is ready",
        filter={"tags": [], "operator_codes": []},
        rate_limit=RATE_PER_S,
        starts_at=now.isoformat(),
        ends_at=ends_at.isoformat(),
    )

    # Midway through alpha's share, alpha goes away.
    wait_until(lambda: alpha.stats()["deliveries"] >= RECIPIENTS // 8, timeout=60)
    stopped_at = time.monotonic()
    alpha.stop()
    final = wait_until(lambda: routed.api.completed_stats(campaign["id"]), timeout=120)

    assert final["total"] == final["sent"] == RECIPIENTS
    phones = {c["id"]: c["phone"] for c in routed.api.pages("/clients")}
    operator = {
        m["id"]: phones[m["client_id"]][2:5]
        for m in routed.api.pages(f"/campaigns/{campaign['id']}/messages")
    }
    taken = {name: routed.gateways[name].delivered_ids() for name in NAMES}
    # Exactly once: no gateway took a message twice, no two gateways took the same one.
    assert sum(routed.gateways[n].stats()["deliveries"] for n in NAMES) == RECIPIENTS
    assert set().union(*taken.values()) == set(operator)
    # Each through its own route: 926 never left beta, 916 went to alpha and then to gamma.
    assert {operator[i] for i in taken["beta"]} == {"926"}
    assert len(taken["beta"]) == RECIPIENTS // 2
    assert {operator[i] for i in taken["alpha"] | taken["gamma"]} == {"916"}
    assert taken["alpha"] and taken["gamma"]
    # The failover: gamma took alpha's route within seconds of alpha going away.
    first_on_gamma = gamma.stats()["first_success_monotonic"]
    assert first_on_gamma - stopped_at <= FAILOVER_S
    # What the campaign says each gateway took is what each gateway saw.
    by_gateway = routed.api.stats(campaign["id"])["by_gateway"]
    assert {name: row["sent"] for name, row in by_gateway.items()} == {
        name: len(ids) for name, ids in taken.items()
    }
    assert sum(row["segments"] for row in by_gateway.values()) == RECIPIENTS
    # Every request told the gateway when the message stops being worth delivering.
    body = beta.last_body(next(iter(taken["beta"])))
    assert body is not None and body["valid_until"] == ends_at.strftime("%Y-%m-%dT%H:%M:%SZ")
