"""Check that the sandbox gateway answers at least 10,000 requests/s to wrk.

The gateway runs as a subprocess by default, so wrk measures the server alone.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from sandbox.gateway import GatewayServer

REQUIRED_RPS = 10_000
LUA_SCRIPT = Path(__file__).with_name("post.lua")
SEND_PATH = "/v1/send/1"
TOKEN = "sandbox-token"


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw replies other than success."""


def wrk_command(url: str, token: str, seconds: int, connections: int, threads: int) -> list[str]:
    """Return the wrk command line that POSTs a valid send request to the gateway."""
    target = url if "/v1/send/" in url else url.rstrip("/") + SEND_PATH
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        str(LUA_SCRIPT),
        target,
        "--",
        token,
    ]


def measure_wrk(
    url: str, token: str, seconds: int = 5, connections: int = 64, threads: int = 2
) -> float:
    """Run wrk against the gateway's send path and return its requests/second."""
    if shutil.which("wrk") is None:
        raise WrkError("wrk is not installed: run `apt-get update && apt-get install -y wrk`")
    cmd = wrk_command(url, token, seconds, connections, threads)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk_output(done.stdout)


def parse_wrk_output(output: str) -> float:
    """Return Requests/sec from wrk's report; refuse a figure that counts failed replies."""
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if bad:
        raise WrkError(
            f"{bad.group(1)} replies were not 200, so the figure is not the success path"
        )
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise WrkError(f"no Requests/sec in wrk output:\n{output}")
    return float(found.group(1))


def fetch_stats(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url.rstrip("/") + "/_stats", timeout=5) as reply:
        return json.loads(reply.read())


def start_subprocess(workers: int, record_bodies: bool) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m sandbox.gateway` on a free port; return it and its URL."""
    cmd = [sys.executable, "-m", "sandbox.gateway", "--port", "0", "--token", TOKEN]
    cmd += ["--delay-ms", "0", "--workers", str(workers)]
    if not record_bodies:
        cmd.append("--no-record-bodies")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once the socket is listening
    found = re.search(r"(http://\S+)", line)
    if found is None:
        proc.kill()
        raise RuntimeError(f"the gateway did not start: {line!r}")
    return proc, found.group(1)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.wrk_check", description=__doc__)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="gateway processes (capacity mode)")
    p.add_argument("--record-bodies", action="store_true", help="the recording mode tests use")
    p.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    return p.parse_args(argv)


def _measure(args: argparse.Namespace) -> tuple[float, dict[str, object]]:
    if args.in_process:
        with GatewayServer(token=TOKEN, record_bodies=args.record_bodies) as server:
            rps = measure_wrk(server.url, TOKEN, args.seconds, args.connections, args.threads)
            return rps, server.stats()
    proc, url = start_subprocess(args.workers, args.record_bodies)
    try:
        rps = measure_wrk(url, TOKEN, args.seconds, args.connections, args.threads)
        # With several workers this is one worker's share only.
        return rps, fetch_stats(url)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main(argv: list[str] | None = None) -> int:
    """Measure the gateway with wrk and print the figure against the requirement."""
    args = _parse_args(argv)
    print(
        "$ "
        + " ".join(
            wrk_command("http://HOST:PORT", TOKEN, args.seconds, args.connections, args.threads)
        )
    )
    rps, stats = _measure(args)
    verdict = "OK" if rps >= REQUIRED_RPS else "TOO SLOW"
    mode = "in-process thread" if args.in_process else f"{args.workers} process(es)"
    print(f"gateway stats: requests={stats['requests']} deliveries={stats['deliveries']}")
    print(
        f"sandbox gateway ({mode}): {rps:,.0f} requests/s to wrk "
        f"(>= {REQUIRED_RPS:,} required: {verdict})"
    )
    return 0 if rps >= REQUIRED_RPS else 1


if __name__ == "__main__":
    sys.exit(main())
