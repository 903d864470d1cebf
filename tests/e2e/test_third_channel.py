"""A channel added as one module (tests/e2e/pigeon.py) runs a campaign end to end.

The stack is started with HERALD_CHANNEL_MODULES naming the module and nothing else: the API
accepts the channel, the scheduler addresses its messages by the channel's own field, a
sender delivers them and the channel's own verdicts reach the stats.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import Stack
from shared.db.migrate import rebuild
from tests.conftest import WRITE_TOKEN, reset_vhost
from tests.support.api_client import ApiClient
from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

DATABASE_URL = os.environ.get(
    "HERALD_E2E_PIGEON_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_e2e_pigeon"
)
VHOST = os.environ.get("HERALD_E2E_PIGEON_VHOST", "herald_e2e_pigeon")
RECIPIENTS = 40


@pytest.fixture(scope="module")
def pigeon_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiClient, Path]]:
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    loft = Path(tmp_path_factory.mktemp("loft")) / "pigeons.tsv"
    api_port = free_port()
    env = {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
        "HERALD_API_PORT": str(api_port),
        "HERALD_CHANNEL_MODULES": "tests.e2e.pigeon",
        "HERALD_SENDER_CHANNELS": "pigeon",
        "HERALD_PIGEON_LOFT": str(loft),
        "HERALD_TICK_INTERVAL_S": "0.1",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=1, log_dir=log_dir, metrics_base=free_port_block(8))
    stack.start()
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        stack.wait_ready(api_url)
        yield ApiClient(api_url, WRITE_TOKEN), loft
    finally:
        stack.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


def campaign(channel: str) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {
        "name": f"by {channel}",
        "channel": channel,
        "text": "Coo, {{ name }}",
        "filter": {"tags": ["lofts"], "operator_codes": []},
        "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
    }


def test_a_channel_module_runs_a_campaign_with_its_own_address_and_verdicts(pigeon_stack):
    api, loft = pigeon_stack
    phones = [f"+7916{5550000 + i:07d}" for i in range(RECIPIENTS)]
    clients = [
        {"phone": p, "tags": ["lofts"], "attributes": {"name": f"P{i}"}}
        for i, p in enumerate(phones)
    ]
    api.import_clients(clients)

    created = api.create_campaign(**campaign("pigeon"))
    stats = wait_until(
        lambda: (s := api.stats(created["id"]))["status"] in ("completed", "expired") and s,
        timeout=60,
    )

    landed = [line.split("\t") for line in loft.read_text().splitlines()]
    roosts = [p for p in phones if not p.endswith("0")]
    assert sorted(address for _, address, _ in landed) == sorted(roosts)
    assert len({message_id for message_id, _, _ in landed}) == len(roosts)
    assert {text for _, _, text in landed} == {f"Coo, P{phones.index(p)}" for p in roosts}
    assert (stats["status"], stats["sent"], stats["failed"]) == (
        "completed",
        len(roosts),
        RECIPIENTS - len(roosts),
    )


def test_a_channel_no_module_defines_is_refused_naming_the_known_ones(pigeon_stack):
    api, _ = pigeon_stack

    refusal = api.request("POST", "/campaigns", expect=422, json=campaign("owl"))

    assert refusal["errors"]["json"]["channel"] == ["Must be one of: http, email, pigeon."]
