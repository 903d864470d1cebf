"""`make bench-receipts`: delivery receipts through the API, RabbitMQ and stats, applied.

A database of its own holds RECEIPTS messages already `sent` (written directly: the bench
measures receipts, not a campaign). The API and the stats service run as processes; CLIENTS
clients post the receipts as arrays of BATCH_SIZE (one in UNDELIVERED_EVERY undelivered),
and the figure is receipts applied per second: RECEIPTS / (the moment the database shows
the last one applied - the first POST). `make bench` runs it after its other scenarios.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import Engine, text

from bench.harness import progress_bar
from deploy.stack import Stack
from sandbox.broker import reset_vhost
from shared.db.engine import make_engine
from shared.db.migrate import rebuild

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_bench_receipts"
VHOST = "herald_bench_receipts"
TOKEN = "bench-receipts-token"
WRITE_TOKEN = "bench-receipts-write-token"
API_PORT = 8730
METRICS_BASE = 9600
LOG_DIR = Path(".run/bench-receipts")

RECEIPTS = 200_000
BATCH_SIZE = 1_000
CLIENTS = 4
UNDELIVERED_EVERY = 20
RATE_GOAL = 5_000.0
STALL_S = 60.0


class BenchFailed(RuntimeError):
    """The run did not end as it must: every receipt applied exactly once."""


@dataclass(frozen=True, slots=True)
class Figures:
    receipts: int
    post_s: float  # first POST to last answer
    applied_s: float  # first POST to the last receipt applied
    request_ms_p50: float

    @property
    def rate(self) -> float:
        return self.receipts / self.applied_s if self.applied_s else 0.0


SEED = text(
    """
    WITH k AS (
        INSERT INTO campaign (name, channel, text, filter_tags, filter_operator_codes,
                              starts_at, ends_at, status, started_at)
        VALUES ('receipts bench', 'http', 'Hi', '{}', '{}', now(), now() + interval '1 day',
                'running', now())
        RETURNING id
    ), p AS (
        INSERT INTO campaign_progress (campaign_id) SELECT id FROM k
    )
    INSERT INTO message (campaign_id, status, attempts, sent_at)
    SELECT k.id, 'sent', 1, now() FROM k, generate_series(1, :n)
    """
)
SETTLED = text("SELECT delivered + undelivered FROM campaign_progress")


def seed(engine: Engine, n: int) -> list[int]:
    """n sent messages of one running campaign; returns their ids."""
    with engine.begin() as conn:
        conn.execute(SEED, {"n": n})
        return list(conn.execute(text("SELECT id FROM message ORDER BY id")).scalars())


def post_all(api_url: str, ids: list[int]) -> tuple[float, float, list[float]]:
    """Post every receipt in arrays from CLIENTS threads; (start, end, request ms each)."""
    chunks = [ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    url = f"{api_url}/api/v1/receipts/http"

    def client(mine: list[list[int]]) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        for chunk in mine:
            body = [
                {"id": i, "status": "undelivered" if i % UNDELIVERED_EVERY == 0 else "delivered"}
                for i in chunk
            ]
            began = time.perf_counter()
            response = session.post(url, json=body, timeout=30)
            took = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(took)
                if response.status_code != 202:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(chunks[n::CLIENTS],)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    if failures:
        raise BenchFailed(f"{len(failures)} posts refused, first: {failures[0]}")
    return started, ended, latencies


def wait_applied(engine: Engine, total: int, began: float) -> float:
    """Wait until every receipt is applied; the monotonic time it was seen."""
    last_change = time.monotonic()
    last = -1
    while True:
        with engine.connect() as conn:
            settled = int(conn.execute(SETTLED).scalar_one())
        now = time.monotonic()
        if settled != last:
            bar = progress_bar(settled, total, settled / max(now - began, 1e-9))
            print(f"\r  {bar}", end="", flush=True)
        if settled >= total:
            print()
            return now
        if settled != last:
            last, last_change = settled, now
        elif now - last_change > STALL_S:
            raise BenchFailed(f"stalled at {settled:,} of {total:,} receipts applied")
        time.sleep(0.05)


def run(database_url: str, vhost: str, receipts: int = RECEIPTS) -> Figures:
    rebuild(database_url)
    reset_vhost(vhost)
    engine = make_engine(database_url)
    ids = seed(engine, receipts)
    stack = Stack(
        env={
            "HERALD_DATABASE_URL": database_url,
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "HERALD_API_TOKENS": f"{TOKEN}:receipts,{WRITE_TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_LOG_LEVEL": "WARNING",
        },
        senders=0,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )
    api_url = f"http://127.0.0.1:{API_PORT}"
    print(f"\n== receipts: {receipts:,} as arrays of {BATCH_SIZE:,} from {CLIENTS} clients ==")
    try:
        stack.start("api")
        stack.start("stats")
        stack.wait_ready(api_url)
        # Applying runs while the posts go on: the bar starts once they are all answered.
        started, posted, latencies = post_all(api_url, ids)
        applied = wait_applied(engine, receipts, started)
        with engine.connect() as conn:
            undelivered = conn.execute(
                text("SELECT undelivered FROM campaign_progress")
            ).scalar_one()
        expected = len([i for i in ids if i % UNDELIVERED_EVERY == 0])
        if undelivered != expected:
            raise BenchFailed(f"{undelivered:,} undelivered, {expected:,} expected")
        latencies.sort()
        return Figures(
            receipts, posted - started, applied - started, latencies[len(latencies) // 2]
        )
    finally:
        engine.dispose()
        stack.stop()


def report(f: Figures) -> None:
    met = "OK" if f.rate >= RATE_GOAL else "MISSED"
    print(
        f"  posted in {f.post_s:.1f} s (p50 {f.request_ms_p50:.0f} ms per array), "
        f"all applied {f.applied_s:.1f} s after the first POST"
    )
    print(f"  receipts applied/s: {f.rate:,.0f} (goal >= {RATE_GOAL:,.0f}) {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=RECEIPTS)
    args = parser.parse_args()
    report(run(DATABASE_URL, VHOST, args.receipts))


if __name__ == "__main__":
    main()
