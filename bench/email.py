"""`make bench-email`: e-mails per second through the SMTP pool, raw and end to end, and the gain.

Each figure twice against one minimal sink: kept-open sessions, then a session per e-mail.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import requests
from sqlalchemy import text

from bench.harness import watch
from deploy.stack import Stack
from sandbox.broker import reset_vhost
from shared.channels.base import MessengerFactory
from shared.channels.registry import build_registry
from shared.config import Settings
from shared.db.engine import make_engine
from shared.db.migrate import rebuild
from shared.messaging.envelopes import DeliveryItem

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_bench_email"
VHOST = "herald_bench_email"
TOKEN = "bench-email-token"
API_PORT = 8710
SINK_PORT = 2626
METRICS_BASE = 9400
LOG_DIR = Path(".run/bench-email")
MAIL_FROM = "Herald Bench <bench@example.org>"
BODY = "Hello {{ name }},\n\nthis is a benchmark letter with a few lines of text.\n"


# -- the sink: just enough SMTP to take mail as fast as one Python process can -----------------


class SinkCounts:
    messages = 0
    connections = 0


async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    SinkCounts.connections += 1
    writer.write(b"220 sink ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif verb == b"DATA":
            writer.write(b"354 end with .\r\n")
            while (chunk := await reader.readline()) and chunk != b".\r\n":
                pass
            SinkCounts.messages += 1
            writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:  # HELO, MAIL, RCPT, RSET, NOOP
            writer.write(b"250 OK\r\n")
        await writer.drain()
    await writer.drain()
    writer.close()


async def run_sink(port: int) -> None:
    server = await asyncio.start_server(serve_client, "127.0.0.1", port, backlog=512)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    async with server:
        await stopped.wait()
    print(json.dumps({"messages": SinkCounts.messages, "connections": SinkCounts.connections}))


def start_sink(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.email", "--sink", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.recv(64)
                probe.sendall(b"QUIT\r\n")
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the SMTP sink did not listen on {port}")


def stop_sink(process: subprocess.Popen[bytes]) -> dict[str, int]:
    """Stop the sink; what it took (its readiness probe counts as one connection)."""
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    return json.loads(out.decode().strip().splitlines()[-1])


# -- raw: the messenger alone, as two senders would run it ------------------------------------


def _hammer(port: int, per_connection: int, threads: int, seconds: float, out: mp.Queue) -> None:
    settings = Settings(
        smtp_port=port,
        smtp_max_per_connection=per_connection,
        smtp_pool_size=4,
        mail_from=MAIL_FROM,
    )
    factory = cast(MessengerFactory, build_registry(settings)["email"])  # SMTP is synchronous
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        messenger = factory()
        n = 0
        while time.monotonic() < deadline:
            item = DeliveryItem(
                slot * 10_000_000 + n,
                f"r{n}@example.com",
                BODY,
                1,
                4e9,
                subject="Benchmark",
                client_id=n + 1,
            )
            if messenger.send(item).kind == "sent":
                counts[slot] += 1
            n += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    began = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    factory().close()
    out.put((sum(counts), time.monotonic() - began))


def measure_raw(per_connection: int, processes: int, threads: int, seconds: float) -> float:
    sink = start_sink(SINK_PORT)
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    runners = [
        ctx.Process(target=_hammer, args=(SINK_PORT, per_connection, threads, seconds, out))
        for _ in range(processes)
    ]
    try:
        for runner in runners:
            runner.start()
        results = [out.get(timeout=seconds + 60) for _ in runners]
        for runner in runners:
            runner.join()
    finally:
        counts = stop_sink(sink)
    sent = sum(n for n, _ in results)
    if counts["messages"] != sent:
        print(f"  (the sink took {counts['messages']:,} for {sent:,} sent)")
    return sent / max(elapsed for _, elapsed in results)


# -- end to end: a campaign through api, scheduler, senders and stats -------------------------


def clients_csv(count: int) -> Iterator[bytes]:
    yield b"phone,email,tags,timezone,name\n"
    for start in range(0, count, 5000):
        rows = (
            f"+7916{i:07d},reader{i}@example.com,bench,Europe/Moscow,Reader {i}\n"
            for i in range(start, min(start + 5000, count))
        )
        yield "".join(rows).encode()


def stack_for(per_connection: int, senders: int) -> Stack:
    return Stack(
        env={
            "HERALD_DATABASE_URL": DATABASE_URL,
            "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
            "HERALD_API_TOKENS": f"{TOKEN}:write",
            "HERALD_API_PORT": str(API_PORT),
            "HERALD_SENDER_CHANNELS": "email",
            "HERALD_SMTP_PORT": str(SINK_PORT),
            "HERALD_SMTP_MAX_PER_CONNECTION": str(per_connection),
            "HERALD_MAIL_FROM": MAIL_FROM,
            "HERALD_PUBLIC_URL": f"http://127.0.0.1:{API_PORT}",
            "HERALD_LOG_LEVEL": "WARNING",
        },
        senders=senders,
        log_dir=LOG_DIR,
        metrics_base=METRICS_BASE,
    )


def delivery_rate(campaign_id: int) -> float:
    """Sent per second from the first delivery to the last."""
    engine = make_engine(DATABASE_URL)
    with engine.connect() as conn:
        count, span = conn.execute(
            text(
                "SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at))"
                "  FROM message WHERE campaign_id = :c AND status = 'sent'"
            ),
            {"c": campaign_id},
        ).one()
    engine.dispose()
    return (count - 1) / float(span) if span else 0.0


def measure_campaign(per_connection: int, recipients: int, senders: int) -> tuple[float, int]:
    """One campaign to every recipient; (e-mails per second, sessions the sink saw)."""
    sink = start_sink(SINK_PORT)
    stack = stack_for(per_connection, senders)
    api_url = f"http://127.0.0.1:{API_PORT}"
    try:
        stack.start()
        stack.wait_ready(api_url)
        now = dt.datetime.now(dt.UTC)
        campaign = requests.post(
            f"{api_url}/api/v1/campaigns",
            json={
                "name": f"bench e-mail, {per_connection} per session",
                "channel": "email",
                "subject": "Benchmark for {{ name }}",
                "text": BODY,
                "filter": {"tags": ["bench"], "operator_codes": []},
                "starts_at": now.isoformat(),
                "ends_at": (now + dt.timedelta(hours=6)).isoformat(),
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).json()
        final = watch(api_url, TOKEN, campaign["id"])
        assert final["sent"] == recipients, final
    finally:
        stack.stop()
        counts = stop_sink(sink)
    assert counts["messages"] == recipients, counts
    return delivery_rate(campaign["id"]), counts["connections"] - 1


def import_recipients(count: int) -> None:
    stack = stack_for(100, senders=0)
    api_url = f"http://127.0.0.1:{API_PORT}"
    stack.start("api")
    try:
        stack.wait_ready(api_url)
        response = requests.post(
            f"{api_url}/api/v1/clients/import",
            data=clients_csv(count),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
            timeout=3600,
        )
        response.raise_for_status()
        assert response.json()["created"] == count, response.json()
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sink", action="store_true", help="run only the SMTP sink")
    parser.add_argument("--port", type=int, default=SINK_PORT)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="raw: delivery threads per process")
    parser.add_argument("--seconds", type=float, default=6.0, help="raw: length of each run")
    args = parser.parse_args()
    if args.sink:
        asyncio.run(run_sink(args.port))
        return

    print(f"raw, {args.senders} processes x {args.threads} threads, a pool of 4 sessions each:")
    pooled = measure_raw(100, args.senders, args.threads, args.seconds)
    fresh = measure_raw(1, args.senders, args.threads, args.seconds)
    print(f"  pooled sessions       {pooled:8,.0f} e-mails/s")
    print(f"  a session per e-mail  {fresh:8,.0f} e-mails/s   pool gain x{pooled / fresh:.2f}")

    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    import_recipients(args.recipients)
    print(f"end to end, {args.recipients:,} recipients, {args.senders} senders:")
    pooled_e2e, pooled_sessions = measure_campaign(100, args.recipients, args.senders)
    fresh_e2e, fresh_sessions = measure_campaign(1, args.recipients, args.senders)
    print(f"  pooled sessions       {pooled_e2e:8,.0f} e-mails/s ({pooled_sessions:,} sessions)")
    print(
        f"  a session per e-mail  {fresh_e2e:8,.0f} e-mails/s ({fresh_sessions:,} sessions)"
        f"   pool gain x{pooled_e2e / fresh_e2e:.2f}"
    )


if __name__ == "__main__":
    main()
