"""Test hosts on one machine: network namespaces joined to a bridge by veth links.

Each host has only its loopback and one link to the bridge; the bridge's address on the
machine's side is where the brokers, PostgreSQL and the gateway listen for the hosts. No
route leads anywhere else, so no traffic leaves the machine. Everything made is removed
by `Network.remove`, by name.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def ip(*args: str, namespace: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    command = [*prefix, "ip", *args] if namespace else ["ip", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no route of this machine covers."""
    routes = ip("-4", "route", "show", "table", "all")
    used = [
        ipaddress.ip_network(word, strict=False)
        for line in routes.splitlines()
        for word in line.split()[:1]
        if word[0].isdigit()
    ]
    for _ in range(200):
        second, third = random.randint(100, 199), random.randint(0, 255)
        subnet = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test hosts")


@dataclass
class Host:
    """One test host: a namespace with an address on the bridge, and the processes run on it."""

    name: str
    namespace: str
    link: str  # the veth end on the machine's side: down cuts the host off
    address: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def run(self, label: str, module: str, env: dict[str, str], log_dir: Path) -> None:
        """Start `python -m module` on this host, its output in log_dir/<host>-<label>.log."""
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{self.name}-{label}.log", "ab")  # noqa: SIM115
        self.logs.append(log)
        # `ip netns exec` enters the namespace and execs python: the PID is the service's.
        self.processes[label] = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-m", module],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def cut(self) -> None:
        ip("link", "set", self.link, "down")

    def restore(self) -> None:
        ip("link", "set", self.link, "up")

    def kill_all(self) -> list[int]:
        """SIGKILL every process of this host, as a power cut would; returns their PIDs."""
        pids = []
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                pids.append(process.pid)
        for process in self.processes.values():
            process.wait(timeout=30)
        return pids

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()
        self.logs.clear()

    def exited(self) -> dict[str, int | None]:
        return {
            label: process.returncode
            for label, process in self.processes.items()
            if process.poll() is not None
        }


@dataclass
class Network:
    """A bridge on the machine and hosts linked to it, each in its own namespace."""

    subnet: ipaddress.IPv4Network = field(default_factory=free_subnet)
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"hbr{self.tag}"

    @property
    def gateway_address(self) -> str:
        """The machine's address on the bridge: where the hosts reach the shared services."""
        return str(self.subnet.network_address + 1)

    def create(self, names: list[str]) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway_address}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for index, name in enumerate(names, start=1):
            namespace = f"herald-{self.tag}-{name}"
            link = f"hv{self.tag}{index}"
            address = str(self.subnet.network_address + 10 + index)
            ip("netns", "add", namespace)
            self.hosts[name] = Host(name, namespace, link, address)
            ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", link, "master", self.bridge)
            ip("link", "set", link, "up")
            cidr = f"{address}/{self.subnet.prefixlen}"
            ip("addr", "add", cidr, "dev", "eth0", namespace=namespace)
            ip("link", "set", "eth0", "up", namespace=namespace)
            ip("link", "set", "lo", "up", namespace=namespace)

    def remove(self) -> None:
        for host in self.hosts.values():
            host.stop_all()
            for command in (("link", "del", host.link), ("netns", "del", host.namespace)):
                try:
                    ip(*command)
                except RuntimeError:
                    pass  # already gone with its peer or namespace
        try:
            ip("link", "del", self.bridge)
        except RuntimeError:
            pass
