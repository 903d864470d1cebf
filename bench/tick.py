"""`python -m bench.tick`: the scheduler's tick while a million messages wait for their window.

Builds 1,000,000 clients over 24 time zones straight in its own database, starts one campaign
whose send window is shut in every zone, then times scheduler ticks in-process (p50 and max)
and shows the plan of the "anything due?" probe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text

from sandbox.broker import reset_vhost
from services.scheduler.ticker import Ticker
from shared.config import Settings
from shared.db.engine import make_engine
from shared.db.migrate import rebuild
from shared.messaging.connection import connect
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import declare_all

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_bench_tick"
VHOST = "herald_bench_tick"
# Whole-hour offsets from UTC-12 to UTC+11: every zone reads the same minute past the hour.
ZONES = [f"Etc/GMT{'+' if h > 0 else '-'}{abs(h)}" if h else "UTC" for h in range(12, -12, -1)]

CLIENTS = text(
    """
    INSERT INTO client (phone, operator_code, tags, timezone, attributes)
    SELECT '+79' || lpad(i::text, 9, '0'), '900', '{news}', (:zones)[1 + i % 24],
           jsonb_build_object('name', 'client ' || i)
      FROM generate_series(0, :count - 1) AS i
    """
)

CAMPAIGN = text(
    """
    WITH k AS (
        INSERT INTO campaign (name, channel, text, starts_at, ends_at, window_start, window_end)
        VALUES ('waiting for the window', 'http', 'Hello {{ name }}', now(),
                now() + interval '2 days', :start, :end)
        RETURNING id
    )
    INSERT INTO campaign_progress (campaign_id) SELECT id FROM k RETURNING campaign_id
    """
)

PROBE = """
    EXPLAIN (ANALYZE, COSTS OFF)
    SELECT id FROM message
     WHERE campaign_id = :campaign_id AND status = 'pending'
       AND coalesce(not_before, '-infinity'::timestamptz) BETWEEN 'epoch' AND now()
     ORDER BY coalesce(not_before, '-infinity'::timestamptz), id
     LIMIT 100
"""


@dataclass(frozen=True, slots=True)
class TickFigures:
    waiting: int
    build_s: float
    materialise_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    ticks: int
    plan: str


def fresh_database() -> Engine:
    rebuild(DATABASE_URL)
    return make_engine(DATABASE_URL)


def shut_window() -> tuple[dt.time, dt.time]:
    """A one-minute window at 03:MM local, MM five minutes before now's minute: shut in every
    whole-hour zone for the next 55 minutes at least."""
    minute = (dt.datetime.now(dt.UTC).minute - 5) % 60
    start = dt.datetime.combine(dt.date.today(), dt.time(3, minute))
    return start.time(), (start + dt.timedelta(minutes=1)).time()


def build(engine: Engine, count: int) -> int:
    """Insert the clients and a scheduled campaign; returns the campaign id."""
    with engine.begin() as conn:
        conn.execute(CLIENTS, {"zones": ZONES, "count": count})
        start, end = shut_window()
        campaign_id = conn.execute(CAMPAIGN, {"start": start, "end": end}).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE client"))
    return int(campaign_id)


def measure(count: int = 1_000_000, ticks: int = 100) -> TickFigures:
    """Build, start the campaign with one tick, then time `ticks` ticks with nothing due."""
    engine = fresh_database()
    reset_vhost(VHOST)
    settings = Settings(database_url=DATABASE_URL)
    connection = connect(f"amqp://guest:guest@127.0.0.1:5672/{VHOST}", "bench-tick")
    try:
        channel = connection.channel()
        declare_all(channel, settings.retry_delays_ms)
        publisher = ConfirmingPublisher(channel)
        began = time.monotonic()
        campaign_id = build(engine, count)
        built = time.monotonic()
        ticker = Ticker.from_settings(settings)
        ticker.tick(engine, publisher)  # materialises: every message waits for its window
        materialised = time.monotonic()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE message"))
            waiting = conn.execute(
                text("SELECT pending FROM campaign_progress WHERE campaign_id = :c"),
                {"c": campaign_id},
            ).scalar_one()
        durations = []
        for _ in range(ticks):
            start = time.perf_counter()
            released = ticker.tick(engine, publisher)
            durations.append((time.perf_counter() - start) * 1000)
            assert released == 0, f"{released} messages were due; the window should be shut"
            time.sleep(settings.tick_interval_s)  # ticks as the loop spaces them
        with engine.connect() as conn:
            rows = conn.execute(text(PROBE), {"campaign_id": campaign_id}).scalars()
            plan = "\n".join(f"    {line}" for line in rows)
    finally:
        connection.close()
        engine.dispose()
    return TickFigures(
        waiting,
        built - began,
        materialised - built,
        statistics.median(durations),
        statistics.quantiles(durations, n=100)[98],
        max(durations),
        ticks,
        plan,
    )


def report(figures: TickFigures) -> None:
    print(f"\n== scheduler tick with {figures.waiting:,} messages waiting for their window ==")
    print(f"  clients built (24 zones)   {figures.build_s:8.1f} s")
    print(f"  materialisation            {figures.materialise_s:8.1f} s")
    print(
        f"  tick, nothing due          p50 {figures.p50_ms:.1f} ms, p99 {figures.p99_ms:.1f} ms,"
        f" max {figures.max_ms:.1f} ms over {figures.ticks} ticks (< 100 ms required)"
    )
    print(f"  load average (1 min)       {os.getloadavg()[0]:8.1f} on {os.cpu_count()} cores")
    print(f"  'anything due?' probe plan:\n{figures.plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=100)
    args = parser.parse_args()
    report(measure(args.recipients, args.ticks))


if __name__ == "__main__":
    main()
