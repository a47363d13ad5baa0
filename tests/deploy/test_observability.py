"""The optional observability profile of compose.yaml, and the files it loads from deploy/:
Prometheus scrapes the three services where they serve metrics, the Collector listens where the
services are told to send traces, and the dashboards are Grafana JSON an operator can import.
(tests/telemetry checks the dashboards' metric names against what real services export.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import COMPOSE_FILE, _compose_env, _module, _run

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def observed(compose_bin: str) -> dict[str, Any]:
    argv = [compose_bin, "-f", str(COMPOSE_FILE), "--profile", "observability", "config"]
    result = _run([*argv, "--format", "json"], env=_compose_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_collector_and_prometheus_are_behind_a_profile(
    config: dict[str, Any], observed: dict[str, Any]
) -> None:
    extra = set(observed["services"]) - set(config["services"])
    assert extra == {"otel-collector", "prometheus"}
    for name in extra:
        assert observed["services"][name]["profiles"] == ["observability"]


def test_prometheus_scrapes_each_service_on_its_metrics_port(observed: dict[str, Any]) -> None:
    prometheus = observed["services"]["prometheus"]
    mounted = {v["target"]: Path(v["source"]) for v in prometheus["volumes"]}
    scrape = yaml.safe_load(mounted["/etc/prometheus/prometheus.yml"].read_text())
    targets = {
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    ports = {
        "services.sandbox_manager": "CATALOG_SANDBOX_METRICS_PORT",
        "services.agent_runner": "CATALOG_AGENT_METRICS_PORT",
        "services.orchestrator": "CATALOG_ORCHESTRATOR_HTTP_PORT",
    }
    # every replica of every service: both managers and both orchestrators too
    expected = {
        f"{name}:{service['environment'][ports[module]]}"
        for name, service in observed["services"].items()
        if (module := _module(service)) in ports
    }
    assert len(expected) == 5
    assert targets == expected


def test_the_collector_receives_otlp_where_the_services_are_told_to_send(
    observed: dict[str, Any],
) -> None:
    collector = observed["services"]["otel-collector"]
    mounted = {v["target"]: Path(v["source"]) for v in collector["volumes"]}
    config_path = next(a.split("=", 1)[1] for a in collector["command"] if a.startswith("--config"))
    config = yaml.safe_load(mounted[config_path].read_text())
    assert "otlp" in config["service"]["pipelines"]["traces"]["receivers"]
    grpc_endpoint = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    suggested = re.search(r"http://otel-collector:(\d+)", header)
    assert suggested and grpc_endpoint.endswith(f":{suggested[1]}")
    for name in ("sandbox-manager", "agent-runner", "orchestrator"):
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in observed["services"][name]["environment"], name


@pytest.mark.parametrize("name", ["grafana-runs.json", "grafana-pool.json"])
def test_each_dashboard_is_grafana_json_with_prometheus_queries(name: str) -> None:
    dashboard = json.loads((DEPLOY / name).read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
