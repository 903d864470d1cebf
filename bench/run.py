"""`make bench`: one campaign end to end on this machine, with two senders and the sandbox gateway.

Prints materialisation time, deliveries per second from first to last delivery, delivery
latency p50/p99, every service's peak RSS, the gateway's raw capacity through the same
client code, so the Herald/raw ratio means something on a noisy machine, and the CPU each
component spent per delivered message over the campaign (bench/cpu.py). Then notifications
through the API, idle and beside a campaign, and in arrays (bench/notifications.py, on the
same clients), then delivery receipts applied per second (bench/receipts.py, a database
of its own). Last, the scheduler's tick while a million messages wait for their send
window (bench/tick.py), and ten campaigns of a million in a row with the retention job
dropping their partitions (bench/scale.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import notifications, receipts, scale, tick
from bench.cpu import CpuUsage, table_lines, take_sample, usage_between
from bench.harness import delivery_figures, import_clients, start_gateway, stop, watch
from bench.raw_capacity import measure_raw_capacity
from bench.wrk_check import measure_wrk
from deploy.stack import Stack
from sandbox.broker import reset_vhost
from shared.config import Settings
from shared.db.migrate import rebuild

DATABASE_NAME = "herald_bench"
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE_NAME}"
VHOST = "herald_bench"
TOKEN = "bench-token"
GATEWAY_TOKEN = "bench-gateway-token"
API_PORT = 8700
GATEWAY_PORT = 8901
METRICS_BASE = 9300
LOG_DIR = Path(".run/bench")


@dataclass
class Result:
    delay_ms: int
    recipients: int
    materialise_s: float
    rate: float
    p50_ms: float
    p99_ms: float
    wall_s: float
    raw_rate: float
    peak_rss_mb: dict[str, float]
    sent: int
    cpu: CpuUsage


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def scrape(port: int, metric: str) -> float:
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    match = re.search(rf"^{metric} ([0-9.e+-]+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


def run_scenario(recipients: int, delay_ms: int, senders: int, concurrency: int) -> Result:
    gateway = start_gateway(GATEWAY_PORT, GATEWAY_TOKEN, delay_ms=delay_ms)
    gateway_url = f"http://127.0.0.1:{GATEWAY_PORT}"
    stack = Stack(
        env={
            "HERALD_DATABASE_URL": DATABASE_URL,
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
            "HERALD_API_TOKENS": f"{TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_GATEWAY_URL": gateway_url,
            "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
            "HERALD_SENDER_CONCURRENCY": str(concurrency),
            "HERALD_LOG_LEVEL": "WARNING",
        },
        senders=senders,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )
    api_url = f"http://127.0.0.1:{API_PORT}"
    try:
        print(f"\n== {recipients:,} recipients, gateway answering after {delay_ms} ms ==")
        raw = measure_raw_capacity(gateway_url, GATEWAY_TOKEN, senders, concurrency)
        print(f"raw capacity, {senders} processes x {concurrency} in flight: {raw:,.0f} requests/s")
        stack.start()
        stack.wait_ready(api_url)
        pids = {n: s.process.pid for n, s in stack.services.items() if s.process}
        pids["gateway"] = gateway.pid
        cpu_before = take_sample(pids, DATABASE_NAME)
        now = dt.datetime.now(dt.UTC)
        began = time.monotonic()
        campaign = requests.post(
            f"{api_url}/api/v1/campaigns",
            json={
                "name": f"bench {delay_ms} ms",
                "channel": "http",
                "text": "Hello {{ name }}, this is a benchmark.",
                "filter": {"tags": [], "operator_codes": []},
                "starts_at": now.isoformat(),
                "ends_at": (now + dt.timedelta(hours=6)).isoformat(),
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).json()
        final = watch(api_url, TOKEN, campaign["id"])
        wall = time.monotonic() - began
        cpu = usage_between(cpu_before, take_sample(pids, DATABASE_NAME))
        assert final["sent"] == recipients, final
        rate, p50, p99 = delivery_figures(DATABASE_URL, campaign["id"])
        rss = {n: peak_rss_mb(s.process.pid) for n, s in stack.services.items() if s.process}
        rss["gateway"] = peak_rss_mb(gateway.pid)
        materialise = scrape(METRICS_BASE, "herald_scheduler_materialise_duration_seconds_sum")
        return Result(
            delay_ms, recipients, materialise, rate, p50, p99, wall, raw, rss, final["sent"], cpu
        )
    finally:
        stack.stop()
        stop(gateway)


def report(result: Result) -> None:
    ratio = result.rate / result.raw_rate if result.raw_rate else 0.0
    print(f"  materialisation        {result.materialise_s:8.2f} s")
    print(f"  deliveries/s           {result.rate:8,.0f} (first to last delivery)")
    print(f"  raw gateway capacity   {result.raw_rate:8,.0f} requests/s, Herald/raw {ratio:.0%}")
    print(f"  latency queued->sent   p50 {result.p50_ms:,.0f} ms, p99 {result.p99_ms:,.0f} ms")
    print(f"  campaign wall time     {result.wall_s:8.1f} s")
    rss = ", ".join(f"{name} {mb:.0f}" for name, mb in result.peak_rss_mb.items())
    print(f"  peak RSS (MB)          {rss}")
    print("\n".join(table_lines(result.cpu, result.sent)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--delays", default="0,50", help="gateway answer delays to run, in ms")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=Settings().sender_concurrency)
    parser.add_argument("--scale-campaigns", type=int, default=10, help="0: no scale run")
    parser.add_argument("--scale-recipients", type=int, default=1_000_000)
    args = parser.parse_args()

    gateway = start_gateway(GATEWAY_PORT, GATEWAY_TOKEN)
    try:
        wrk = measure_wrk(f"http://127.0.0.1:{GATEWAY_PORT}", GATEWAY_TOKEN)
    finally:
        stop(gateway)
    verdict = "OK" if wrk >= 10_000 else "TOO SLOW: the gateway would be the bottleneck"
    print(f"sandbox gateway: {wrk:,.0f} requests/s to wrk (>= 10,000 required: {verdict})")

    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    stack = Stack(
        env={
            "HERALD_DATABASE_URL": DATABASE_URL,
            "HERALD_API_TOKENS": f"{TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        },
        senders=0,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )
    stack.start("api")
    try:
        stack.wait_ready(f"http://127.0.0.1:{API_PORT}")
        began = time.monotonic()
        imported = import_clients(f"http://127.0.0.1:{API_PORT}", TOKEN, args.recipients)
        took = time.monotonic() - began
        print(
            f"imported {imported['created']:,} clients over the API in {took:.1f} s "
            f"({imported['created'] / took:,.0f} rows/s)"
        )
    finally:
        stack.stop()

    for delay_ms in (int(d) for d in args.delays.split(",")):
        report(run_scenario(args.recipients, delay_ms, args.senders, args.concurrency))

    notifications.report(
        notifications.run(DATABASE_URL, VHOST, args.recipients, args.senders, args.concurrency)
    )

    receipts.report(receipts.run(receipts.DATABASE_URL, receipts.VHOST))

    tick.report(tick.measure(1_000_000))

    if args.scale_campaigns:
        scale.report(*scale.measure(args.scale_campaigns, args.scale_recipients, args.senders))


if __name__ == "__main__":
    main()
