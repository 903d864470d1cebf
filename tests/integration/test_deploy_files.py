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
from urllib.parse import unquote, urlsplit

import kubernetes_validate
import pytest
import yaml

from deploy.stack import Stack
from shared.config import Settings
from shared.domain import channels
from shared.domain.deliveries import KINDS, NOTIFICATION
from shared.messaging.connection import broker_hosts, split_amqp_urls
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


def k8s_files() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S_DIR.glob("*.yaml"))
    }


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


def keys(resource: dict[str, Any]) -> set[str]:
    return set(resource.get("data", {})) | set(resource.get("stringData", {}))


def shipped_env(workload: dict[str, Any]) -> dict[str, str]:
    """Name -> value of what the container's environment takes from shipped ConfigMaps/Secrets."""
    found: dict[str, str] = {}
    for kind in ("ConfigMap", "Secret"):
        shipped = k8s_by_kind(kind)
        for name in env_sources(workload, kind):
            found |= {**shipped[name].get("data", {}), **shipped[name].get("stringData", {})}
    return found


def env_names(workload: dict[str, Any]) -> set[str]:
    """Every variable the container's environment has."""
    return set(shipped_env(workload)) | {e["name"] for e in container(workload).get("env", [])}


def keda_variables() -> set[str]:
    """What KEDA's triggers read from the scaled pods' environment."""
    return {
        trigger["metadata"]["hostFromEnv"]
        for scaled in k8s_by_kind("ScaledObject").values()
        for trigger in scaled["spec"]["triggers"]
        if "hostFromEnv" in trigger["metadata"]
    }


def workloads() -> list[dict[str, Any]]:
    kinds = ("Deployment", "StatefulSet", "Job")
    return [d for d in k8s_documents() if d["kind"] in kinds]


def herald_workloads() -> list[dict[str, Any]]:
    return [w for w in workloads() if w["metadata"]["labels"]["app.kubernetes.io/name"] == "herald"]


# How a pod refers to a ConfigMap or Secret: all its keys as variables, one key, or files.
REFERENCES = {
    "ConfigMap": ("configMapRef", "configMapKeyRef", "configMap"),
    "Secret": ("secretRef", "secretKeyRef", "secret"),
}


def volume_sources(workload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Volume name -> its sources: one, or those a projected volume combines."""
    volumes = workload["spec"]["template"]["spec"].get("volumes", [])
    return {v["name"]: v["projected"]["sources"] if "projected" in v else [v] for v in volumes}


def referenced(workload: dict[str, Any], kind: str) -> set[str]:
    """The ConfigMaps or Secrets a pod takes variables or files from."""
    all_keys, one_key, as_files = REFERENCES[kind]
    pod = workload["spec"]["template"]["spec"]
    names: set[str] = set()
    for each in [*pod.get("initContainers", []), *pod["containers"]]:
        names |= {src[all_keys]["name"] for src in each.get("envFrom", []) if all_keys in src}
        refs = [e.get("valueFrom", {}).get(one_key) for e in each.get("env", [])]
        names |= {ref["name"] for ref in refs if ref}
    for sources in volume_sources(workload).values():
        for source in sources:
            if as_files in source:
                names.add(source[as_files].get("name") or source[as_files]["secretName"])
    return names


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
    # What Herald's pods read is a setting, or the broker URL KEDA reads beside them.
    known = SETTINGS_VARIABLES | keda_variables()
    for kind, shipped in (("ConfigMap", config_maps), ("Secret", secrets)):
        herald_sources = set().union(*(referenced(w, kind) for w in herald_workloads()))
        for name in herald_sources & set(shipped):
            assert keys(shipped[name]) <= known, (name, keys(shipped[name]) - known)
        # Nothing shipped goes unread, so nothing escapes the check above unnoticed.
        used = set().union(*(referenced(w, kind) for w in workloads()))
        assert set(shipped) <= used, set(shipped) - used
    # A HERALD_ name that is no setting would read as a mistyped one.
    assert not {v for v in keda_variables() if v.startswith("HERALD_")} - SETTINGS_VARIABLES


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
    pods = {**k8s_by_kind("Deployment"), **k8s_by_kind("StatefulSet")}
    for name, deployment in pods.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        ports = {p["containerPort"] for p in container(deployment)["ports"]}
        assert int(annotations["prometheus.io/port"]) in ports, name


def test_keda_scales_senders_on_both_delivery_queues():
    scaled = k8s_by_kind("ScaledObject")["herald-sender"]
    deployments = k8s_by_kind("Deployment")
    services = k8s_by_kind("Service")

    spec = scaled["spec"]
    target = deployments[spec["scaleTargetRef"]["name"]]
    assert container(target)["command"] == ["python", "-m", "services.sender"]
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    triggers = spec["triggers"]
    # Both lanes: a backlog of notifications scales senders as a campaign's does.
    assert {t["metadata"]["queueName"] for t in triggers} == {
        delivery_queue(c, kind) for c in channels.names() for kind in KINDS
    }
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert trigger["type"] == "rabbitmq"
        assert metadata["mode"] == "QueueLength"
        assert metadata["protocol"] == "amqp"
        assert int(metadata["value"]) > 0 and int(metadata["activationValue"]) >= 0
        # KEDA reads the broker URL from the sender's own environment, and takes one URL.
        assert metadata["hostFromEnv"] in env_names(target)
        (url,) = split_amqp_urls(shipped_env(target)[metadata["hostFromEnv"]])
        # A Service in front of every ready node: any of them answers for a queue's length.
        service_name, namespace = str(urlsplit(url).hostname).split(".")[:2]
        service = services[service_name]
        assert namespace == service["metadata"]["namespace"]
        assert service["spec"].get("clusterIP") != "None"
        assert selects(service["spec"]["selector"], pod_labels(rabbitmq()))
        assert urlsplit(url).port in {p["port"] for p in service["spec"]["ports"]}


def test_the_manifests_carry_the_capacity_plans_peak():
    # README, Capacity plan: four senders of one core each carry 10,000/s; three nodes.
    scaled = k8s_by_kind("ScaledObject")["herald-sender"]["spec"]
    sender = container(k8s_by_kind("Deployment")["herald-sender"])

    assert sender["resources"]["requests"]["cpu"] == "1"
    assert scaled["maxReplicaCount"] >= 4
    assert rabbitmq()["spec"]["replicas"] == 3
    assert int(container(rabbitmq())["resources"]["requests"]["cpu"]) >= 2


# --- Kubernetes: the RabbitMQ cluster and disruption budgets -------------------------------


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels (or a Service's) selector picks pods with these labels."""
    return bool(selector) and selector.items() <= labels.items()


def rabbitmq() -> dict[str, Any]:
    return k8s_by_kind("StatefulSet")["rabbitmq"]


def node_hosts() -> set[str]:
    """Each RabbitMQ pod's stable name through the StatefulSet's headless Service."""
    statefulset = rabbitmq()
    name, namespace = statefulset["metadata"]["name"], statefulset["metadata"]["namespace"]
    spec = statefulset["spec"]
    return {f"{name}-{i}.{spec['serviceName']}.{namespace}.svc" for i in range(spec["replicas"])}


def mounted_files(
    workload: dict[str, Any], each: dict[str, Any]
) -> dict[str, tuple[str, str, str, bool | None]]:
    """Path -> (ConfigMap or Secret, name, key, optional) of each file the container mounts."""
    shipped = {kind: k8s_by_kind(kind) for kind in REFERENCES}
    volumes = volume_sources(workload)
    files = {}
    for mount in each.get("volumeMounts", []):
        for source in volumes.get(mount["name"], []):
            for kind, (_, _, as_files) in REFERENCES.items():
                if as_files not in source:
                    continue
                ref = source[as_files]
                name = ref.get("name") or ref["secretName"]
                every_key = [{"key": k, "path": k} for k in keys(shipped[kind].get(name, {}))]
                for item in ref.get("items", every_key):
                    path = f"{mount['mountPath']}/{item['path']}"
                    files[path] = (kind, name, item["key"], ref.get("optional"))
    return files


def mounted_text(workload: dict[str, Any], path: str) -> str:
    kind, name, key, _ = mounted_files(workload, container(workload))[path]
    return str(k8s_by_kind(kind)[name]["data"][key])


def conf_settings(text: str) -> dict[str, str]:
    """The `key = value` lines of a rabbitmq.conf."""
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def plugins(text: str) -> set[str]:
    match = re.fullmatch(r"\[([a-z0-9_,]+)\]\.\n", text)
    assert match, text
    return set(match.group(1).split(","))


def budgets_for(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The PodDisruptionBudgets that count this workload's pods."""
    namespace = workload["metadata"]["namespace"]
    return [
        budget
        for budget in k8s_by_kind("PodDisruptionBudget").values()
        if budget["metadata"]["namespace"] == namespace
        and selects(budget["spec"]["selector"]["matchLabels"], pod_labels(workload))
    ]


def disruptions_allowed(budget: dict[str, Any], healthy: int) -> int:
    """How many of `healthy` pods an eviction may take at once under the budget."""
    spec = budget["spec"]
    limit = spec["minAvailable"] if "minAvailable" in spec else spec["maxUnavailable"]
    assert isinstance(limit, int), spec  # a count: a percentage rounds by the replica count
    return max(0, healthy - limit) if "minAvailable" in spec else min(limit, healthy)


def test_rabbitmq_runs_three_nodes_started_together_one_per_host():
    statefulset = rabbitmq()
    spec = statefulset["spec"]
    labels = pod_labels(statefulset)
    node = container(statefulset)

    assert spec["replicas"] == 3
    # A restarted node waits for the peers it last saw: started in order, it would wait alone.
    assert spec["podManagementPolicy"] == "Parallel"
    assert selects(spec["selector"]["matchLabels"], labels)
    headless = k8s_by_kind("Service")[spec["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None"
    # Peers find each other before any of them is ready.
    assert headless["publishNotReadyAddresses"] is True
    assert selects(headless["selector"], labels)
    anti_affinity = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert any(
        term["topologyKey"] == "kubernetes.io/hostname"
        and selects(term["labelSelector"]["matchLabels"], labels)
        for term in anti_affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    )
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in node["volumeMounts"]}
    assert mounts["/var/lib/rabbitmq"] == claim["metadata"]["name"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert node[probe]["exec"]["command"][0] == "rabbitmq-diagnostics", probe


def test_rabbitmq_drains_and_upgrades_take_one_node_at_a_time():
    budgets = budgets_for(rabbitmq())

    assert len(budgets) == 1, budgets
    # Quorum queues keep their majority with one node of three away, not with two.
    assert budgets[0]["spec"]["maxUnavailable"] == 1
    assert disruptions_allowed(budgets[0], rabbitmq()["spec"]["replicas"]) == 1


def test_the_cluster_runs_heralds_broker_config_and_forms_through_its_headless_service():
    statefulset = rabbitmq()
    spec = statefulset["spec"]
    conf = conf_settings(mounted_text(statefulset, "/etc/rabbitmq/rabbitmq.conf"))
    compose_conf = conf_settings((RABBITMQ_DIR / "rabbitmq.conf").read_text())
    env = {e["name"]: e for e in container(statefulset)["env"]}

    # docker-compose's broker: definitions, listeners, limits and timeouts alike.
    assert compose_conf.items() <= conf.items(), set(compose_conf.items()) - set(conf.items())
    assert plugins((RABBITMQ_DIR / "enabled_plugins").read_text()) | {
        "rabbitmq_peer_discovery_k8s"
    } <= plugins(mounted_text(statefulset, "/etc/rabbitmq/enabled_plugins"))
    assert conf["cluster_formation.peer_discovery_backend"] == "rabbit_peer_discovery_k8s"
    assert conf["cluster_formation.k8s.address_type"] == "hostname"
    assert conf["cluster_formation.k8s.service_name"] == spec["serviceName"]
    # Peers are named rabbit@<pod hostname><suffix>: each node must name itself the same way.
    suffix = conf["cluster_formation.k8s.hostname_suffix"]
    namespace = statefulset["metadata"]["namespace"]
    assert suffix.startswith(f".{spec['serviceName']}.{namespace}.svc.")
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["RABBITMQ_NODENAME"]["value"] == f"rabbit@$(POD_NAME){suffix}"
    assert env["RABBITMQ_USE_LONGNAME"]["value"] == "true"


def test_peer_discovery_may_read_the_headless_services_endpoints():
    statefulset = rabbitmq()
    namespace = statefulset["metadata"]["namespace"]
    account = statefulset["spec"]["template"]["spec"]["serviceAccountName"]
    roles = k8s_by_kind("Role")

    assert account in k8s_by_kind("ServiceAccount")
    granted = [
        rule
        for binding in k8s_by_kind("RoleBinding").values()
        if binding["metadata"]["namespace"] == namespace
        and {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        in binding["subjects"]
        and binding["roleRef"]["kind"] == "Role"
        for rule in roles[binding["roleRef"]["name"]]["rules"]
    ]
    assert any(
        "" in rule["apiGroups"] and "endpoints" in rule["resources"] and "get" in rule["verbs"]
        for rule in granted
    ), granted


def test_rabbitmq_takes_its_cookie_and_definitions_only_from_the_operators_secrets():
    statefulset = rabbitmq()
    shipped = k8s_by_kind("Secret")
    conf = conf_settings(mounted_text(statefulset, "/etc/rabbitmq/rabbitmq.conf"))
    init_containers = statefulset["spec"]["template"]["spec"]["initContainers"]

    # Users with password hashes of the operator's own; the node does not start without them.
    files = mounted_files(statefulset, container(statefulset))
    kind, name, _, optional = files[conf["definitions.local.path"]]
    assert (kind, optional) == ("Secret", False) and name not in shipped
    cookies = [
        (each, source)
        for each in init_containers
        for path, source in mounted_files(statefulset, each).items()
        if path.endswith("/.erlang.cookie")
    ]
    assert len(cookies) == 1, cookies
    copier, (kind, name, _, optional) = cookies[0]
    assert (kind, optional) == ("Secret", False) and name not in shipped
    # Into the node's home on the data volume: Erlang refuses a cookie others may read.
    assert {m["mountPath"] for m in copier["volumeMounts"]} >= {"/var/lib/rabbitmq"}
    command = " ".join(copier["command"])
    assert "/var/lib/rabbitmq/.erlang.cookie" in command and "chmod 600" in command


def test_every_amqp_url_lists_each_rabbitmq_node_once(tmp_path):
    definitions = json.loads((RABBITMQ_DIR / "definitions.json").read_text())
    users = {u["name"] for u in definitions["users"]}
    vhosts = {v["name"] for v in definitions["vhosts"]}
    amqp_port = {p["name"]: p["containerPort"] for p in container(rabbitmq())["ports"]}["amqp"]
    nodes = node_hosts()
    given = {
        name: secret["stringData"]["HERALD_AMQP_URL"]
        for name, secret in k8s_by_kind("Secret").items()
        if "HERALD_AMQP_URL" in keys(secret)
    }

    assert set(given) == {f"herald-{kind}" for kind in HERALD_SERVICES}
    first_nodes = set()
    for name, value in given.items():
        urls = split_amqp_urls(value)
        hosts = broker_hosts(value)
        assert len(hosts) == len(set(hosts)) == 3 and set(hosts) == nodes, (name, hosts)
        for url in urls:
            parts = urlsplit(url)
            assert parts.port == amqp_port and parts.username in users, name
            assert unquote(parts.path.removeprefix("/")) in vhosts, name
        settings = Settings.from_env({"HERALD_AMQP_URL": value}, env_file=tmp_path / ".env")
        assert settings.amqp_urls == urls
        first_nodes.add(hosts[0])
    # A connection takes the first node that answers: the lists begin at different nodes.
    assert first_nodes == nodes


def test_every_herald_deployment_has_a_budget_that_still_lets_a_drain_through():
    deployments = k8s_by_kind("Deployment")
    scaled_down_to = {
        scaled["spec"]["scaleTargetRef"]["name"]: scaled["spec"]["minReplicaCount"]
        for scaled in k8s_by_kind("ScaledObject").values()
    }

    assert deployments
    for file, docs in k8s_files().items():
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            name = deployment["metadata"]["name"]
            budgets = budgets_for(deployment)
            assert len(budgets) == 1, (name, budgets)
            # Beside its Deployment, so a change to one shows the other.
            assert budgets[0] in docs, (name, file)
            others = [
                n for n, d in deployments.items() if n != name and budgets[0] in budgets_for(d)
            ]
            assert not others, (name, others)
            fewest = min(deployment["spec"]["replicas"], scaled_down_to.get(name, 1 << 30))
            # A budget the fewest pods cannot meet blocks every node drain.
            assert disruptions_allowed(budgets[0], fewest) >= 1, name


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
