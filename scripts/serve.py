"""`make serve`: the three services on their default ports, on embedded defaults, in the foreground.

SQLite system database and a sealing key file under ./.catalog, the Docker sandbox (the image is
built if missing), and the offline agent unless ANTHROPIC_API_KEY is set. Without a Docker engine
it stops and says so: the process backend, which does not isolate code, runs only when asked for
by name (CATALOG_SANDBOX_BACKEND=process). Environment variables the services read pass through, so
any default can be overridden. Ctrl-C (or SIGTERM) stops all three, the orchestrator first.

The three share a random service token made at each start (unless CATALOG_SERVICE_TOKEN is set),
so only they may call the manager and the runner. CATALOG_SERVE_TLS=1 makes a private CA and a
certificate for localhost under .catalog/tls (scripts/dev_certs.py) and serves TLS everywhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from dev_certs import make_dev_certs  # beside this script, so on sys.path when it runs

from services.common import ports
from services.common.control_plane import ControlPlane
from services.common.readiness import wait_serving

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("sandbox_manager", "agent_runner", "orchestrator")


def say(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def sandbox_backend(allow_unisolated: bool) -> str:
    """Docker when it answers; the process backend only when named, or when the caller allows it
    (the demo, which says so plainly), never silently."""
    if os.environ.get("CATALOG_SANDBOX_BACKEND"):
        return os.environ["CATALOG_SANDBOX_BACKEND"]
    if docker_answers():
        subprocess.run(["bash", str(REPO / "scripts" / "build_image.sh")], check=True)
        return "docker"
    if not allow_unisolated:
        raise SystemExit(
            "serve: no Docker engine answers, and sandboxes need one to isolate the agents' code. "
            "Start Docker (`make docker`), or set CATALOG_SANDBOX_BACKEND=process to run cells "
            "UNISOLATED on this machine, for development only."
        )
    say(
        "no Docker engine answers: using the process backend, which does NOT isolate code. "
        "The agents' code runs UNISOLATED on this machine, with your user's files and network."
    )
    return "process"


async def wait_healthy(
    port: int, process: asyncio.subprocess.Process, name: str, plane: ControlPlane
) -> None:
    try:
        await wait_serving(f"127.0.0.1:{port}", process, timeout_s=120, name=name, plane=plane)
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"serve: {exc}") from exc


def tls_env() -> dict[str, str]:
    """With CATALOG_SERVE_TLS=1, a fresh CA and localhost certificate for the three services."""
    if os.environ.get("CATALOG_SERVE_TLS", "") not in ("1", "true", "yes"):
        return {}
    certs = make_dev_certs(REPO / ".catalog" / "tls")
    say(f"TLS on every listener; clients verify with {certs.ca_file}")
    return {
        "CATALOG_TLS_CA_FILE": str(certs.ca_file),
        "CATALOG_TLS_CERT_FILE": str(certs.cert_file),
        "CATALOG_TLS_KEY_FILE": str(certs.key_file),
    }


def embedded_env(allow_unisolated: bool = False, **overrides: str) -> dict[str, str]:
    """The embedded defaults, under the caller's environment, under `overrides`."""
    return {
        "CATALOG_SANDBOX_BACKEND": sandbox_backend(allow_unisolated),
        "CATALOG_SANDBOX_IMAGE": "catalog-agents/sandbox:latest",
        "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{REPO}/.catalog/orchestrator.sqlite",
        "CATALOG_SECRET_KEY_FILE": str(REPO / ".catalog" / "secret.key"),
        "CATALOG_AGENT_STATE_DIR": str(REPO / ".catalog"),
        "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
        # ./catalogs (the default) and the README's examples under /tmp/catalogs
        "CATALOG_FILE_ROOTS": f"{REPO / 'catalogs'},/tmp/catalogs",
        # only these three services may call the manager and the runner
        "CATALOG_SERVICE_TOKEN": secrets.token_urlsafe(32),
        **tls_env(),
        **os.environ,
        **overrides,
    }


async def start_services(
    env: dict[str, str], log: IO[bytes] | None = None
) -> list[asyncio.subprocess.Process]:
    """Start the three services in order, each once the one before serves; stop all on error.

    Their logs go to `log`, or to this process's stderr."""
    running: list[asyncio.subprocess.Process] = []
    plane = ControlPlane.from_env(env)
    try:
        for name in SERVICES:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"services.{name}",
                env=env,
                cwd=REPO,
                stderr=log,
            )
            running.append(process)
            port = int(env.get(_port_var(name), _DEFAULT_PORTS[name]))
            await wait_healthy(port, process, name, plane)
            say(f"{name} serving on port {port}")
    except BaseException:
        await stop_services(running)
        raise
    return running


async def stop_services(running: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM in reverse order (the orchestrator first), each waited for."""
    for process in reversed(running):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = await start_services(embedded_env())
    try:
        http_port = os.environ.get("CATALOG_ORCHESTRATOR_HTTP_PORT", ports.ORCHESTRATOR_HTTP)
        say(f"all three serving; HTTP on port {http_port} (POST /catalog); Ctrl-C stops them")
        scheme = (
            "https" if os.environ.get("CATALOG_SERVE_TLS", "") in ("1", "true", "yes") else "http"
        )
        say(f"the web UI: {scheme}://localhost:{http_port}/ (it shows make demo's runs too)")
        say(
            "the README's examples read the sample shop as catalog_reader: load it into the "
            "local PostgreSQL and MariaDB with `make sample` (once; it is idempotent)"
        )
        watched = [asyncio.create_task(p.wait()) for p in running]
        watched.append(asyncio.create_task(stop.wait()))
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await stop_services(running)


_DEFAULT_PORTS = {
    "sandbox_manager": ports.SANDBOX_MANAGER,
    "agent_runner": ports.AGENT_RUNNER,
    "orchestrator": ports.ORCHESTRATOR_GRPC,
}


def _port_var(name: str) -> str:
    return {
        "sandbox_manager": "CATALOG_SANDBOX_PORT",
        "agent_runner": "CATALOG_AGENT_PORT",
        "orchestrator": "CATALOG_ORCHESTRATOR_GRPC_PORT",
    }[name]


if __name__ == "__main__":
    asyncio.run(main())
