"""`make observe`: Debian's Prometheus with Herald's alert rules over the stack `make run` runs.

The scrape config is deploy/prometheus/prometheus.yml with its compose hostnames replaced by
this machine's loopback ports; the end-to-end tests build theirs with the same functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from deploy.broker_ui import PROMETHEUS_PORT, broker_hosts
from deploy.stack import ROOT, Stack
from shared.config import Settings

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DEFAULT_DIR = ROOT / ".observe"
DEFAULT_PORT = 9090
RABBITMQ_JOBS = ("rabbitmq", "rabbitmq-queues")
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Targets:
    """host:port of every /metrics to scrape; without rabbitmq, the broker's jobs are left out.

    `rabbitmq` names every node of the cluster (one target each).
    """

    api: str
    scheduler: str
    stats: str
    senders: tuple[str, ...]
    webhooks: str
    rabbitmq: tuple[str, ...] = ()

    def by_job(self) -> dict[str, list[str]]:
        jobs = {
            "herald-api": [self.api],
            "herald-scheduler": [self.scheduler],
            "herald-stats": [self.stats],
            "herald-sender": list(self.senders),
            "herald-webhooks": [self.webhooks],
        }
        if self.rabbitmq:
            jobs.update({name: list(self.rabbitmq) for name in RABBITMQ_JOBS})
        return jobs


def stack_targets(stack: Stack, api: str, rabbitmq: tuple[str, ...] = ()) -> Targets:
    """A Stack's metrics, at the ports it gives its services, plus the API's and the broker's."""
    ports = stack.metrics_ports()
    return Targets(
        api=api,
        scheduler=f"127.0.0.1:{ports['scheduler']}",
        stats=f"127.0.0.1:{ports['stats']}",
        senders=tuple(f"127.0.0.1:{p}" for name, p in ports.items() if name.startswith("sender")),
        webhooks=f"127.0.0.1:{ports['webhooks']}",
        rabbitmq=rabbitmq,
    )


def scrape_config(
    targets: Targets, interval: str | None = None, source: Path = PROMETHEUS_DIR / "prometheus.yml"
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml scraping these targets, with its rules by absolute path."""
    config = yaml.safe_load(source.read_text())
    wanted = targets.by_job()
    known = {job["job_name"] for job in config["scrape_configs"]}
    # A job renamed on one side only would silently go unscraped.
    if set(wanted) - known or known - set(wanted) - set(RABBITMQ_JOBS):
        raise ValueError(f"{source} has jobs {sorted(known)}; the targets are {sorted(wanted)}")
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in wanted:
            kept = {k: v for k, v in job.items() if not k.endswith("_sd_configs")}
            jobs.append({**kept, "static_configs": [{"targets": wanted[job["job_name"]]}]})
    if interval:
        config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    config["rule_files"] = [str(source.parent / "rules" / "*.yml")]
    config["scrape_configs"] = jobs
    return config


def start_prometheus(
    home: Path, config: dict[str, Any], port: int, retention: str = "15d"
) -> subprocess.Popen[bytes]:
    """Write the config to home and start Prometheus on 127.0.0.1:port, its data in home."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is missing: `make tools` installs Debian's")
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "prometheus.yml"
    config_file.write_text(
        "# Written by deploy/observe.py at each start; edit deploy/prometheus/ instead.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    with (home / "prometheus.log").open("ab") as log:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def is_ready(url: str, process: subprocess.Popen[Any]) -> bool:
    """True once Prometheus answers /-/ready; RuntimeError if it has exited."""
    if process.poll() is not None:
        raise RuntimeError(f"prometheus exited with {process.returncode}")
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="Prometheus over the stack `make run` started.")
    parser.add_argument("--senders", type=int, default=2, help="as many as make run started")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="config, data and log")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("HERALD_PROMETHEUS_PORT", DEFAULT_PORT))
    )
    parser.add_argument("--scrape-interval", default=None, help="e.g. 5s; else prometheus.yml's")
    args = parser.parse_args()

    settings = Settings.from_env(env_file=ROOT / ".env")
    # The same Stack `make run` builds, never started: it only numbers the ports.
    stack = Stack(env={}, senders=args.senders, metrics_base=settings.metrics_port_base)
    targets = stack_targets(
        stack,
        api=f"{settings.api_host}:{settings.api_port}",
        rabbitmq=tuple(f"{host}:{PROMETHEUS_PORT}" for host in broker_hosts(settings.amqp_url)),
    )
    config = scrape_config(targets, args.scrape_interval)
    url = f"http://127.0.0.1:{args.port}"
    # Both, explicitly: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)
    process = start_prometheus(args.dir, config, args.port)
    log = args.dir / "prometheus.log"
    is_stopped = False
    try:
        while not is_ready(url, process):
            time.sleep(0.2)
        print(f"\nPrometheus is running.\n  UI       {url}\n  alerts   {url}/alerts")
        print(f"  targets  {url}/targets\n  files    {args.dir}\nPress Ctrl-C to stop.\n")
        sys.stdout.flush()
        process.wait()
        print(f"prometheus exited with {process.returncode}; see {log}", file=sys.stderr)
    except KeyboardInterrupt:
        is_stopped = True
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:]
        print(f"{exc}; the end of {log}:\n{tail}", file=sys.stderr)
    finally:
        stop(process)
    if not is_stopped:
        sys.exit(1)


if __name__ == "__main__":
    main()
