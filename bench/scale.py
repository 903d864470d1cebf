"""`python -m bench.scale`: ten campaigns of a million, one after another, then the retention job.

One stack (two senders, the sandbox gateway answering at once) and one set of clients, built
straight in its own database. Each campaign goes to every client; for each the bench prints
the materialisation time, deliveries per second, the scheduler's mean idle tick measured
right after it (its own histogram, scraped over a few idle seconds), and the message table's
partitions (a campaign's worth of ids each) and size. Then every campaign is dated back past
the retention and the job runs: how long it took, what it dropped, and that the campaigns'
counters are intact. Materialisation and the idle tick must not grow with the campaigns
behind them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import Engine, text

from bench.harness import delivery_figures, start_gateway, stop, watch
from deploy.stack import Stack
from sandbox.broker import reset_vhost
from services.scheduler.retention import run_retention
from shared.db.engine import make_engine
from shared.db.migrate import rebuild
from shared.db.queries import partitions

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_bench_scale"
VHOST = "herald_bench_scale"
TOKEN = "bench-token"
GATEWAY_TOKEN = "bench-gateway-token"
API_PORT = 8710
GATEWAY_PORT = 8911
METRICS_BASE = 9400  # the scheduler's port: stack.py numbers it first
LOG_DIR = Path(".run/bench-scale")
IDLE_S = 5.0
RETENTION_DAYS = 30

CLIENTS = text(
    """
    INSERT INTO client (phone, operator_code, tags, timezone, attributes)
    SELECT '+7916' || lpad(i::text, 7, '0'), '916', '{news}', 'Europe/Moscow',
           jsonb_build_object('name', 'client ' || i)
      FROM generate_series(0, :count - 1) AS i
    """
)

# As if every campaign had finished long ago: what retention looks at.
AGE_CAMPAIGNS = text(
    """
    UPDATE campaign SET finished_at = now() - make_interval(days => :days),
                        started_at = now() - make_interval(days => :days)
    """
)


# The database's own counters: transactions committed and row versions written.
DATABASE_ACTIVITY = text(
    """
    SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
      FROM pg_stat_database WHERE datname = current_database()
    """
)


@dataclass
class Round:
    campaign_id: int
    materialise_s: float
    rate: float
    idle_tick_ms: float
    partitions: int
    table_mb: float
    rows: int
    commits_per_s: float = 0.0
    row_writes_per_message: float = 0.0


def activity(engine: Engine) -> tuple[int, int]:
    """(commits, row writes) so far; the statistics collector lags by up to half a second."""
    time.sleep(0.6)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        commits, writes = conn.execute(DATABASE_ACTIVITY).one()
    return int(commits), int(writes)


def histogram(port: int, name: str) -> tuple[float, float]:
    """(sum, count) of a histogram on a service's /metrics."""
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {
        kind: float(m.group(1))
        for kind in ("sum", "count")
        if (m := re.search(rf"^{name}_{kind} ([0-9.e+-]+)$", body, re.M))
    }
    return found.get("sum", 0.0), found.get("count", 0.0)


def idle_tick_ms() -> float:
    """The scheduler's mean tick while nothing is due, over IDLE_S seconds."""
    name = "herald_scheduler_tick_duration_seconds"
    sum_before, count_before = histogram(METRICS_BASE, name)
    time.sleep(IDLE_S)
    sum_after, count_after = histogram(METRICS_BASE, name)
    ticks = count_after - count_before
    return (sum_after - sum_before) / ticks * 1000 if ticks else 0.0


def table(engine: Engine) -> tuple[int, float, int]:
    """(partitions, MB with indexes, rows) of the message table."""
    with engine.connect() as conn:
        found = partitions.partitions(conn)
        rows = conn.execute(text("SELECT count(*) FROM message")).scalar_one()
    return len(found), partitions.sizes(found)[1] / 2**20, int(rows)


def run_campaign(api_url: str, index: int) -> int:
    now = dt.datetime.now(dt.UTC)
    campaign = requests.post(
        f"{api_url}/api/v1/campaigns",
        json={
            "name": f"scale {index}",
            "channel": "http",
            "text": "Hello {{ name }}, this is campaign " + str(index) + ".",
            "filter": {"tags": [], "operator_codes": []},
            "starts_at": now.isoformat(),
            "ends_at": (now + dt.timedelta(hours=6)).isoformat(),
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    campaign.raise_for_status()
    final = watch(api_url, TOKEN, campaign.json()["id"])
    if final["status"] != "completed":
        raise RuntimeError(f"campaign {index} ended {final['status']}: {final}")
    return int(campaign.json()["id"])


def measure(campaigns: int, recipients: int, senders: int = 2) -> tuple[list[Round], dict]:
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    engine = make_engine(DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(CLIENTS, {"count": recipients})
        conn.execute(text("ANALYZE client"))
    gateway = start_gateway(GATEWAY_PORT, GATEWAY_TOKEN)
    stack = Stack(
        env={
            "HERALD_DATABASE_URL": DATABASE_URL,
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
            "HERALD_API_TOKENS": f"{TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_GATEWAY_URL": f"http://127.0.0.1:{GATEWAY_PORT}",
            "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
            "HERALD_LOG_LEVEL": "WARNING",
            # A partition per campaign's worth of ids, as an operator would size them to
            # a day's volume: retention then has whole partitions to drop.
            "HERALD_MESSAGE_PARTITION_IDS": str(recipients),
        },
        senders=senders,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )
    api_url = f"http://127.0.0.1:{API_PORT}"
    rounds: list[Round] = []
    try:
        stack.start()
        stack.wait_ready(api_url)
        materialised = 0.0
        for index in range(1, campaigns + 1):
            print(f"\n-- campaign {index} of {campaigns}: {recipients:,} recipients --")
            commits_before, writes_before = activity(engine)
            began = time.monotonic()
            campaign_id = run_campaign(api_url, index)
            wall = time.monotonic() - began
            commits, writes = activity(engine)
            total, _ = histogram(METRICS_BASE, "herald_scheduler_materialise_duration_seconds")
            rate, _, _ = delivery_figures(DATABASE_URL, campaign_id)
            count, mb, rows = table(engine)
            rounds.append(
                Round(
                    campaign_id,
                    total - materialised,
                    rate,
                    idle_tick_ms(),
                    count,
                    mb,
                    rows,
                    (commits - commits_before) / wall,
                    (writes - writes_before) / recipients,
                )
            )
            materialised = total
            report_round(rounds[-1])
    finally:
        stack.stop()
        stop(gateway)
    with engine.begin() as conn:
        conn.execute(AGE_CAMPAIGNS, {"days": RETENTION_DAYS + 1})
    before = progress_totals(engine)
    began = time.monotonic()
    dropped = run_retention(engine, RETENTION_DAYS)
    took = time.monotonic() - began
    count, mb, rows = table(engine)
    after = progress_totals(engine)
    engine.dispose()
    retention = {
        "seconds": took,
        "dropped_partitions": len(dropped),
        "dropped_rows": sum(d.rows for d in dropped),
        "partitions_after": count,
        "table_mb_after": mb,
        "rows_after": rows,
        "counters_kept": before == after,
    }
    return rounds, retention


def progress_totals(engine: Engine) -> list[tuple[int, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT campaign_id, total, sent FROM campaign_progress ORDER BY campaign_id")
        )
        return [tuple(row) for row in rows]


def report_round(r: Round) -> None:
    print(
        f"  materialised in {r.materialise_s:6.2f} s, {r.rate:7,.0f} deliveries/s, "
        f"idle tick {r.idle_tick_ms:5.2f} ms; message table {r.rows:,} rows, "
        f"{r.partitions} partitions, {r.table_mb:,.0f} MB; database {r.commits_per_s:,.0f} "
        f"commits/s, {r.row_writes_per_message:.2f} row writes a message"
    )


def report(rounds: list[Round], retention: dict) -> None:
    print("\n== campaigns in a row ==")
    print(
        "  #  materialise s  deliveries/s  idle tick ms  rows        partitions  table MB"
        "  commits/s  row writes/msg"
    )
    for i, r in enumerate(rounds, 1):
        print(
            f" {i:2}  {r.materialise_s:13.2f}  {r.rate:12,.0f}  {r.idle_tick_ms:12.2f}  "
            f"{r.rows:<10,}  {r.partitions:10}  {r.table_mb:8,.0f}  {r.commits_per_s:9,.0f}"
            f"  {r.row_writes_per_message:14.2f}"
        )
    if len(rounds) >= 2:
        first, last = rounds[0], rounds[-1]
        print(
            f"  last/first: materialisation {last.materialise_s / first.materialise_s:.2f}x, "
            f"idle tick {last.idle_tick_ms / first.idle_tick_ms:.2f}x"
            if first.materialise_s and first.idle_tick_ms
            else ""
        )
    print(
        f"\n== retention ({RETENTION_DAYS} days) over campaigns finished {RETENTION_DAYS + 1} "
        f"days ago ==\n  {retention['seconds']:.2f} s: dropped {retention['dropped_partitions']} "
        f"partitions, {retention['dropped_rows']:,} rows; left {retention['rows_after']:,} rows "
        f"in {retention['partitions_after']} partitions ({retention['table_mb_after']:,.0f} MB); "
        f"campaign counters unchanged: {retention['counters_kept']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args()
    report(*measure(args.campaigns, args.recipients, args.senders))


if __name__ == "__main__":
    main()
