"""Run Herald's services as local processes: `make run`, the end-to-end tests, demo and bench.

Each service is started with the same module and environment that docker-compose uses;
processes are stopped by their own PIDs, gently first.
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

from shared.config import Settings, read_env_file
from shared.db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
METRICS_PORT_BASE = 9100  # scheduler; stats is base + 1, sender i is base + 10 + i
SENDER_CHANNELS = "http,email"


@dataclass
class Service:
    name: str
    module: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None


@dataclass
class Stack:
    """api, scheduler, N senders and stats as child processes sharing one environment."""

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

    def add_sender(self, index: int) -> None:
        port = self.metrics_base + 10 + index
        # Every sender serves both channels unless the environment says otherwise.
        channels = self.env.get("HERALD_SENDER_CHANNELS") or os.environ.get(
            "HERALD_SENDER_CHANNELS", SENDER_CHANNELS
        )
        extra = {"HERALD_METRICS_PORT": port, "HERALD_SENDER_CHANNELS": channels}
        self.add(f"sender-{index + 1}", "services.sender", extra)

    def add(self, name: str, module: str, extra: dict[str, str | int]) -> None:
        env = {**os.environ, **self.env, **{k: str(v) for k, v in extra.items()}}
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

    def stop(self, timeout: float = 20.0) -> None:
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

    def wait_ready(self, api_url: str, timeout: float = 60.0) -> None:
        """Wait until the API answers /readyz with 200 (database and broker reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services.values():
                if service.process and service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
            try:
                if requests.get(f"{api_url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the API at {api_url} was not ready within {timeout:.0f}s")


def ensure_env_file(path: Path) -> dict[str, str]:
    """Create .env with a fresh write token on first run; return its values."""
    values = read_env_file(path)
    if "HERALD_API_TOKENS" not in values:
        token = secrets.token_urlsafe(24)
        with path.open("a") as fh:
            fh.write(f"HERALD_API_TOKENS={token}:write\n")
        values["HERALD_API_TOKENS"] = f"{token}:write"
    return values


def first_write_token(settings: Settings) -> str:
    return next(t for t, scope in settings.api_tokens.items() if scope == "write")


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="Start Herald's services on this machine.")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args()

    env_file = ROOT / ".env"
    ensure_env_file(env_file)
    settings = Settings.from_env(env_file=env_file)
    upgrade(settings.database_url)
    stack = Stack(env={}, senders=args.senders, log_dir=args.log_dir)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    signal.signal(signal.SIGTERM, raise_interrupt)
    stack.start()
    try:
        stack.wait_ready(api_url)
        print(f"\nHerald is running.\n  API      {api_url}/api/v1\n  docs     {api_url}/docs")
        print(f"  OpenAPI  {api_url}/openapi.json\n  metrics  {api_url}/metrics (api)")
        for name, port in stack.metrics_ports().items():
            print(f"           http://127.0.0.1:{port}/metrics ({name})")
        print(f"  token    {first_write_token(settings)} (write; kept in .env)")
        print("Press Ctrl-C to stop.\n", flush=True)
        while all(p.poll() is None for p in stack.processes()):
            time.sleep(0.5)
        print("a service exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
