"""ensure_plugins() on this machine's broker: the management API and the metrics answer."""

from __future__ import annotations

import subprocess

import requests

from deploy.broker_ui import MANAGEMENT_PORT, PLUGINS, PROMETHEUS_PORT, ensure_plugins
from tests.support.waiting import wait_until

LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"


def answers(url: str, **kwargs: object) -> requests.Response | None:
    try:
        response = requests.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException:
        return None
    return response if response.status_code == 200 else None


def enabled_file_listing() -> str:
    return subprocess.run(
        ["rabbitmq-plugins", "-q", "list", "--enabled", "--minimal"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_after_ensure_plugins_the_management_api_and_metrics_answer_and_again_is_a_no_op():
    ensure_plugins(LOCAL_BROKER)

    overview = wait_until(
        lambda: answers(
            f"http://127.0.0.1:{MANAGEMENT_PORT}/api/overview", auth=("guest", "guest")
        ),
        timeout=30,
    )
    metrics = wait_until(lambda: answers(f"http://127.0.0.1:{PROMETHEUS_PORT}/metrics"), timeout=30)
    assert overview.json()["rabbitmq_version"]
    assert "rabbitmq_" in metrics.text
    assert set(PLUGINS) <= set(enabled_file_listing().split())

    assert ensure_plugins(LOCAL_BROKER) == []
