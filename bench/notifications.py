"""`make bench-notifications`: notifications through the API, alone and beside a campaign.

One stack (the API server, the scheduler, two senders, stats) against the sandbox gateway
answering at once, four phases in one run:

1. single notifications at 200 requests/s from 16 keep-alive clients for 15 s, while idle:
   the accept latency each client sees, and accept to gateway (`sent_at - created_at`);
2. a campaign to every bench client alone: its deliveries/s from first to last delivery;
3. the same campaign again with the same notification load started once it is sending and
   stopped before it ends: accept to gateway under the campaign, and the campaign's rate
   against the one of phase 2;
4. 50,000 notifications posted as arrays of 1,000 from 4 clients: count / (last sent_at -
   first created_at).

Every phase checks its own outcome (each notification `sent`, each campaign completed with
every recipient sent) and raises BenchFailed otherwise. `make bench` runs this after its
campaign scenarios, on the clients it imported; run alone it builds a database of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger

from bench.harness import delivery_figures, import_clients, progress_bar, start_gateway, stop
from deploy.stack import Stack
from sandbox.broker import reset_vhost
from shared.config import Settings
from shared.db.engine import make_engine
from shared.db.migrate import rebuild

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_bench_notify"
VHOST = "herald_bench_notify"
TOKEN = "bench-notify-token"
GATEWAY_TOKEN = "bench-notify-gateway-token"
API_PORT = 8720
GATEWAY_PORT = 8921
METRICS_BASE = 9500
LOG_DIR = Path(".run/bench-notifications")

RATE = 200.0  # single notifications per second, all clients together
CLIENTS = 16
LOAD_S = 15.0
BATCH_TOTAL = 50_000
BATCH_SIZE = 1_000
BATCH_CLIENTS = 4
# The load stops early rather than outlive the campaign: it must end while the campaign sends.
END_MARGIN = 0.1  # share of the campaign still to send when the load is stopped at the latest
STALL_S = 60.0

ACCEPT_P99_GOAL_MS = 10.0
GATEWAY_P99_GOAL_MS = 1000.0
RATE_RATIO_GOAL = 0.9
BATCH_RATE_GOAL = 3000.0

NOT_SENT = ("failed", "expired", "cancelled")
STATUSES = text(
    "SELECT status, count(*) AS n FROM notification WHERE id = ANY(:ids) GROUP BY status"
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
FIGURES = text(
    """
    SELECT count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY sent_at - created_at) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY sent_at - created_at) AS p99,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY released_at - created_at) AS release_p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY released_at - created_at) AS release_p99,
           min(created_at) AS first_created, max(created_at) AS last_created,
           max(sent_at) AS last_sent
      FROM notification WHERE id = ANY(:ids) AND status = 'sent'
    """
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
CAMPAIGN_SPAN = text(
    "SELECT min(sent_at), max(sent_at) FROM message WHERE campaign_id = :c AND status = 'sent'"
)


class BenchFailed(RuntimeError):
    """A phase did not come out as it must: the figures would mean nothing."""


@dataclass
class Load:
    """What a run of posts gave: the notifications' ids and each request's time (client-side)."""

    ids: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else 0.0

    def check(self, what: str) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:3])
            raise BenchFailed(f"{what}: {len(self.errors)} requests refused, e.g. {shown}")


@dataclass(frozen=True)
class Transit:
    """Accept to gateway of a set of notifications, from the database; and its first part,
    accept to release by the scheduler (the rest is the sender's)."""

    count: int
    p50_ms: float
    p99_ms: float
    release_p50_ms: float
    release_p99_ms: float
    first_created: dt.datetime
    last_created: dt.datetime
    last_sent: dt.datetime

    @property
    def rate(self) -> float:
        span = (self.last_sent - self.first_created).total_seconds()
        return self.count / span if span > 0 else 0.0


@dataclass(frozen=True)
class Figures:
    idle_accept: tuple[float, float]
    idle_rate: float
    idle_transit: Transit
    busy_accept: tuple[float, float]
    busy_transit: Transit
    busy_rate: float
    busy_load_s: float
    campaign_rate: float
    loaded_campaign_rate: float
    batch_transit: Transit
    batch_request_ms: tuple[float, float]


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 (inclusive method, as PostgreSQL's percentile_cont)."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def single(n: int) -> dict[str, Any]:
    return {"channel": "http", "to": {"phone": f"+7916{n % 10_000_000:07d}"}, "text": f"Code {n}"}


def session_for(api_url: str) -> requests.Session:
    """A keep-alive session, its connection opened before any timed request."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    session.get(f"{api_url}/healthz", timeout=10).raise_for_status()
    return session


def paced_singles(api_url: str, seconds: float, halt: threading.Event) -> Load:
    """CLIENTS clients, each posting on its own schedule so that together they post RATE/s.

    A client behind its schedule posts at once (no request is skipped), but none posts after
    `seconds` of wall time: a slow API then shows as an achieved rate below RATE, and the load
    cannot outlive the campaign it runs beside. `halt` ends it early.
    """
    load = Load()
    url = f"{api_url}/api/v1/notifications"
    sessions = [session_for(api_url) for _ in range(CLIENTS)]
    period = CLIENTS / RATE
    began = time.monotonic() + 0.05

    def client(slot: int, session: requests.Session) -> None:
        for k in itertools.count():
            due = began + slot / RATE + k * period
            if due - began >= seconds or halt.wait(max(0.0, due - time.monotonic())):
                return
            if time.monotonic() - began >= seconds:
                return
            t0 = time.perf_counter()
            response = session.post(url, json=single(k * CLIENTS + slot), timeout=30)
            elapsed_ms = (time.perf_counter() - t0) * 1000
            if response.status_code != 202 or response.json().get("status") != "queued":
                load.errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            load.ids.append(response.json()["id"])
            load.latencies_ms.append(elapsed_ms)

    threads = [
        threading.Thread(target=client, args=(i, s), daemon=True) for i, s in enumerate(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.monotonic() - began
    for s in sessions:
        s.close()
    return load


def batches(api_url: str) -> Load:
    """BATCH_TOTAL notifications as arrays of BATCH_SIZE from BATCH_CLIENTS clients at once."""
    load = Load()
    url = f"{api_url}/api/v1/notifications"
    numbers = iter(range(0, BATCH_TOTAL, BATCH_SIZE))
    lock = threading.Lock()
    sessions = [session_for(api_url) for _ in range(BATCH_CLIENTS)]

    def client(session: requests.Session) -> None:
        while True:
            with lock:
                start = next(numbers, None)
            if start is None:
                return
            body = [single(n) for n in range(start, start + BATCH_SIZE)]
            t0 = time.perf_counter()
            response = session.post(url, json=body, timeout=120)
            elapsed_ms = (time.perf_counter() - t0) * 1000
            if response.status_code != 202:
                load.errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            items = response.json()["items"]
            refused = [item for item in items if item.get("status") != "queued"]
            load.errors += [str(item)[:200] for item in refused]
            if len(items) != BATCH_SIZE:
                load.errors.append(f"{len(items)} items answered for {BATCH_SIZE}")
            load.ids += [item["id"] for item in items if item.get("status") == "queued"]
            load.latencies_ms.append(elapsed_ms)

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.monotonic() - began
    for s in sessions:
        s.close()
    return load


def wait_sent(engine: Engine, api_url: str, ids: list[int], label: str) -> Transit:
    """Wait until every notification is sent; raise if one ends otherwise or progress stalls."""
    last, last_change, began = -1, time.monotonic(), time.monotonic()
    while True:
        with engine.connect() as conn:
            counts = {row.status: row.n for row in conn.execute(STATUSES, {"ids": ids})}
        sent = counts.get("sent", 0)
        rate = sent / max(1e-9, time.monotonic() - began)
        print(f"\r  {label:<28} {progress_bar(sent, len(ids), rate)}", end="", flush=True)
        lost = {status: counts[status] for status in NOT_SENT if counts.get(status)}
        if lost:
            print()
            raise BenchFailed(f"{label}: notifications ended {lost} instead of sent")
        if sent == len(ids):
            print()
            break
        if sent != last:
            last, last_change = sent, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            print()
            raise BenchFailed(f"{label}: no notification sent for {STALL_S:.0f} s: {counts}")
        time.sleep(0.25)
    # The API's own reading agrees with the table (first and last of the phase).
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for notification_id in (ids[0], ids[-1]):
        response = requests.get(
            f"{api_url}/api/v1/notifications/{notification_id}", headers=headers, timeout=10
        )
        status = response.json().get("status") if response.ok else response.status_code
        if status != "sent":
            raise BenchFailed(f"{label}: GET /notifications/{notification_id} says {status}")
    with engine.connect() as conn:
        row = conn.execute(FIGURES, {"ids": ids}).one()
    return Transit(
        row.n,
        row.p50.total_seconds() * 1000,
        row.p99.total_seconds() * 1000,
        row.release_p50.total_seconds() * 1000,
        row.release_p99.total_seconds() * 1000,
        row.first_created,
        row.last_created,
        row.last_sent,
    )


def start_campaign(api_url: str, name: str) -> int:
    now = dt.datetime.now(dt.UTC)
    response = requests.post(
        f"{api_url}/api/v1/campaigns",
        json={
            "name": name,
            "channel": "http",
            "text": "Hello {{ name }}, this is a benchmark.",
            "filter": {"tags": [], "operator_codes": []},
            "starts_at": now.isoformat(),
            "ends_at": (now + dt.timedelta(hours=6)).isoformat(),
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["id"])


def run_campaign(
    api_url: str, recipients: int, name: str, on_progress: Callable[[dict], None] | None = None
) -> int:
    """Start a campaign to every client and wait for it to complete with all of them sent."""
    campaign_id = start_campaign(api_url, name)
    session = session_for(api_url)
    url = f"{api_url}/api/v1/campaigns/{campaign_id}/stats"
    last_done, last_change = -1, time.monotonic()
    while True:
        stats = session.get(url, timeout=10).json()
        done = stats["total"] - stats["pending"] - stats["queued"]
        line = progress_bar(done, stats["total"], stats.get("rate_per_s") or 0.0)
        print(f"\r  {name:<28} {line} {stats['status']:<10}", end="", flush=True)
        if on_progress:
            on_progress(stats)
        if stats["status"] in ("completed", "expired", "cancelled"):
            print()
            break
        if done != last_done:
            last_done, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            print()
            raise BenchFailed(f"{name}: no progress for {STALL_S:.0f} s: {stats}")
        time.sleep(0.5)
    session.close()
    if (
        stats["status"] != "completed"
        or stats["sent"] != recipients
        or stats["total"] != recipients
    ):
        raise BenchFailed(f"{name}: ended {stats['status']} with {stats}, not {recipients} sent")
    return campaign_id


def loaded_campaign(engine: Engine, api_url: str, recipients: int) -> tuple[int, Load, Transit]:
    """The campaign again, with the single-notification load while it sends at full speed."""
    halt = threading.Event()
    loads: list[Load] = []
    runner: threading.Thread | None = None
    seen: list[int] = []

    def on_progress(stats: dict) -> None:
        nonlocal runner
        seen.append(stats["sent"])
        rising = len(seen) >= 2 and seen[-2] > 0 and seen[-1] > seen[-2]
        if runner is None and rising:
            runner = threading.Thread(
                target=lambda: loads.append(paced_singles(api_url, LOAD_S, halt)), daemon=True
            )
            runner.start()
        left = stats["pending"] + stats["queued"]
        if runner is not None and left <= END_MARGIN * stats["total"]:
            halt.set()
        if stats["status"] == "completed" and runner is not None and runner.is_alive():
            halt.set()
            raise BenchFailed("the campaign ended while the notification load still ran")

    campaign_id = run_campaign(api_url, recipients, "campaign + notifications", on_progress)
    if runner is None:
        raise BenchFailed("the campaign never sent at a rising count: no load was started")
    runner.join()
    load = loads[0]
    load.check("single notifications beside the campaign")
    with engine.connect() as conn:
        first_sent, last_sent = conn.execute(CAMPAIGN_SPAN, {"c": campaign_id}).one()
    transit = wait_sent(engine, api_url, load.ids, "notifications (campaign)")
    if not (first_sent < transit.first_created and transit.last_created < last_sent):
        raise BenchFailed(
            f"the load ({transit.first_created} to {transit.last_created}) did not run within "
            f"the campaign's deliveries ({first_sent} to {last_sent})"
        )
    return campaign_id, load, transit


def run(
    database_url: str,
    vhost: str,
    recipients: int,
    senders: int = 2,
    concurrency: int = Settings().sender_concurrency,
    import_count: int = 0,
) -> Figures:
    """The four phases on one stack; `import_count` clients are imported first if not 0."""
    gateway = start_gateway(GATEWAY_PORT, GATEWAY_TOKEN)
    reset_vhost(vhost)
    stack = Stack(
        env={
            "HERALD_DATABASE_URL": database_url,
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "HERALD_API_TOKENS": f"{TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_GATEWAY_URL": f"http://127.0.0.1:{GATEWAY_PORT}",
            "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
            "HERALD_SENDER_CONCURRENCY": str(concurrency),
            "HERALD_LOG_LEVEL": "WARNING",
        },
        senders=senders,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )
    api_url = f"http://127.0.0.1:{API_PORT}"
    engine = make_engine(database_url)
    print(
        f"\n== notifications: {RATE:.0f}/s from {CLIENTS} clients for {LOAD_S:.0f} s, "
        f"{recipients:,}-recipient campaign, {senders} senders, gateway at once =="
    )
    try:
        stack.start()
        stack.wait_ready(api_url)
        if import_count:
            began = time.monotonic()
            imported = import_clients(api_url, TOKEN, import_count)
            print(
                f"  imported {imported['created']:,} clients over the API in "
                f"{time.monotonic() - began:.1f} s"
            )

        idle = paced_singles(api_url, LOAD_S, threading.Event())
        idle.check("single notifications while idle")
        idle_transit = wait_sent(engine, api_url, idle.ids, "notifications (idle)")

        alone = run_campaign(api_url, recipients, "campaign alone")
        campaign_rate, _, _ = delivery_figures(database_url, alone)

        loaded, busy, busy_transit = loaded_campaign(engine, api_url, recipients)
        loaded_rate, _, _ = delivery_figures(database_url, loaded)

        batch = batches(api_url)
        batch.check("arrays of notifications")
        batch_transit = wait_sent(engine, api_url, batch.ids, "notifications (arrays)")
        if batch_transit.count != BATCH_TOTAL:
            raise BenchFailed(f"{batch_transit.count} of {BATCH_TOTAL} array items sent")

        return Figures(
            idle_accept=percentiles(idle.latencies_ms),
            idle_rate=idle.rate,
            idle_transit=idle_transit,
            busy_accept=percentiles(busy.latencies_ms),
            busy_transit=busy_transit,
            busy_rate=busy.rate,
            busy_load_s=busy.seconds,
            campaign_rate=campaign_rate,
            loaded_campaign_rate=loaded_rate,
            batch_transit=batch_transit,
            batch_request_ms=percentiles(batch.latencies_ms),
        )
    finally:
        engine.dispose()
        stack.stop()
        stop(gateway)


def verdict(met: bool | None) -> str:
    return "info" if met is None else "OK" if met else "MISSED"


def report(f: Figures) -> None:
    ratio = f.loaded_campaign_rate / f.campaign_rate if f.campaign_rate else 0.0
    rows = [
        (
            "accept, single, idle",
            f"p50 {f.idle_accept[0]:.1f} ms, p99 {f.idle_accept[1]:.1f} ms",
            f"p99 < {ACCEPT_P99_GOAL_MS:.0f} ms",
            f.idle_accept[1] < ACCEPT_P99_GOAL_MS,
        ),
        (
            "accept, single, beside campaign",
            f"p50 {f.busy_accept[0]:.1f} ms, p99 {f.busy_accept[1]:.1f} ms",
            "",
            None,
        ),
        (
            "accept->gateway, idle",
            f"p50 {f.idle_transit.p50_ms:,.0f} ms, p99 {f.idle_transit.p99_ms:,.0f} ms",
            "",
            None,
        ),
        (
            "accept->gateway, beside campaign",
            f"p50 {f.busy_transit.p50_ms:,.0f} ms, p99 {f.busy_transit.p99_ms:,.0f} ms",
            f"p99 < {GATEWAY_P99_GOAL_MS / 1000:.0f} s",
            f.busy_transit.p99_ms < GATEWAY_P99_GOAL_MS,
        ),
        (
            "  of which accept->release, idle",
            f"p50 {f.idle_transit.release_p50_ms:,.0f} ms, "
            f"p99 {f.idle_transit.release_p99_ms:,.0f} ms",
            "",
            None,
        ),
        (
            "  of which accept->release, campaign",
            f"p50 {f.busy_transit.release_p50_ms:,.0f} ms, "
            f"p99 {f.busy_transit.release_p99_ms:,.0f} ms",
            "",
            None,
        ),
        (
            "campaign deliveries/s",
            f"{f.campaign_rate:,.0f} alone, {f.loaded_campaign_rate:,.0f} loaded ({ratio:.0%})",
            f">= {RATE_RATIO_GOAL:.0%} of alone",
            ratio >= RATE_RATIO_GOAL,
        ),
        (
            f"notifications/s, arrays of {BATCH_SIZE:,}",
            f"{f.batch_transit.rate:,.0f} ({f.batch_transit.count:,} sent)",
            f">= {BATCH_RATE_GOAL:,.0f}/s",
            f.batch_transit.rate >= BATCH_RATE_GOAL,
        ),
        (
            f"  time per array of {BATCH_SIZE:,}",
            f"p50 {f.batch_request_ms[0]:,.0f} ms, p99 {f.batch_request_ms[1]:,.0f} ms",
            "",
            None,
        ),
    ]
    print(
        f"  offered {RATE:.0f}/s from {CLIENTS} clients: achieved {f.idle_rate:.0f}/s idle, "
        f"{f.busy_rate:.0f}/s beside the campaign (for {f.busy_load_s:.1f} s)"
    )
    print(f"  {'figure':<38} {'measured':<38} {'goal':<18} verdict")
    for name, measured, goal, met in rows:
        print(f"  {name:<38} {measured:<38} {goal:<18} {verdict(met)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=Settings().sender_concurrency)
    args = parser.parse_args()
    rebuild(DATABASE_URL)
    figures = run(
        DATABASE_URL,
        VHOST,
        args.recipients,
        args.senders,
        args.concurrency,
        import_count=args.recipients,
    )
    report(figures)


if __name__ == "__main__":
    main()
