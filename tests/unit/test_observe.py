"""make observe's scrape config: the stack's loopback ports, the rules, the broker's two jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.observe import Targets, scrape_config, stack_targets
from deploy.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


def targets_by_job(config: dict) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }


def test_the_targets_are_the_ports_the_stack_gives_its_services() -> None:
    stack = Stack(env={}, senders=3, metrics_base=30000)

    targets = stack_targets(stack, api="127.0.0.1:8000", rabbitmq=("127.0.0.1:15692",))

    assert targets == Targets(
        api="127.0.0.1:8000",
        scheduler="127.0.0.1:30000",
        stats="127.0.0.1:30001",
        senders=("127.0.0.1:30010", "127.0.0.1:30011", "127.0.0.1:30012"),
        webhooks="127.0.0.1:30002",
        rabbitmq=("127.0.0.1:15692",),
    )


def test_every_job_of_prometheus_yml_scrapes_loopback_with_the_rules_by_absolute_path() -> None:
    stack = Stack(env={}, senders=2, metrics_base=30000)
    targets = stack_targets(stack, api="127.0.0.1:8000", rabbitmq=("127.0.0.1:15692",))

    config = scrape_config(targets)

    assert targets_by_job(config) == {
        "herald-api": ["127.0.0.1:8000"],
        "herald-scheduler": ["127.0.0.1:30000"],
        "herald-sender": ["127.0.0.1:30010", "127.0.0.1:30011"],
        "herald-stats": ["127.0.0.1:30001"],
        "herald-webhooks": ["127.0.0.1:30002"],
        "rabbitmq": ["127.0.0.1:15692"],
        "rabbitmq-queues": ["127.0.0.1:15692"],
    }
    assert not any("dns_sd_configs" in job for job in config["scrape_configs"])
    queues = next(j for j in config["scrape_configs"] if j["job_name"] == "rabbitmq-queues")
    assert queues["metrics_path"] == "/metrics/detailed"
    assert config["rule_files"] == [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]
    assert config["global"]["scrape_interval"] == "15s"


def test_without_a_broker_target_its_jobs_are_left_out_and_the_interval_can_change() -> None:
    targets = Targets(api="a:1", scheduler="s:2", stats="t:3", senders=("u:4",), webhooks="w:5")

    config = scrape_config(targets, interval="1s")

    assert set(targets_by_job(config)) == {
        "herald-api",
        "herald-scheduler",
        "herald-sender",
        "herald-stats",
        "herald-webhooks",
    }
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}


def test_a_job_renamed_in_prometheus_yml_is_refused_not_left_unscraped(tmp_path: Path) -> None:
    source = tmp_path / "prometheus.yml"
    text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    source.write_text(text.replace("job_name: herald-stats", "job_name: herald-counts"))
    targets = Targets(api="a:1", scheduler="s:2", stats="t:3", senders=("u:4",), webhooks="w:5")

    with pytest.raises(ValueError, match="herald-counts"):
        scrape_config(targets, source=source)


def test_every_node_of_a_cluster_is_a_broker_target() -> None:
    nodes = ("10.0.0.1:15692", "10.0.0.2:15692", "10.0.0.3:15692")
    targets = Targets(
        api="a:1", scheduler="s:2", stats="t:3", senders=("u:4",), webhooks="w:5", rabbitmq=nodes
    )

    jobs = targets.by_job()

    assert jobs["rabbitmq"] == list(nodes)
    assert jobs["rabbitmq-queues"] == list(nodes)
