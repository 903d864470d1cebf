"""An operator's view: follow a campaign by its request id, no secret in any log, clean metrics,
and a real Prometheus that answers every dashboard query from the running stack.

The stack runs on a database, vhost and broker user of this module's own, with distinctive
secret values, so a leak of any of them can be found by a plain search of the logs.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from deploy.observe import is_ready, scrape_config, stack_targets, start_prometheus, stop
from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.engine import make_engine
from shared.db.migrate import rebuild
from tests.support.api_client import ApiClient
from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").rglob("*.json"))
VHOST = "herald_e2e_obs"
SUFFIX = secrets.token_hex(4)
SECRETS = {
    "database password": f"obs-db-pw-{SUFFIX}",
    "broker password": f"obs-amqp-pw-{SUFFIX}",
    "API token": f"obs-api-token-{SUFFIX}",
    "gateway token": f"obs-gw-token-{SUFFIX}",
    "SMTP password": f"obs-smtp-pw-{SUFFIX}",
    "signing key": f"obs-signing-key-{SUFFIX}",
}
BROKER_USER = f"herald_obs_{SUFFIX}"
SMTP_USER = "herald-summary"
# Queue panels read RabbitMQ's own plugin, which this machine's broker does not run.
FROM_RABBITMQ = {
    "Messages ready by queue",
    "Messages unacknowledged by queue",
    "Consumers by queue",
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)


class Mailbox:
    """aiosmtpd handler keeping the messages it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    is_valid = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SECRETS["SMTP password"].encode(),
    )
    return AuthResult(success=is_valid, handled=False)


@dataclass
class Faults:
    """The gateway's script: some messages fail for good, some once, some for ever."""

    failing_from: int | None = None
    permanent: set[int] = field(default_factory=set)
    transient_once: set[int] = field(default_factory=set)

    def __call__(self, message_id: int, attempt: int) -> int | None:
        if self.failing_from is not None and message_id >= self.failing_from:
            return 503
        if message_id % 17 == 0:
            self.permanent.add(message_id)
            return 400
        if message_id % 13 == 0 and attempt == 1:
            self.transient_once.add(message_id)
            return 500
        return None


@dataclass
class Observed:
    stack: Stack
    api: ApiClient
    api_url: str
    log_dir: Path
    faults: Faults
    mailbox: Mailbox
    database_url: str

    def logs(self) -> dict[str, str]:
        return {p.stem: p.read_text() for p in sorted(self.log_dir.glob("*.log"))}

    def metrics_urls(self) -> dict[str, str]:
        urls = {"api": f"{self.api_url}/metrics"}
        for name, port in self.stack.metrics_ports().items():
            urls[name] = f"http://127.0.0.1:{port}/metrics"
        return urls


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """api, scheduler, two senders and stats with distinctive secrets, a gateway, a mail sink."""
    database_url = (
        f"postgresql://postgres:{SECRETS['database password']}@127.0.0.1:5432/herald_e2e_obs"
    )
    rebuild(database_url)
    rabbitmqctl("delete_vhost", VHOST, check=False)
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("add_user", BROKER_USER, SECRETS["broker password"])
    rabbitmqctl("set_permissions", "-p", VHOST, BROKER_USER, ".*", ".*", ".*")
    faults = Faults()
    gateway = GatewayServer(token=SECRETS["gateway token"], script=faults).start()
    mailbox = Mailbox()
    smtp = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=check_login,
        auth_require_tls=False,
    )
    smtp.start()
    api_port = free_port()
    env = {
        "HERALD_DATABASE_URL": database_url,
        "HERALD_AMQP_URL": (
            f"amqp://{BROKER_USER}:{urllib.parse.quote(SECRETS['broker password'])}"
            f"@127.0.0.1:5672/{VHOST}"
        ),
        "HERALD_API_TOKENS": f"{SECRETS['API token']}:write",
        "HERALD_API_PORT": str(api_port),
        "HERALD_GATEWAY_URL": gateway.url,
        "HERALD_GATEWAY_TOKEN": SECRETS["gateway token"],
        "HERALD_SIGNING_KEY": SECRETS["signing key"],
        "HERALD_SENDER_CHANNELS": "http",
        "HERALD_SMTP_HOST": "127.0.0.1",
        "HERALD_SMTP_PORT": str(smtp.port),
        "HERALD_SMTP_USER": SMTP_USER,
        "HERALD_SMTP_PASSWORD": SECRETS["SMTP password"],
        "HERALD_SUMMARY_TO": "ops@example.test",
        "HERALD_SUMMARY_HOUR": "0",
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000",
    }
    log_dir = Path(tmp_path_factory.mktemp("obs-logs"))
    stack = Stack(env=env, senders=2, log_dir=log_dir, metrics_base=free_port_block(16))
    api_url = f"http://127.0.0.1:{api_port}"
    stack.start()
    try:
        stack.wait_ready(api_url)
        api = ApiClient(api_url, SECRETS["API token"])
        yield Observed(stack, api, api_url, log_dir, faults, mailbox, database_url)
    finally:
        stack.stop()
        gateway.stop()
        smtp.stop()
        rabbitmqctl("delete_vhost", VHOST, check=False)
        rabbitmqctl("delete_user", BROKER_USER, check=False)
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-2000:]}")


@dataclass(frozen=True)
class Traced:
    campaign_id: int
    request_id: str
    stats: dict[str, Any]


def import_clients(api: ApiClient, count: int, tag: str, first: int) -> None:
    clients = [
        {
            "phone": f"+7916{first + i:07d}",
            "tags": [tag],
            "timezone": "Europe/Moscow",
            "attributes": {"name": f"Client {i}"},
        }
        for i in range(count)
    ]
    report = api.import_clients(clients)
    assert report["rejected"] == 0


def launch(api: ApiClient, tag: str, request_id: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    body = {
        "name": f"{tag} campaign",
        "channel": "http",
        "text": "Hello {{ name }}",
        "filter": {"tags": [tag], "operator_codes": []},
        "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
    }
    headers = {"X-Request-ID": request_id}
    response = api.http.post(f"{api.base}/campaigns", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == request_id
    return response.json()


@pytest.fixture(scope="module")
def traced(observed: Observed) -> Traced:
    """One campaign, launched with a request id of our choosing, run to completion."""
    import_clients(observed.api, 300, "traced", 1000000)
    request_id = f"trace-{SUFFIX}"
    campaign = launch(observed.api, "traced", request_id)

    final = wait_until(
        lambda: (s := observed.api.stats(campaign["id"]))["status"] == "completed" and s,
        timeout=60,
    )
    return Traced(campaign["id"], request_id, final)


def test_one_request_id_finds_the_campaign_in_every_services_log(observed, traced):
    assert traced.stats["sent"] + traced.stats["failed"] == 300
    assert traced.stats["failed"] == len(observed.faults.permanent) > 0
    assert observed.faults.transient_once, "no delivery was retried"

    logs = observed.logs()

    found = {name for name, text in logs.items() if traced.request_id in text}
    assert {"api", "scheduler", "stats"} <= found
    assert any(name.startswith("sender-") for name in found), found
    # One line per batch or event, not per message.
    mentions = sum(text.count(traced.request_id) for text in logs.values())
    assert mentions < 300


def test_every_log_line_is_json_with_the_fields_operators_search(observed, traced):
    for name, text in observed.logs().items():
        for line in text.splitlines():
            entry = json.loads(line)
            assert {"timestamp", "level", "service", "message"} <= set(entry), (name, line)


def test_no_secret_appears_in_any_log_or_metrics(observed, traced):
    wait_until(lambda: observed.mailbox.messages, timeout=30)  # the SMTP password was used
    exposed = "\n".join(observed.logs().values())
    for url in observed.metrics_urls().values():
        exposed += requests.get(url, timeout=10).text

    for what, value in SECRETS.items():
        for form in {value, urllib.parse.quote(value, safe="")}:
            assert form not in exposed, f"the {what} leaks"


def test_the_daily_summary_goes_out_through_the_authenticated_relay(observed, traced):
    (mail,) = wait_until(lambda: observed.mailbox.messages, timeout=30)

    assert b"Subject: Herald daily summary" in mail


def test_every_metrics_endpoint_passes_promtool_and_answers_healthz(observed, traced):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does)"

    for name, url in observed.metrics_urls().items():
        scrape = requests.get(url, timeout=10)
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=scrape.text, capture_output=True, text=True
        )

        assert scrape.status_code == 200
        assert lint.returncode == 0 and lint.stdout + lint.stderr == "", (name, lint.stdout)
        assert 'campaign_id="' not in scrape.text or name == "stats"
        if name != "api":
            assert requests.get(url.replace("/metrics", "/healthz"), timeout=10).status_code == 200


def test_every_herald_metric_is_documented_in_the_readme(observed, traced):
    readme = (ROOT / "README.md").read_text()
    families = {
        line.split()[2]
        for url in observed.metrics_urls().values()
        for line in requests.get(url, timeout=10).text.splitlines()
        if line.startswith("# TYPE herald_")
    }

    undocumented = [
        family
        for family in sorted(families)
        if not family.endswith("_created") and not is_documented(family, readme)
    ]

    assert len(families) > 20
    assert undocumented == []


def is_documented(family: str, readme: str) -> bool:
    """Named in full, or as `_rest` after its service's prefix in a shared table row."""
    rest = family.split("_", 2)[2]
    return f"`{family}`" in readme or f"`_{rest}`" in readme


# --- a real Prometheus over the running stack ------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(observed: Observed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's prometheus on a free loopback port, scraping the stack every second."""
    targets = stack_targets(observed.stack, api=observed.api_url.removeprefix("http://"))
    port = free_port()
    home = Path(tmp_path_factory.mktemp("prometheus"))
    process = start_prometheus(home, scrape_config(targets, interval="1s"), port, retention="1h")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: is_ready(url, process), timeout=30)
        yield url
    finally:
        stop(process)


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def dashboard_targets() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((panel["title"], expr))
    return found


def panels_without_data(prometheus: str) -> list[tuple[str, str]]:
    """Dashboard queries of Herald's own metrics that return nothing (each must parse)."""
    return [
        (title, expr)
        for title, expr in dashboard_targets()
        if not query(prometheus, expr) and title not in FROM_RABBITMQ
    ]


def rule_health(prometheus: str) -> dict[str, str]:
    """Each loaded alert's evaluation health: ok, err or unknown (not evaluated yet)."""
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}


def alert_exprs() -> list[tuple[str, str]]:
    return [
        (rule["alert"], rule["expr"])
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def deliver_one(database_url: str, campaign_id: int) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE message SET status = 'delivered', delivered_at = now()"
                    " WHERE id = (SELECT min(id) FROM message WHERE campaign_id = :c)"
                ),
                {"c": campaign_id},
            )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_prometheus_answers_every_dashboard_panel_and_alert(observed, traced, prometheus):
    # A campaign that keeps failing stays running, so the per-campaign panels have a subject.
    messages = observed.api.pages(f"/campaigns/{traced.campaign_id}/messages")
    observed.faults.failing_from = max(m["id"] for m in messages) + 1
    import_clients(observed.api, 50, "stuck", 2000000)
    stuck = launch(observed.api, "stuck", f"stuck-{SUFFIX}")
    try:
        wait_until(lambda: observed.api.stats(stuck["id"])["status"] == "running", timeout=30)
        # The gateway sends no receipts here: one is written as the receipts endpoint would,
        # so the delivery rate panel has a subject.
        deliver_one(observed.database_url, stuck["id"])
        # A notification, so the notification panels have a subject too.
        code = {"channel": "http", "to": {"phone": "+79165550199"}, "text": "Code 1"}
        observed.api.request("POST", "/notifications", expect=202, json=code)
        # api, scheduler, stats, webhooks and the two senders
        up = 'count(up{job=~"herald-.*"} == 1) == 6'
        wait_until(lambda: query(prometheus, up), timeout=30)
        # A rate needs two scrapes after its series appeared: poll until every panel answers.
        try:
            wait_until(lambda: not panels_without_data(prometheus), timeout=30)
        except AssertionError:
            assert panels_without_data(prometheus) == []
        for _name, expr in alert_exprs():
            query(prometheus, expr)  # parses and evaluates; firing or not
        health = wait_until(lambda: (h := rule_health(prometheus)) and "unknown" not in h and h, 30)
        assert health == {name: "ok" for name, _ in alert_exprs()}
    finally:
        observed.api.request("POST", f"/campaigns/{stuck['id']}/cancel")
