"""A pgbouncer per PostgreSQL lease: the only module that starts or configures pgbouncer.

It listens on a Unix socket only, in the sandbox's relay folder, and logs in to the real server
itself, with the credentials from its config file; that file (mode 0600) and the ``auth_file``
live in a private folder of the manager's that is never mounted anywhere. The sandbox side is
``auth_type = trust`` with one user in the ``auth_file``: so the kernel's DSN carries no password,
and the admin console (database ``pgbouncer``) refuses every name, since none of them is listed.

Read only and the statement timeout are set by pgbouncer on each server connection
(``connect_query``); ``server_lifetime = 0`` uses each server connection once, so a ``SET`` a
cell made never reaches the next client, and ``DISCARD ALL`` never undoes the ``connect_query``.
pgbouncer does not pass the client's ``options`` on (``ignore_startup_parameters``).

pgbouncer refuses to run as root; a root manager starts it with ``-u nobody``, and pgbouncer
binds its socket after switching, so the relay folder is then owned by ``nobody``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
from dataclasses import dataclass
from pathlib import Path

from services.sandbox_manager.errors import DatabaseUnreachable

_START_TIMEOUT_S = 10.0
_STOP_GRACE_S = 5.0
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
ROOT_RUNS_AS = "nobody"  # who a root manager's pgbouncer runs as


@dataclass(frozen=True)
class ServerLogin:
    """The real server, as pgbouncer dials it. Every field but ``address`` may be secret."""

    address: str  # resolved by the manager once: pgbouncer never looks a name up
    port: int
    user: str
    password: str
    database: str
    sslmode: str
    statement_timeout_s: float


def runs_as_uid() -> int | None:
    """The uid pgbouncer switches to, or None when it keeps the manager's."""
    return pwd.getpwnam(ROOT_RUNS_AS).pw_uid if os.geteuid() == 0 else None


def _quote(value: str) -> str:
    """A value of pgbouncer's connection strings: quoted, a quote doubled (its only escape)."""
    return "'" + value.replace("'", "''") + "'"


def _config(login: ServerLogin, socket_dir: Path, auth_file: Path, alias: str) -> str:
    timeout_ms = int(login.statement_timeout_s * 1000)
    connect_query = f"SET default_transaction_read_only = on; SET statement_timeout = {timeout_ms}"
    target = " ".join(
        f"{key}={_quote(value)}"
        for key, value in (
            ("host", login.address),
            ("port", str(login.port)),
            ("dbname", login.database),
            ("user", login.user),
            ("password", login.password),
            ("connect_query", connect_query),
        )
        if value  # pgbouncer refuses empty values: no password is no password= at all
    )
    sslmode = login.sslmode if login.sslmode in _SSL_MODES else "prefer"
    return "\n".join(
        [
            "[databases]",
            f"{alias} = {target}",
            "[pgbouncer]",
            "listen_addr =",
            f"listen_port = {login.port}",
            f"unix_socket_dir = {socket_dir}",
            "unix_socket_mode = 0666",
            "auth_type = trust",
            f"auth_file = {auth_file}",
            "pool_mode = session",
            "server_lifetime = 0",
            "server_reset_query =",
            "ignore_startup_parameters = options,extra_float_digits,search_path",
            f"server_tls_sslmode = {sslmode}",
            "client_tls_sslmode = disable",
            "max_client_conn = 50",
            "default_pool_size = 20",
            "server_connect_timeout = 15",
            "server_login_retry = 1",
            "logfile =",
            "syslog = 0",
            "",
        ]
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


class PgBouncer:
    """One running pgbouncer; ``start`` returns once its socket accepts connections."""

    def __init__(self, binary: str, private_dir: Path, socket_dir: Path) -> None:
        self._binary = binary
        self._private = private_dir
        self._socket_dir = socket_dir
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid_file(self) -> Path:
        return self._private / "pgbouncer.pid"

    async def start(self, login: ServerLogin, client_user: str, alias: str) -> None:
        """Serve database ``alias`` to user ``client_user`` (both plain names: [A-Za-z0-9_])."""
        auth_file = self._private / "users.txt"
        config = self._private / "pgbouncer.ini"
        _write_private(auth_file, f'"{client_user}" ""\n')
        _write_private(config, _config(login, self._socket_dir, auth_file, alias))
        user = ["-u", ROOT_RUNS_AS] if os.geteuid() == 0 else []
        log = self._private / "pgbouncer.log"
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._binary,
                *user,
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # a Ctrl-C at the manager's terminal is the manager's
            )
        except OSError as exc:
            raise DatabaseUnreachable(f"pgbouncer could not start: {exc}") from exc
        finally:
            os.close(output)
        self.pid_file.write_text(f"{self._process.pid}\n")
        await self._wait_listening(login.port, log)

    async def _wait_listening(self, port: int, log: Path) -> None:
        """Until a connection is accepted: the socket file exists a moment before listen()."""
        socket_path = self._socket_dir / f".s.PGSQL.{port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        assert self._process is not None
        while True:
            if self._process.returncode is not None or loop.time() > deadline:
                await self.stop()
                raise DatabaseUnreachable(f"pgbouncer did not start: {_last_fatal(log)}")
            try:
                _, writer = await asyncio.open_unix_connection(str(socket_path))
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            return

    async def stop(self) -> None:
        """Stop it (SIGTERM: every connection is cut at once); idempotent."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _last_fatal(log: Path) -> str:
    """pgbouncer's own reason (its FATAL line names no password), or a generic one."""
    with contextlib.suppress(OSError):
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if " FATAL " in line:
                return line.split(" FATAL ", 1)[1].strip()
    return "it exited or did not listen in time"


def kill_leftover(private_dir: Path) -> None:
    """Kill the pgbouncer an earlier run of this manager left in this folder, if it still runs.

    Only a process whose command line names this folder's config is killed: a recycled pid
    belongs to someone else.
    """
    with contextlib.suppress(OSError, ValueError):
        pid = int((private_dir / "pgbouncer.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if str(private_dir / "pgbouncer.ini").encode() in cmdline:
            os.kill(pid, signal.SIGKILL)
