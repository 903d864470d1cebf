"""`python -m deploy.observe` over metrics endpoints the test serves: ready, valid, stops on ^C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from deploy.observe import is_ready
from shared.metrics import serve
from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HERALD_JOBS = {"herald-api", "herald-scheduler", "herald-stats", "herald-sender", "herald-webhooks"}


@pytest.fixture
def stack_ports() -> Iterator[dict[str, int]]:
    """Metrics servers where `make run` would put the API, scheduler, stats, webhooks and one
    sender."""
    base = free_port_block(16)
    ports = {
        "api": free_port(),
        "scheduler": base,
        "stats": base + 1,
        "webhooks": base + 2,
        "sender-1": base + 10,
    }
    servers = [serve(port, CollectorRegistry(), host="127.0.0.1") for port in ports.values()]
    yield {**ports, "base": base}
    for server in servers:
        assert server is not None
        server.shutdown()
        server.server_close()


def up_jobs(url: str) -> set[str]:
    reply = requests.get(f"{url}/api/v1/query", params={"query": "up == 1"}, timeout=5).json()
    return {series["metric"]["job"] for series in reply["data"]["result"]}


def test_observe_runs_prometheus_over_the_stack_and_stops_on_ctrl_c(stack_ports, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HERALD_API_PORT": str(stack_ports["api"]),
        "HERALD_METRICS_PORT_BASE": str(stack_ports["base"]),
        "HERALD_PROMETHEUS_PORT": str(port),
        "HERALD_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    }
    command = [sys.executable, "-m", "deploy.observe", "--dir", str(tmp_path), "--senders", "1"]
    process = subprocess.Popen(
        [*command, "--scrape-interval", "1s"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        wait_until(lambda: is_ready(url, process), timeout=30)
        scraped = wait_until(lambda: HERALD_JOBS <= (jobs := up_jobs(url)) and jobs, timeout=15)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0, output
    assert f"UI       {url}" in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/-/ready", timeout=5)
    assert HERALD_JOBS <= scraped
    config_file = tmp_path / "prometheus.yml"
    checked = subprocess.run(
        ["promtool", "check", "config", str(config_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    config = yaml.safe_load(config_file.read_text())
    assert config["rule_files"] == [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["rabbitmq"]["static_configs"] == [{"targets": ["127.0.0.1:15692"]}]
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert jobs["herald-sender"]["static_configs"] == [
        {"targets": [f"127.0.0.1:{stack_ports['sender-1']}"]}
    ]
