"""The Kubernetes manifests under deploy/k8s say only true things about this repository, the
way test_compose checks docker-compose.yml: every container runs a real command of the image,
every variable they are given is one settings.py reads, each Service selects a Deployment's
pods on the port its container listens on, and the Ingress routes the WebSocket to daphne and
the rest to gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.harness import ROOT
from tests.unit.test_compose import SETTINGS_VARS, _option, check_command

K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc
    for name in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((K8S / name).read_text())
    if doc
]
BY_KIND: dict[tuple[str, str], dict[str, Any]] = {
    (d["kind"], d["metadata"]["name"]): d for d in DOCS
}
WORKLOADS = {name: d for (kind, name), d in BY_KIND.items() if kind in {"Deployment", "Job"}}
CONFIG = BY_KIND[("ConfigMap", "draconic")]["data"]
#: What the secret `draconic` holds (created by hand, docs/scaling.md).
SECRET_KEYS = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_kustomization_lists_every_manifest_of_the_directory():
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_each_container_runs_a_real_command_with_the_platforms_configuration(name):
    container = _container(WORKLOADS[name])
    assert container["image"] == "draconic:latest"
    check_command(container["command"])
    refs = container["envFrom"]
    assert {"configMapRef": {"name": "draconic"}} in refs
    assert {"secretRef": {"name": "draconic"}} in refs
    assert {e["name"] for e in container.get("env", [])} <= SETTINGS_VARS


def test_the_config_and_the_secret_hold_only_variables_settings_reads():
    assert set(CONFIG) <= SETTINGS_VARS, sorted(set(CONFIG) - SETTINGS_VARS)
    assert SECRET_KEYS <= SETTINGS_VARS
    assert CONFIG["DEBUG"] == "false"
    assert not SECRET_KEYS & set(CONFIG), "secrets belong in the secret"
    doc = (ROOT / "docs" / "scaling.md").read_text()
    assert "kubectl create secret generic draconic" in doc
    assert all(key in doc for key in SECRET_KEYS)


def test_the_processes_are_the_ones_of_the_design():
    programs = {n: _container(w)["command"][:4] for n, w in WORKLOADS.items()}
    assert programs["draconic-migrate"] == ["python", "manage.py", "migrate", "--noinput"]
    assert programs["api"][:2] == ["gunicorn", "draconic.wsgi:application"]
    assert programs["ws"][0] == "daphne"
    assert programs["worker"] == ["celery", "-A", "draconic", "worker"]
    assert programs["scheduler"] == ["python", "manage.py", "scheduler"]
    assert WORKLOADS["scheduler"]["spec"]["replicas"] >= 2, "one stuck scheduler must not stall"


def _listen_port(name: str) -> int:
    command = _container(WORKLOADS[name])["command"]
    if command[0] == "gunicorn":
        return int(str(_option(command, "--bind", "-b")).rsplit(":", 1)[1])
    return int(str(_option(command, "-p", "--port")))


@pytest.mark.parametrize("name", ["api", "ws"])
def test_each_service_selects_its_pods_on_the_port_they_listen_on(name):
    service, deployment = BY_KIND[("Service", name)], WORKLOADS[name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= labels.items()
    port = _listen_port(name)
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port
    container = _container(deployment)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port}


def test_the_ingress_sends_the_websocket_to_daphne_and_the_rest_to_gunicorn():
    (rule,) = BY_KIND[("Ingress", "draconic")]["spec"]["rules"]
    paths = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert list(paths) == ["/jobs/stream", "/"], "the stream's path must come first"
    for path, name in (("/jobs/stream", "ws"), ("/", "api")):
        assert paths[path]["name"] == name
        (service_port,) = BY_KIND[("Service", name)]["spec"]["ports"]
        assert paths[path]["port"]["number"] == service_port["port"]


def test_a_stopping_worker_pod_gets_a_warm_shutdown_longer_than_its_grace():
    worker = WORKLOADS["worker"]
    command = _container(worker)["command"]
    assert command[0] == "celery", "exec form: SIGTERM reaches celery itself"
    grace = float(CONFIG["DRACONIC_SHUTDOWN_GRACE_SECONDS"])
    assert grace == settings.DRACONIC_SHUTDOWN_GRACE_SECONDS
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace + 10
    assert _option(command, "-n") == "worker@%h", "one worker name per pod"


def test_the_workers_slots_add_up_to_the_capacity():
    replicas = WORKLOADS["worker"]["spec"]["replicas"]
    assert int(CONFIG["CELERY_WORKER_CONCURRENCY"]) * replicas == int(CONFIG["MAX_CPU_UNITS"])


def test_the_manifests_are_valid_yaml_documents_of_known_kinds():
    kinds = {d["kind"] for d in DOCS}
    assert kinds == {"ConfigMap", "Job", "Deployment", "Service", "Ingress"}
    assert all(Path(K8S / n).exists() for n in KUSTOMIZATION["resources"])
