"""Run Herald's services as local processes: `make run`, the end-to-end tests, demo and bench.

Each service is started with the same module and environment that docker-compose uses;
processes are stopped by their own PIDs, gently first. `make run` supervises them: a service
that exits is started again after a delay that grows while it keeps dying, and the others
keep running; only a signal to `make run` stops them all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from deploy.broker_ui import describe, ensure_plugins
from shared.config import Settings, read_env_file
from shared.db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
METRICS_PORT_BASE = 9100  # scheduler; stats base + 1, webhooks base + 2, sender i base + 10 + i
SENDER_CHANNELS = "http,email"
STOP_TIMEOUT_S = 8.0  # then SIGKILL: a killed sender's batches are redelivered, nothing lost
# A service that dies is started again after 1, 2, 4 ... seconds while it keeps dying;
# one that ran this long before dying starts again after the first delay.
FIRST_RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
STABLE_AFTER_S = 30.0


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before starting a service again after its n-th death in a row."""
    return min(MAX_RESTART_DELAY_S, FIRST_RESTART_DELAY_S * 2.0 ** max(0, quick_deaths - 1))


def say(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} stack: {message}", file=sys.stderr, flush=True)


@dataclass
class Service:
    name: str
    module: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0  # deaths in a row, each within STABLE_AFTER_S of its start
    restart_at: float | None = None  # set while it waits to be started again
    restarts: int = 0


@dataclass
class Stack:
    """api, scheduler, N senders, stats and webhooks as child processes sharing one environment."""

    env: dict[str, str]
    senders: int = 2
    log_dir: Path | None = None
    metrics_base: int = METRICS_PORT_BASE
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.add("api", "services.api", {})
        self.add("scheduler", "services.scheduler", {"HERALD_METRICS_PORT": self.metrics_base})
        for i in range(self.senders):
            self.add_sender(i)
        self.add("stats", "services.stats", {"HERALD_METRICS_PORT": self.metrics_base + 1})
        self.add("webhooks", "services.webhooks", {"HERALD_METRICS_PORT": self.metrics_base + 2})

    def add_sender(self, index: int) -> None:
        port = self.metrics_base + 10 + index
        # Every sender serves both channels unless the environment says otherwise.
        channels = self.env.get("HERALD_SENDER_CHANNELS") or os.environ.get(
            "HERALD_SENDER_CHANNELS", SENDER_CHANNELS
        )
        extra: dict[str, str | int] = {
            "HERALD_METRICS_PORT": port,
            "HERALD_SENDER_CHANNELS": channels,
        }
        self.add(f"sender-{index + 1}", "services.sender", extra)

    def add(self, name: str, module: str, extra: dict[str, str | int]) -> None:
        # The local development stack: the one place a service accepts the README's example
        # signing key (the caller's environment may still say otherwise).
        marker = {"HERALD_DEV_STACK": "1"}
        env = {**os.environ, **marker, **self.env, **{k: str(v) for k, v in extra.items()}}
        self.services[name] = Service(name, module, env)

    def metrics_ports(self) -> dict[str, int]:
        return {
            name: int(s.env["HERALD_METRICS_PORT"])
            for name, s in self.services.items()
            if "HERALD_METRICS_PORT" in s.env
        }

    def start(self, name: str | None = None) -> None:
        """Start one service, or all that are not running."""
        for service in [self.services[name]] if name else self.services.values():
            if service.process and service.process.poll() is None:
                continue
            out: IO[bytes] | None = None
            if self.log_dir:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{service.name}.log", "ab")  # noqa: SIM115
            service.log = out
            service.process = subprocess.Popen(
                [sys.executable, "-m", service.module],
                env=service.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )
            service.started_at = time.monotonic()

    def supervise(self, now: float | None = None) -> None:
        """Start again every service that has exited, once its restart delay has passed."""
        now = time.monotonic() if now is None else now
        for service in self.services.values():
            process = service.process
            if process is None or process.poll() is None:
                continue
            if service.restart_at is None:
                lived = now - service.started_at
                service.quick_deaths = service.quick_deaths + 1 if lived < STABLE_AFTER_S else 1
                delay = restart_delay(service.quick_deaths)
                service.restart_at = now + delay
                say(
                    f"{service.name} (pid {process.pid}) exited with {process.returncode} "
                    f"after {lived:.1f}s; starting it again in {delay:.0f}s"
                )
            elif now >= service.restart_at:
                if service.log:
                    service.log.close()
                self.start(service.name)
                service.restart_at = None
                service.restarts += 1
                assert service.process is not None
                say(f"{service.name} started again (pid {service.process.pid})")

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self.services.values() if s.process]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one service by its PID and wait for it to end."""
        process = self.services[name].process
        if process and process.poll() is None:
            process.send_signal(sig)
            process.wait(timeout=30)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every service, then SIGKILL what is still running after the timeout."""
        running = [
            s.process for s in self.services.values() if s.process and s.process.poll() is None
        ]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for service in self.services.values():
            if service.log:
                service.log.close()
                service.log = None

    def is_ready(self, api_url: str) -> bool:
        """The API answers /readyz with 200 (database and broker reachable)."""
        try:
            return requests.get(f"{api_url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, api_url: str, timeout: float = 60.0) -> None:
        """Wait until the API answers /readyz with 200 (database and broker reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services.values():
                if service.process and service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
            if self.is_ready(api_url):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the API at {api_url} was not ready within {timeout:.0f}s")


def ensure_env_file(path: Path) -> dict[str, str]:
    """Create .env with a fresh write token on first run, unless the environment gives tokens."""
    values = read_env_file(path)
    if "HERALD_API_TOKENS" not in values and "HERALD_API_TOKENS" not in os.environ:
        token = secrets.token_urlsafe(24)
        with path.open("a") as fh:
            fh.write(f"HERALD_API_TOKENS={token}:write\n")
        values["HERALD_API_TOKENS"] = f"{token}:write"
    return values


def with_receipts_token(tokens: str) -> tuple[str, str]:
    """HERALD_API_TOKENS with a fresh token of scope receipts added, and that token.

    The sandbox gateway posts its receipts with it; made per run, like the first .env token.
    """
    token = secrets.token_urlsafe(24)
    return ",".join(filter(None, [tokens, f"{token}:receipts"])), token


def first_write_token(settings: Settings) -> str:
    return next(t for t, scope in settings.api_tokens.items() if scope == "write")


class StopRequested:
    """Set by SIGINT or SIGTERM; the supervising loop checks it between rounds."""

    def __init__(self) -> None:
        self.signal: int | None = None
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signal = signum

    def __bool__(self) -> bool:
        return self.signal is not None


def print_urls(stack: Stack, settings: Settings, api_url: str) -> None:
    print(f"\nHerald is running.\n  API      {api_url}/api/v1\n  docs     {api_url}/docs")
    print(f"  OpenAPI  {api_url}/openapi.json\n  metrics  {api_url}/metrics (api)")
    for name, port in stack.metrics_ports().items():
        print(f"           http://127.0.0.1:{port}/metrics ({name})")
    kept = "" if "HERALD_API_TOKENS" in os.environ else "; kept in .env"
    print(f"  token    {first_write_token(settings)} (write{kept})")
    for line in describe(settings.amqp_url):
        print(line)
    print("Services that exit are started again. Press Ctrl-C to stop.\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Start Herald's services on this machine.")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args()

    stop = StopRequested()
    env_file = ROOT / ".env"
    ensure_env_file(env_file)
    settings = Settings.from_env(env_file=env_file)
    upgrade(settings.database_url)
    ensure_plugins(settings.amqp_url)
    stack = Stack(
        env={}, senders=args.senders, log_dir=args.log_dir, metrics_base=settings.metrics_port_base
    )
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    stack.start()
    for service in stack.services.values():
        assert service.process is not None
        say(f"{service.name} started (pid {service.process.pid})")
    try:
        is_ready = False
        while not stop:
            stack.supervise()
            if not is_ready and stack.is_ready(api_url):
                is_ready = True
                print_urls(stack, settings, api_url)
            time.sleep(0.2)
        say(f"signal {stop.signal}: stopping every service")
    finally:
        stack.stop()
        say("stopped")


if __name__ == "__main__":
    main()
