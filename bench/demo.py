"""`make demo`: the stack, a sandbox gateway, 10,000 generated clients, one campaign to the end."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import requests

from bench.harness import import_clients, start_gateway, stop, watch
from deploy.stack import ROOT, Stack, ensure_env_file, first_write_token, with_receipts_token
from shared.config import Settings
from shared.db.migrate import upgrade

GATEWAY_PORT = 8900


def main() -> None:
    env_file = ROOT / ".env"
    values = ensure_env_file(env_file)
    settings = Settings.from_env(env_file=env_file)
    token = first_write_token(settings)
    upgrade(settings.database_url)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    # The gateway posts a receipt for each message a second after taking it, 5% undelivered.
    tokens, receipts_token = with_receipts_token(
        os.environ.get("HERALD_API_TOKENS", values.get("HERALD_API_TOKENS", ""))
    )
    receipts = {
        "SANDBOX_RECEIPTS_URL": f"{api_url}/api/v1/receipts/http",
        "SANDBOX_RECEIPTS_TOKEN": receipts_token,
    }
    gateway = start_gateway(GATEWAY_PORT, settings.gateway_token, delay_ms=20, env=receipts)
    stack = Stack(
        env={
            "HERALD_GATEWAY_URL": f"http://127.0.0.1:{GATEWAY_PORT}",
            "HERALD_API_TOKENS": tokens,
        },
        senders=2,
        log_dir=ROOT / ".run" / "demo",
    )
    stack.start()
    try:
        stack.wait_ready(api_url)
        print(f"Herald is up: API {api_url}/api/v1, docs {api_url}/docs")
        report = import_clients(api_url, token, 10_000)
        print(
            f"imported clients: {report['created']:,} created, {report['updated']:,} updated,"
            f" {report['rejected']:,} rejected"
        )
        now = dt.datetime.now(dt.UTC)
        campaign = requests.post(
            f"{api_url}/api/v1/campaigns",
            json={
                "name": f"demo {now:%Y-%m-%d %H:%M:%S}",
                "channel": "http",
                "text": "Hello {{ name }}, Herald says hi.",
                "filter": {"tags": [], "operator_codes": []},
                "starts_at": now.isoformat(),
                "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        campaign.raise_for_status()
        campaign_id = campaign.json()["id"]
        print(f"campaign {campaign_id} launched; delivering through the sandbox gateway")
        watch(api_url, token, campaign_id)
        final = watch_receipts(api_url, token, campaign_id)
        print("final stats:")
        print(json.dumps(final, indent=2))
    finally:
        stack.stop()
        stop(gateway)


def watch_receipts(api_url: str, token: str, campaign_id: int, quiet_s: float = 10) -> dict:
    """Show receipts arriving until none is awaited, or none came for `quiet_s` seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{api_url}/api/v1/campaigns/{campaign_id}/stats"
    last, last_change = -1, time.monotonic()
    while True:
        stats = requests.get(url, headers=headers, timeout=10).json()
        receipts = stats["delivered"] + stats["undelivered"]
        rate = stats["delivery_rate"]
        print(
            f"\rreceipts: {stats['delivered']:,} delivered, {stats['undelivered']:,} undelivered,"
            f" {stats['awaiting_receipt']:,} awaited"
            + (f"; delivery rate {rate:.1%}" if rate is not None else ""),
            end="",
            flush=True,
        )
        if stats["awaiting_receipt"] == 0 or time.monotonic() - last_change > quiet_s:
            print()
            return stats
        if receipts != last:
            last, last_change = receipts, time.monotonic()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
