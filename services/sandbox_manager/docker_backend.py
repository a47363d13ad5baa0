"""Sandboxes as hardened Docker containers. The only module that imports the docker SDK.

The kernel's channel is the container's attached stdio: the manager attaches before the
container starts (so the kernel's hello is never missed) and keeps that one connection, instead
of paying for a `docker exec` per call. Docker multiplexes stdout and stderr on it with 8-byte
frame headers; stdout carries the protocol, stderr is the kernel's own log.

The container has no network; its databases are reached through its relay folder (``db_relay``),
each of several through a sub-folder and a listener of its own.

Every container carries the manager's label, so a manager that was killed finds and removes what
it left behind when it starts again (relay folders too); and with ``stdin_once`` a container
whose manager vanished sees its stdin close, so its kernel exits and Docker removes it
(``auto_remove``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from services.common.logging import log_fields
from services.sandbox_manager.backend import MANAGER_LABEL, SANDBOX_LABEL
from services.sandbox_manager.db_relay import (
    DatabaseRelay,
    make_folders,
    remove_folders,
    remove_leftovers,
)
from services.sandbox_manager.errors import BackendUnavailable, DatabaseUnreachable
from services.sandbox_manager.hardening import (
    KERNEL_USER,
    RELAY_MOUNT,
    ContainerLimits,
    docker_host_config,
    kernel_environment,
    new_session_uid,
    unseen_duckdb_file,
)
from services.sandbox_manager.kernel_client import (
    DEFAULT_QUEUED_EVENTS,
    KernelClient,
    KernelError,
)

_log = logging.getLogger(__name__)
_FRAME_HEADER = struct.Struct(">BxxxI")
_STDOUT, _STDERR = 1, 2
_BUILTIN_NETWORKS = {"host", "none", "bridge", "default"}


@dataclass(frozen=True)
class RelaySettings:
    root: str  # CATALOG_SANDBOX_RELAY_DIR: the parent of every sandbox's relay folder
    pgbouncer: str  # CATALOG_SANDBOX_PGBOUNCER: its binary, or "" to relay PostgreSQL as bytes
    deny: tuple[str, ...] = ()  # CATALOG_SANDBOX_RELAY_DENY: what the relay never dials


class AttachChannel:
    """The kernel's stdio over the Docker API's attach stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str):
        self._reader = reader
        self._writer = writer
        self._name = name
        self._closed = asyncio.Event()

    async def read(self) -> bytes:
        while True:
            try:
                header = await self._reader.readexactly(_FRAME_HEADER.size)
                kind, size = _FRAME_HEADER.unpack(header)
                payload = await self._reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                self._closed.set()
                return b""
            if kind == _STDOUT:
                return payload
            if kind == _STDERR:  # the kernel's own log, e.g. a module it could not preload
                text = payload.decode("utf-8", "replace").rstrip()
                log_fields(_log, logging.INFO, "kernel log", sandbox=self._name, line=text)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self, grace_s: float) -> None:
        # Closing stdin makes the kernel exit (stdin_once closes the container's stdin).
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
            await asyncio.wait_for(self._closed.wait(), grace_s)
        self._writer.close()


@dataclass
class DockerSandbox:
    kernel: KernelClient
    container_id: str
    _client: docker.DockerClient
    relay: DatabaseRelay
    _live: set[str]

    data_mount: str

    async def open_database(self, dsn: str, statement_timeout_s: float, name: str = "") -> str:
        unseen = unseen_duckdb_file(dsn, self.data_mount)
        if unseen:
            raise DatabaseUnreachable(unseen)
        return await self.relay.open(dsn, statement_timeout_s, name)

    async def close_database(self) -> None:
        await self.relay.close()

    async def destroy(self) -> None:
        try:
            await self.relay.close()
            await asyncio.to_thread(_remove_container, self._client, self.container_id)
            with contextlib.suppress(Exception):
                await self.kernel.close(grace_s=0)
        finally:  # even when cancelled: the folders would outlive the sandbox
            await asyncio.to_thread(remove_folders, self.relay.folder, self.relay.private)
            self._live.discard(self.relay.folder.name)


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):  # auto_remove got there first
            log_fields(
                _log,
                logging.WARNING,
                "container removal failed",
                container=container_id,
                error=str(exc),
            )


class DockerBackend:
    kind = "docker"

    def __init__(
        self,
        manager_id: str,
        image: str,
        limits: ContainerLimits,
        ready_timeout_s: float,
        relay: RelaySettings,
        queued_events: int = DEFAULT_QUEUED_EVENTS,
    ) -> None:
        self.image = image
        self.limits = limits
        self._manager_id = manager_id
        self._ready_timeout_s = ready_timeout_s
        self._queued_events = queued_events
        self._relay = relay
        self._live: set[str] = set()  # sandbox ids whose relay folders are in use
        self._client: docker.DockerClient | None = None

    async def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                client = await asyncio.to_thread(docker.from_env)
                await asyncio.to_thread(client.images.get, self.image)
                await asyncio.to_thread(self._check_runtime, client)
                await asyncio.to_thread(self._ensure_network, client)
            except docker.errors.ImageNotFound as exc:
                raise BackendUnavailable(
                    f"the sandbox image {self.image} is missing: build it with `make image`"
                ) from exc
            except docker.errors.DockerException as exc:
                raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc
            self._client = client
        return self._client

    def _check_runtime(self, client: docker.DockerClient) -> None:
        """Refuse to start with a runtime dockerd does not know: every sandbox would fail."""
        wanted = self.limits.runtime
        known = sorted(client.info().get("Runtimes") or {})
        if wanted in known:
            return
        how = (
            "run `bash scripts/ensure_docker.sh` as root (it installs and registers gVisor's runsc)"
            if wanted == "runsc"
            else 'add it under "runtimes" in /etc/docker/daemon.json'
        )
        raise BackendUnavailable(
            f"CATALOG_SANDBOX_RUNTIME={wanted} but dockerd has no runtime {wanted!r} "
            f"(it has: {', '.join(known) or 'none'}): {how}, then reload dockerd with "
            f"`kill -HUP $(cat /var/run/docker.pid)`; or set CATALOG_SANDBOX_RUNTIME=runc"
        )

    def _ensure_network(self, client: docker.DockerClient) -> None:
        """The dedicated network, where sandboxes cannot reach each other (no ICC)."""
        name = self.limits.network_mode
        # Docker's name filter matches substrings (`foo` finds `foo_default`): compare exactly.
        existing = {network.name for network in client.networks.list(names=[name])}
        if name in _BUILTIN_NETWORKS or name.startswith("container:") or name in existing:
            return
        client.networks.create(
            name,
            driver="bridge",
            labels={MANAGER_LABEL: self._manager_id},
            options={"com.docker.network.bridge.enable_icc": "false"},
        )

    async def start(self, sandbox_id: str) -> DockerSandbox:
        client = await self._docker()
        labels = {MANAGER_LABEL: self._manager_id, SANDBOX_LABEL: sandbox_id}
        name = f"catalog-sandbox-{sandbox_id.replace('.', '-').replace('_', '-')}"
        relay = await self._make_relay(sandbox_id)
        try:
            container_id, raw = await asyncio.to_thread(
                self._create_and_attach, client, name, labels, str(relay.folder)
            )
        except docker.errors.DockerException as exc:
            await asyncio.to_thread(remove_folders, relay.folder, relay.private)
            self._live.discard(sandbox_id)
            raise BackendUnavailable(f"could not start a sandbox container: {exc}") from exc
        reader, writer = await asyncio.open_connection(sock=raw)
        kernel = KernelClient(AttachChannel(reader, writer, sandbox_id), self._queued_events)
        sandbox = DockerSandbox(
            kernel, container_id, client, relay, self._live, self.limits.data_mount
        )
        try:
            await kernel.wait_ready(self._ready_timeout_s)
        except KernelError as exc:
            await sandbox.destroy()
            raise BackendUnavailable(f"the sandbox kernel did not start: {exc}") from exc
        return sandbox

    async def _make_relay(self, sandbox_id: str) -> DatabaseRelay:
        root = Path(self._relay.root)
        try:
            folder, private = await asyncio.to_thread(make_folders, root, sandbox_id)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot make the sandbox's relay folder under {root} ({exc}); set "
                "CATALOG_SANDBOX_RELAY_DIR to a folder the manager may write, on the Docker "
                "host's file system at the same path"
            ) from exc
        self._live.add(sandbox_id)
        return DatabaseRelay(folder, RELAY_MOUNT, self._relay.pgbouncer, private, self._relay.deny)

    def _create_and_attach(
        self, client: docker.DockerClient, name: str, labels: dict[str, str], relay_dir: str
    ) -> tuple[str, socket.socket]:
        session_uid = new_session_uid()
        host_config: dict[str, Any] = docker_host_config(self.limits, session_uid, relay_dir)
        container = client.api.create_container(
            self.image,
            name=name,
            labels=labels,
            user=KERNEL_USER,
            environment=kernel_environment(self.limits, session_uid),
            stdin_open=True,  # docker-py sets StdinOnce with it: stdin closes when we detach
            tty=False,
            host_config=client.api.create_host_config(**host_config),
        )
        container_id = str(container["Id"])
        try:
            wrapped = client.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            client.api.start(container_id)
        except docker.errors.DockerException:
            _remove_container(client, container_id)
            raise
        raw: socket.socket = wrapped._sock
        raw.setblocking(False)
        return container_id, raw

    async def remove_orphans(self) -> int:
        client = await self._docker()
        removed = await asyncio.to_thread(self._remove_labelled, client)
        await asyncio.to_thread(
            remove_leftovers, Path(self._relay.root), self._manager_id, set(self._live)
        )
        return removed

    def _remove_labelled(self, client: docker.DockerClient) -> int:
        found = client.api.containers(
            all=True, quiet=True, filters={"label": f"{MANAGER_LABEL}={self._manager_id}"}
        )
        for container in found:
            _remove_container(client, container["Id"])
        return len(found)

    async def close(self) -> None:
        # Every sandbox is gone by now, even one whose start was cancelled half-way.
        self._live.clear()
        await asyncio.to_thread(remove_leftovers, Path(self._relay.root), self._manager_id, set())
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
