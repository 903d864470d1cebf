"""What the demo and the bench share: a sandbox gateway process, generated clients, progress."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from sqlalchemy import text

from shared.db.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent
TAGS = ("news", "promo", "vip", "sport")


def start_gateway(
    port: int,
    token: str,
    delay_ms: int = 0,
    record: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Run the sandbox gateway as its own process (so it does not share a GIL) and wait for it.

    `env` adds to the environment, e.g. SANDBOX_RECEIPTS_URL and SANDBOX_RECEIPTS_TOKEN.
    """
    args = [sys.executable, "-m", "sandbox.gateway", "--port", str(port), "--token", token]
    args += ["--delay-ms", str(delay_ms)]
    if not record:
        args.append("--no-record-bodies")
    process = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"sandbox gateway did not listen on {port}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def clients_csv(count: int) -> Iterator[bytes]:
    """A CSV of `count` valid Russian mobile numbers over four tags and two operators."""
    yield b"phone,tags,timezone,name\n"
    chunk: list[str] = []
    for i in range(count):
        code = "916" if i % 2 == 0 else "926"
        chunk.append(f"+7{code}{i:07d},{TAGS[i % len(TAGS)]},Europe/Moscow,Client {i}\n")
        if len(chunk) == 5000:
            yield "".join(chunk).encode()
            chunk = []
    if chunk:
        yield "".join(chunk).encode()


def import_clients(api_url: str, token: str, count: int) -> dict:
    response = requests.post(
        f"{api_url}/api/v1/clients/import",
        data=clients_csv(count),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=3600,
    )
    response.raise_for_status()
    return response.json()


def progress_bar(done: int, total: int, rate: float, width: int = 40) -> str:
    share = done / total if total else 1.0
    filled = int(width * share)
    bar = "#" * filled + "." * (width - filled)
    return f"[{bar}] {done:>9,}/{total:,} {share:6.1%} {rate:8,.0f}/s"


def watch(api_url: str, token: str, campaign_id: int, stall_s: float = 120) -> dict:
    """Redraw a progress bar from the stats endpoint until the campaign is over (or stalls)."""
    headers = {"Authorization": f"Bearer {token}"}
    last_done, last_change = -1, time.monotonic()
    while True:
        stats = requests.get(
            f"{api_url}/api/v1/campaigns/{campaign_id}/stats", headers=headers, timeout=10
        ).json()
        done = stats["total"] - stats["pending"] - stats["queued"]
        line = progress_bar(done, stats["total"], stats.get("rate_per_s") or 0.0)
        print(f"\r{line} {stats['status']:<10}", end="", flush=True)
        if stats["status"] in ("completed", "expired", "cancelled"):
            print()
            return stats
        if done != last_done:
            last_done, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            print(f"\nno progress for {stall_s:.0f} s: giving up")
            return stats
        time.sleep(0.5)


def delivery_figures(database_url: str, campaign_id: int) -> tuple[float, float, float]:
    """Deliveries per second from first to last, and latency p50/p99 in ms (queued to sent)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at)),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY sent_at - queued_at),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY sent_at - queued_at)
                  FROM message WHERE campaign_id = :c AND status = 'sent'
                """
            ),
            {"c": campaign_id},
        ).one()
    engine.dispose()
    count, span, p50, p99 = row
    rate = (count - 1) / float(span) if span else 0.0
    return rate, p50.total_seconds() * 1000, p99.total_seconds() * 1000
