"""The container health probe: exit 0 when this container's service answers SERVING.

`python -m services.common.healthcheck [PORT]` is the services image's HEALTHCHECK. One image
runs any of the three services, so the probe reads which one from PID 1's command line
(`python -m services.<name>`) and its address from the same variables the service reads.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import ports

# service module: (host variable, port variable, default port)
SERVICES = {
    "services.sandbox_manager": (
        "CATALOG_SANDBOX_HOST",
        "CATALOG_SANDBOX_PORT",
        str(ports.SANDBOX_MANAGER),
    ),
    "services.agent_runner": ("CATALOG_AGENT_HOST", "CATALOG_AGENT_PORT", str(ports.AGENT_RUNNER)),
    "services.orchestrator": (
        "CATALOG_ORCHESTRATOR_HOST",
        "CATALOG_ORCHESTRATOR_GRPC_PORT",
        str(ports.ORCHESTRATOR_GRPC),
    ),
}
_ANY_HOST = ("", "0.0.0.0", "::", "[::]")  # noqa: S104 (recognised, then probed on loopback)


def probe(argv: list[str], command_line: list[str], env: dict[str, str]) -> str:
    """The address probed and its answer; SystemExit with the reason when not SERVING."""
    found = [name for name in SERVICES if name in command_line]
    if not found:
        raise SystemExit("healthcheck: PID 1 runs none of " + ", ".join(SERVICES))
    host_var, port_var, default_port = SERVICES[found[0]]
    host = env.get(host_var, "0.0.0.0")  # noqa: S104 (probed as 127.0.0.1 below)
    host = "127.0.0.1" if host in _ANY_HOST else host
    address = f"{host}:{argv[0] if argv else env.get(port_var, default_port)}"
    with _channel(address, env.get("CATALOG_TLS_CA_FILE", "")) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.RpcError as exc:
            raise SystemExit(f"{found[0]} at {address}: {exc.code()}") from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise SystemExit(f"{found[0]} at {address}: {status}")
    return f"{found[0]} at {address}: {status}"


def _channel(address: str, ca_file: str) -> grpc.Channel:
    """TLS when the service's CA is set (its certificate must then name localhost or
    127.0.0.1, the address probed), else plaintext."""
    if not ca_file:
        return grpc.insecure_channel(address)
    with open(ca_file, "rb") as file:
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(file.read()))


def main() -> None:
    with open("/proc/1/cmdline", "rb") as file:
        command_line = file.read().decode(errors="replace").split("\0")
    print(probe(sys.argv[1:], command_line, dict(os.environ)))


if __name__ == "__main__":
    main()
