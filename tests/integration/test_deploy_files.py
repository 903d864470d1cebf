"""docker-compose, Kubernetes, RabbitMQ and Grafana files: valid, and consistent with the code.

No Docker engine or cluster runs here, so each file is checked against its published schema
and against what the code really runs (deploy/stack.py, Settings, the topology).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any
from unittest import mock

import kubernetes_validate
import pytest
import yaml

from deploy.stack import Stack
from shared.config import Settings
from shared.domain import channels
from shared.domain.deliveries import KINDS, NOTIFICATION
from shared.messaging.topology import DEAD_QUEUE, build_topology, delivery_queue

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "deploy" / "k8s"
RABBITMQ_DIR = ROOT / "deploy" / "rabbitmq"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
KUBERNETES_VERSION = "1.30"
# Settings.channel_limits is parsed from two variables.
# Two fields are parsed from variables of other names.
PARSED_FIELDS = {
    "channel_limits": {"HERALD_CHANNEL_RATE_LIMITS", "HERALD_CHANNEL_WINDOW_LIMITS"},
    "gateway_routing": {"HERALD_GATEWAYS", "HERALD_ROUTES"},
}
SETTINGS_VARIABLES = {
    f"HERALD_{f.name.upper()}" for f in fields(Settings) if f.name not in PARSED_FIELDS
} | set().union(*PARSED_FIELDS.values())
HERALD_SERVICES = ("api", "scheduler", "sender", "stats")
# Unsafe with any default: the key anyone could forge opt-outs with, links to loopback.
OPERATOR_VARIABLES = ("HERALD_SIGNING_KEY", "HERALD_PUBLIC_URL")
# Services that sign or verify opt-out links.
LINK_SERVICES = ("api", "sender")
# Only the local stack marks itself; a deployment never does.
DEV_STACK = "HERALD_DEV_STACK"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def stack_services() -> dict[str, tuple[str, set[str]]]:
    """Service kind -> (module, HERALD_* names the local stack sets for it), as `make run` does."""
    # Without this process's own environment: only what the stack itself sets counts.
    with mock.patch.dict(os.environ, clear=True):
        stack = Stack(env={"HERALD_DATABASE_URL": "", "HERALD_AMQP_URL": ""}, senders=1)
    found = {}
    for name, service in stack.services.items():
        kind = name.split("-")[0]
        variables = {k for k in service.env if k.startswith("HERALD_") and k != DEV_STACK}
        found[kind] = (service.module, variables)
    return found


def k8s_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def k8s_by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


# --- docker-compose ---------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_modules_and_variables_make_run_uses():
    services = compose()["services"]

    for kind, (module, variables) in stack_services().items():
        service = services[kind]
        assert service["command"] == ["python", "-m", module]
        assert variables <= set(service["environment"]), (kind, variables)


def test_compose_sets_only_variables_herald_reads():
    services = compose()["services"]

    for kind in HERALD_SERVICES:
        names = {n for n in services[kind]["environment"] if n.startswith("HERALD_")}
        assert names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES


def test_compose_refuses_to_start_without_the_operators_signing_key_and_public_url():
    services = compose()["services"]

    for kind in HERALD_SERVICES:
        environment = services[kind]["environment"]
        for variable in OPERATOR_VARIABLES:
            # ${VAR:?message}: compose stops with the message when VAR is unset or empty.
            assert re.fullmatch(
                rf"\$\{{{variable}:\?[^}}]*{variable}[^}}]*\}}", environment[variable]
            )
        assert DEV_STACK not in environment


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose on this machine",
)
def test_docker_compose_config_fails_naming_the_missing_variable():
    env = {k: v for k, v in os.environ.items() if k not in OPERATOR_VARIABLES}
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        env=env,
        cwd=ROOT / "deploy",  # away from a developer's .env beside the compose file
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "HERALD_SIGNING_KEY" in result.stderr or "HERALD_PUBLIC_URL" in result.stderr


@pytest.mark.parametrize("module", [f"services.{kind}" for kind in LINK_SERVICES])
def test_a_service_that_signs_links_will_not_start_on_the_readmes_example_key(module, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env["PYTHONPATH"] = str(ROOT)

    result = subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        cwd=tmp_path,  # no .env
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"herald {module.split('.')[1]}: configuration error: HERALD_SIGNING_KEY"
    )


def test_senders_scale_and_every_service_waits_for_healthy_dependencies():
    services = compose()["services"]

    sender = services["sender"]
    assert "container_name" not in sender and "ports" not in sender
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            else:
                assert (dependency, rule["condition"]) == (
                    "migrate",
                    "service_completed_successfully",
                )


def test_compose_mounts_files_that_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_ports_compose_serves_metrics_on():
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    sender_sd = next(j for j in config["scrape_configs"] if j["job_name"] == "herald-sender")

    api_port = services["api"]["environment"]["HERALD_API_PORT"]
    metrics_port = services["scheduler"]["environment"]["HERALD_METRICS_PORT"]
    assert {f"api:{api_port}", f"scheduler:{metrics_port}", f"stats:{metrics_port}"} <= targets
    assert sender_sd["dns_sd_configs"][0] == {
        "names": ["sender"],
        "type": "A",
        "port": int(metrics_port),
        "refresh_interval": "15s",
    }


# --- Kubernetes --------------------------------------------------------------------------


def test_kubernetes_manifests_match_the_kubernetes_schemas():
    checked = 0
    for doc in k8s_documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: no bundled schema, checked field by field below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1

    assert checked >= 15


def test_a_schema_mistake_in_a_manifest_is_caught():
    deployment = dict(k8s_by_kind("Deployment")["herald-sender"])
    deployment["spec"] = {**deployment["spec"], "replica": 3}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_sources(deployment: dict[str, Any], kind: str) -> list[str]:
    key = "configMapRef" if kind == "ConfigMap" else "secretRef"
    return [src[key]["name"] for src in container(deployment).get("envFrom", []) if key in src]


def test_each_service_has_a_deployment_config_map_and_secret_with_known_variables():
    deployments = k8s_by_kind("Deployment")
    config_maps = k8s_by_kind("ConfigMap")
    secrets = k8s_by_kind("Secret")

    for kind, (module, _) in stack_services().items():
        deployment = deployments[f"herald-{kind}"]
        assert container(deployment)["command"] == ["python", "-m", module]
        assert f"herald-{kind}" in env_sources(deployment, "ConfigMap")
        assert env_sources(deployment, "Secret") == [f"herald-{kind}"]
        assert f"herald-{kind}" in k8s_by_kind("Service")
    for resource in [*config_maps.values(), *secrets.values()]:
        names = set(resource.get("data", {})) | set(resource.get("stringData", {}))
        assert names <= SETTINGS_VARIABLES, (resource["metadata"]["name"], names)


def env_value_sources(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(deployment).get("env", [])}


def test_kubernetes_takes_the_signing_key_and_public_url_only_from_the_operators_secret():
    deployments = k8s_by_kind("Deployment")
    shipped_secrets = k8s_by_kind("Secret")

    for kind in LINK_SERVICES:
        env = env_value_sources(deployments[f"herald-{kind}"])
        for variable in OPERATOR_VARIABLES:
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref["optional"] is False, (kind, variable)
            # A Secret the operator creates: the manifests hold no value anyone could use.
            assert ref["name"] not in shipped_secrets, (kind, variable)
    for doc in k8s_documents():
        given = set(doc.get("data", {})) | set(doc.get("stringData", {}))
        assert not given & {*OPERATOR_VARIABLES, DEV_STACK}, doc["metadata"]["name"]
    for name, deployment in deployments.items():
        for variable, entry in env_value_sources(deployment).items():
            assert "value" not in entry or variable not in (*OPERATOR_VARIABLES, DEV_STACK), name


def test_prometheus_annotations_point_at_a_served_port():
    for name, deployment in k8s_by_kind("Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        ports = {p["containerPort"] for p in container(deployment)["ports"]}
        assert int(annotations["prometheus.io/port"]) in ports, name


def test_keda_scales_senders_on_both_delivery_queues():
    scaled = k8s_by_kind("ScaledObject")["herald-sender"]
    deployments = k8s_by_kind("Deployment")
    secrets = k8s_by_kind("Secret")

    spec = scaled["spec"]
    target = deployments[spec["scaleTargetRef"]["name"]]
    assert container(target)["command"] == ["python", "-m", "services.sender"]
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    triggers = spec["triggers"]
    # Both lanes: a backlog of notifications scales senders as a campaign's does.
    assert {t["metadata"]["queueName"] for t in triggers} == {
        delivery_queue(c, kind) for c in channels.names() for kind in KINDS
    }
    secret_keys = {
        key for name in env_sources(target, "Secret") for key in secrets[name]["stringData"]
    }
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert trigger["type"] == "rabbitmq"
        assert metadata["mode"] == "QueueLength"
        assert metadata["protocol"] == "amqp"
        assert int(metadata["value"]) > 0 and int(metadata["activationValue"]) >= 0
        # KEDA reads the broker URL from the sender's own environment.
        assert metadata["hostFromEnv"] in secret_keys


# --- RabbitMQ ----------------------------------------------------------------------------


def test_rabbitmq_definitions_seed_users_and_policies_that_match_the_app_queues():
    definitions = json.loads((RABBITMQ_DIR / "definitions.json").read_text())
    _, queues = build_topology((5000, 30000, 300000))
    names = [q.name for q in queues]

    users = {u["name"]: u for u in definitions["users"]}
    assert "guest" not in users
    assert all(u["password_hash"] and "password" not in u for u in users.values())
    assert {p["user"] for p in definitions["permissions"]} == set(users)
    applied = {name: effective_policy(definitions["policies"], name) for name in names}
    assert applied.pop(DEAD_QUEUE)["name"] == "herald-parking-lot"
    assert {p["name"] for p in applied.values()} == {"herald-at-least-once-dead-letters"}
    assert applied[delivery_queue("http", NOTIFICATION)]["name"] == (
        "herald-at-least-once-dead-letters"
    )
    assert applied[delivery_queue("http")]["definition"] == {
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }


def effective_policy(policies: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    """The policy RabbitMQ applies: the highest priority among those whose pattern matches."""
    matching = [p for p in policies if p["apply-to"] in ("queues", "all")]
    matching = [p for p in matching if re.search(p["pattern"], queue)]
    best = max(p["priority"] for p in matching)
    (policy,) = [p for p in matching if p["priority"] == best]
    return policy


def test_rabbitmq_loads_the_definitions_and_plugins_compose_mounts():
    conf = (RABBITMQ_DIR / "rabbitmq.conf").read_text()
    plugins = (RABBITMQ_DIR / "enabled_plugins").read_text()
    mounts = compose()["services"]["rabbitmq"]["volumes"]

    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
    assert "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" in mounts
    assert re.fullmatch(r"\[rabbitmq_management,rabbitmq_prometheus\]\.\n", plugins)


# --- Grafana -----------------------------------------------------------------------------


def grafana_datasource_uid() -> str:
    path = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"
    (source,) = yaml.safe_load(path.read_text())["datasources"]
    assert source["type"] == "prometheus"
    return str(source["uid"])


def test_dashboards_are_provisioned_from_the_mounted_folder():
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "herald.yaml").read_text()
    )["providers"][0]
    mounts = compose()["services"]["grafana"]["volumes"]

    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


@pytest.mark.parametrize("path", sorted((GRAFANA_DIR / "dashboards").rglob("*.json")))
def test_dashboard_structure(path):
    dashboard = json.loads(path.read_text())
    uid = grafana_datasource_uid()
    panels = dashboard["panels"]

    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert len({p["id"] for p in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == uid
