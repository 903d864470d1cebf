"""RabbitMQ's management UI and Prometheus endpoint for `make run`: enable, then say where.

Only a broker on this machine is touched, and only when a plugin is not enabled yet:
`rabbitmq-plugins` acts on the local node, never on the one HERALD_AMQP_URL may name. With
several nodes listed (a cluster), each node's UI and metrics are named and none is touched.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.config import Settings, split_amqp_urls
from shared.messaging.connection import MANAGEMENT_PORT, PROMETHEUS_PORT, broker_hosts

PLUGINS = ("rabbitmq_management", "rabbitmq_prometheus")
CLI_TIMEOUT_S = 120.0


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} broker: {message}", file=sys.stderr, flush=True)


def broker_host(amqp_url: str) -> str:
    """The first node's host."""
    return broker_hosts(amqp_url)[0]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local(amqp_url: str) -> bool:
    """True when the AMQP URL names this machine by a loopback name or address."""
    return is_loopback(broker_host(amqp_url))


def active_plugins(status: dict[str, Any]) -> set[str]:
    """Plugins running on the node, from `rabbitmqctl status --formatter=json`."""
    return set(status["active_plugins"])


def plugins_to_enable(active: set[str]) -> list[str]:
    return [name for name in PLUGINS if name not in active]


def exposed_listeners(status: dict[str, Any]) -> list[str]:
    """The node's HTTP listeners (UI, API, metrics) bound beyond loopback, as address:port."""
    return [
        f"{listener['interface']}:{listener['port']}"
        for listener in status["listeners"]
        if listener["protocol"].startswith("http") and not is_loopback(listener["interface"])
    ]


def node_status() -> dict[str, Any]:
    return json.loads(run_cli("rabbitmqctl", "status", "--formatter=json"))


def run_cli(command: str, *args: str) -> str:
    done = subprocess.run(
        [command, "-q", *args], capture_output=True, text=True, check=True, timeout=CLI_TIMEOUT_S
    )
    return done.stdout


def ensure_plugins(amqp_url: str | None = None) -> list[str]:
    """Enable the management and Prometheus plugins on the local node; return those enabled.

    Does nothing, with a line saying why, when the broker is not local, the command is
    missing or the node does not answer: the stack runs without the UI.
    """
    url = Settings.from_env().amqp_url if amqp_url is None else amqp_url
    if len(split_amqp_urls(url)) > 1:
        say("HERALD_AMQP_URL lists several nodes: enable the plugins on each node yourself")
        return []
    if not is_local(url):
        say(f"{broker_host(url)} is not this machine: its plugins are left as they are")
        return []
    if not all(shutil.which(command) for command in ("rabbitmqctl", "rabbitmq-plugins")):
        say("rabbitmqctl or rabbitmq-plugins is not on PATH: the management UI is not enabled")
        return []
    try:
        missing = plugins_to_enable(active_plugins(node_status()))
        if missing:
            say(f"enabling {' '.join(missing)}")
            run_cli("rabbitmq-plugins", "enable", *missing)
            exposed = exposed_listeners(node_status())
            if exposed:
                say(
                    f"the UI and metrics listen on {', '.join(exposed)}; to keep them on "
                    "loopback set management.tcp.ip and prometheus.tcp.ip = 127.0.0.1 "
                    "in rabbitmq.conf"
                )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = exc.stderr or exc.stdout or ""
        detail = output.strip() if isinstance(output, str) else output.decode().strip()
        say(f"could not enable {' '.join(PLUGINS)}: {detail or exc}")
        return []
    return missing


def describe(amqp_url: str) -> list[str]:
    """Lines for `make run`: each node's management UI and metrics, and how to log in."""
    parts = urlsplit(split_amqp_urls(amqp_url)[0])
    user = unquote(parts.username or "guest")
    if user == "guest":
        login = "guest/guest, from loopback only"
    else:
        # The password stays in HERALD_AMQP_URL: these lines go to terminals and logs.
        login = f"{user} with the password in HERALD_AMQP_URL, given the management tag"
    lines = []
    for i, host in enumerate(broker_hosts(amqp_url)):
        lead = "  broker   " if i == 0 else "           "
        lines += [
            f"{lead}http://{host}:{MANAGEMENT_PORT}/ (RabbitMQ management; log in as {login})",
            f"           http://{host}:{PROMETHEUS_PORT}/metrics (rabbitmq)",
        ]
    return lines
