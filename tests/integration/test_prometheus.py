"""Prometheus files pass promtool; dashboards' queries parse; the custom collectors lint clean."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import insert, update

from services.stats.collector import CampaignCollector
from shared.db.models import Campaign, CampaignProgress, Outbox
from shared.metrics import serve
from shared.outbox import OutboxBacklog
from tests.support.factories import make_campaign

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").rglob("*.json"))
# What Grafana substitutes before sending a query; any valid duration parses the same.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return subprocess.run(
        [binary, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's variables filled in) of every dashboard target."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((panel["title"], expr))
    return found


def test_prometheus_config_and_its_rule_files_are_valid():
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_every_service_and_rabbitmq_is_scraped():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert {"herald-api", "herald-scheduler", "herald-sender", "herald-stats"} <= set(jobs)
    rabbit_targets = [
        target
        for job in jobs.values()
        for static in job.get("static_configs", [])
        for target in static["targets"]
        if target.endswith(":15692")
    ]
    assert len(rabbit_targets) == 2
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"


def test_alert_rules_pass_promtool_and_their_unit_tests():
    rule_files = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    test_files = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))

    checked = promtool("check", "rules", *rule_files)
    tested = promtool("test", "rules", *test_files)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_and_a_runbook():
    rules = [
        rule
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    tested = {
        case["alertname"]
        for path in (PROMETHEUS_DIR / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }

    alerts = {rule["alert"] for rule in rules}

    assert alerts == tested
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{alert}`" in readme for alert in alerts)


def test_every_dashboard_query_parses(tmp_path):
    exprs = dashboard_exprs()
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))

    result = promtool("check", "rules", str(path))

    assert len(exprs) >= 10
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_query_would_be_caught(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum(rate(x[5m])"}]}]}
        )
    )

    assert promtool("check", "rules", str(path)).returncode != 0


def started_campaign(engine, status: str, **progress: int) -> int:
    campaign_id = make_campaign(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status=status, started_at=now - dt.timedelta(minutes=5))
        )
        conn.execute(
            update(CampaignProgress)
            .where(CampaignProgress.campaign_id == campaign_id)
            .values(total=sum(progress.values()), **progress)
        )
    return campaign_id


def scrape(collector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def samples(text: str, name: str) -> dict[str, float]:
    """{label text: value} of one metric in an exposition."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_campaign_series_exist_only_for_running_and_paused_campaigns(engine):
    running = started_campaign(engine, "running", sent=40, failed=2, pending=50, queued=8)
    paused = started_campaign(engine, "paused", sent=5, pending=5)
    done = started_campaign(engine, "completed", sent=10)

    text = scrape(CampaignCollector(engine))

    progress = samples(text, "herald_stats_campaign_messages")
    assert progress[f'{{campaign_id="{running}",status="sent"}}'] == 40
    assert progress[f'{{campaign_id="{running}",status="pending"}}'] == 50
    assert progress[f'{{campaign_id="{paused}",status="pending"}}'] == 5
    assert not any(f'campaign_id="{done}"' in labels for labels in progress)
    assert samples(text, "herald_stats_campaign_paused") == {
        f'{{campaign_id="{running}"}}': 0,
        f'{{campaign_id="{paused}"}}': 1,
    }
    totals = samples(text, "herald_stats_active_messages")
    assert totals['{status="sent"}'] == 45
    campaigns = samples(text, "herald_stats_campaigns")
    assert (campaigns['{status="running"}'], campaigns['{status="completed"}']) == (1, 1)


def test_delivery_rate_is_exported_for_running_campaigns_with_receipts(engine):
    low = started_campaign(engine, "running", sent=10, delivered=60, undelivered=30)
    good = started_campaign(engine, "running", delivered=99, undelivered=1)
    no_receipts = started_campaign(engine, "running", sent=50, pending=50)
    paused = started_campaign(engine, "paused", sent=5, delivered=1, undelivered=9)

    text = scrape(CampaignCollector(engine, alert_share=0.9))

    assert samples(text, "herald_stats_campaign_delivery_rate") == {
        f'{{campaign_id="{low}"}}': 0.6,
        f'{{campaign_id="{good}"}}': 0.99,
    }
    assert not any(
        f'campaign_id="{cid}"' in labels
        for cid in (no_receipts, paused)
        for labels in samples(text, "herald_stats_campaign_delivery_rate")
    )
    assert samples(text, "herald_stats_delivery_rate_alert_share") == {"": 0.9}
    progress = samples(text, "herald_stats_campaign_messages")
    assert progress[f'{{campaign_id="{low}",status="delivered"}}'] == 60
    assert progress[f'{{campaign_id="{low}",status="undelivered"}}'] == 30


def test_per_campaign_series_are_capped(engine):
    for _ in range(4):
        started_campaign(engine, "running", pending=1)

    text = scrape(CampaignCollector(engine, limit=3))

    assert len(samples(text, "herald_stats_campaign_recipients")) == 3
    assert samples(text, "herald_stats_campaigns")['{status="running"}'] == 4


def test_outbox_backlog_counts_unpublished_events_and_the_oldest_age(engine):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    event = {"exchange": "campaigns", "routing_key": "campaign.created", "payload": {}}
    with engine.begin() as conn:
        conn.execute(insert(Outbox).values(**event))
        conn.execute(insert(Outbox).values(**event, created_at=old))
        conn.execute(insert(Outbox).values(**event, created_at=old, published_at=old))

    text = scrape(OutboxBacklog(engine))

    assert samples(text, "herald_api_outbox_backlog") == {"": 2}
    assert samples(text, "herald_api_outbox_oldest_age_seconds")[""] >= 180


def test_collectors_output_passes_promtool_lint(engine):
    started_campaign(engine, "running", sent=1, pending=1, delivered=1)
    registry = CollectorRegistry()
    registry.register(CampaignCollector(engine))
    registry.register(OutboxBacklog(engine))

    result = promtool("check", "metrics", stdin=generate_latest(registry))

    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def metrics_server():
    server = serve(free_port(), CollectorRegistry(), host="127.0.0.1")
    assert server is not None
    yield server
    server.shutdown()
    server.server_close()


def test_metrics_port_answers_healthz_and_metrics(metrics_server):
    base = f"http://127.0.0.1:{metrics_server.server_port}"

    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as health:
        assert (health.status, health.read()) == (200, b"ok\n")
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as metrics:
        assert metrics.status == 200
        assert metrics.headers["Content-Type"].startswith("text/plain")
