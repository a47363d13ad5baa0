"""A sandbox's one way to each database: a Unix socket in a folder the manager makes for it.

Docker sandboxes have no network (``--network none``). Each gets a host folder,
``CATALOG_SANDBOX_RELAY_DIR/<sandbox id>``, bind-mounted read only at ``/run/catalog-db``. When a
lease begins, the manager resolves the database's host name once and listens in that folder (a
session of several databases: in a sub-folder per database, ``/run/catalog-db/<name>/``, each
with a listener of its own; the paths below then start with that sub-folder):

- PostgreSQL: a pgbouncer of the lease's own on ``.s.PGSQL.<port>`` (see ``pgbouncer``), which
  logs in with the real credentials; the kernel gets
  ``postgresql://user@/db?host=/run/catalog-db&port=<port>``, with no password at all;
- MySQL and MariaDB: a byte relay on ``mysql.sock``; the kernel gets the DSN with
  ``unix_socket=/run/catalog-db/mysql.sock`` and, since mysqlclient logs in itself, the password;
- DuckDB (a file, see CATALOG_SANDBOX_DATA_MOUNT) and no database: no socket at all.

Either way the socket leads to the one (address, port) of the lease, resolved once: nothing a
client sends can change where it goes. When the lease ends the socket goes, and every relayed
connection with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from services.sandbox_manager.errors import DatabaseUnreachable
from services.sandbox_manager.pgbouncer import PgBouncer, ServerLogin, kill_leftover, runs_as_uid

_CONNECT_TIMEOUT_S = 15.0
_RESOLVE_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 5.0
_CHUNK = 65536
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
# Query parameters that say where the server is: the relay decides that, not the DSN.
_WHERE = {"host", "hostaddr", "port", "unix_socket"}
PRIVATE_PREFIX = "catalog-dbrelay-"


@dataclass(frozen=True)
class Target:
    """A server database as a DSN names it. Every field may be secret; never log one."""

    kind: str  # "postgres" or "mysql"
    host: str
    port: int
    userinfo: str  # as written in the DSN, still %-encoded
    database: str  # %-decoded
    query: tuple[tuple[str, str], ...]  # the DSN's other query parameters


def parse_target(dsn: str) -> Target | None:
    """The server a DSN names, or None for what needs no relay (DuckDB, no DSN)."""
    parts = urlsplit(dsn)
    scheme = parts.scheme.lower()
    kinds = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306}
    if scheme not in kinds:
        return None  # the kernel opens DuckDB files, and refuses anything else itself
    query = parse_qsl(parts.query)
    named = dict(query)
    host = parts.hostname or named.get("host") or "localhost"
    if host.startswith("/") or "," in host:
        raise DatabaseUnreachable(
            "a sandbox reaches its database through the manager's relay, which dials one TCP "
            "host and port: name one host (not a Unix socket, not a list)"
        )
    try:
        port = parts.port or int(named.get("port") or kinds[scheme])
    except ValueError as exc:
        raise DatabaseUnreachable("the database port is not a number") from exc
    return Target(
        kind="postgres" if kinds[scheme] == 5432 else "mysql",
        host=host,
        port=port,
        userinfo=parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "",
        database=unquote(parts.path.lstrip("/")),
        query=tuple((k, v) for k, v in query if k not in _WHERE),
    )


async def resolve(host: str, port: int) -> str:
    """The host's address, looked up once; IPv4 first (servers on 127.0.0.1 are common)."""
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"the database host could not be resolved: {exc}") from exc
    found.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(found[0][4][0])


async def refuse_denied(address: str, deny: tuple[str, ...]) -> None:
    """Raise if the address is in a denied network, or is what a denied name resolves to."""
    found = ipaddress.ip_address(address.split("%", 1)[0])
    loop = asyncio.get_running_loop()
    for entry in deny:
        try:
            hit = found in ipaddress.ip_network(entry, strict=False)
        except ValueError:  # a host name: compare with what it resolves to now
            try:
                infos = await loop.getaddrinfo(entry, None, type=socket.SOCK_STREAM)
            except OSError:
                continue
            hit = any(ipaddress.ip_address(str(info[4][0])) == found for info in infos)
        if hit:
            raise DatabaseUnreachable(
                "the database's address is one the sandbox manager may not relay to "
                "(CATALOG_SANDBOX_RELAY_DENY)"
            )


async def check_answers(address: str, port: int) -> None:
    """Dial the database once before the lease's listener opens.

    Nothing behind the port would otherwise show only as the kernel's session timing out (a
    pgbouncer keeps retrying), with no word of where the address was dialled from: the manager's
    host, whose loopback is its own container's when it runs in one.
    """
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), _PROBE_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        # The errno's words, not str(exc): asyncio's names the address it dialled.
        errno = exc.errno if isinstance(exc, OSError) else None
        reason = os.strerror(errno) if errno else type(exc).__name__
        raise DatabaseUnreachable(
            f"nothing answered at the database's host on port {port}, dialled by the sandbox "
            f"manager from where it runs ({reason}); {_where_hint(address)}"
        ) from exc
    writer.close()


def _where_hint(address: str) -> str:
    if not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
        return "check the host name and port, and that the manager's network may reach them"
    return (
        "the host is loopback, which is the manager's own (its container's, when it runs in "
        "one): start the database there, or name a host the manager can reach"
    )


class StreamRelay:
    """Bytes both ways between each client of a Unix socket and one fixed TCP address."""

    def __init__(self, path: Path, address: str, port: int) -> None:
        self._path = path
        self._address = address
        self._port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self._path))
        os.chmod(self._path, 0o666)  # noqa: S103 (the sandbox's user is not ours)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            # A refused or slow dial closes the client's connection, as a refused one would.
            source, sink = await asyncio.wait_for(
                asyncio.open_connection(self._address, self._port), _CONNECT_TIMEOUT_S
            )
            upstream = sink
            await asyncio.gather(_pipe(reader, sink), _pipe(source, writer))
        except (OSError, TimeoutError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()
            self._clients.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()  # the other direction then reads its end of file


def kernel_dsn(target: Target, query: dict[str, str], userinfo: str) -> str:
    """The DSN the kernel gets: no host, the socket in the query string."""
    scheme = "postgresql" if target.kind == "postgres" else "mysql"
    at = f"{userinfo}@" if userinfo else ""
    params = urlencode([*target.query, *query.items()])
    return f"{scheme}://{at}/{quote(target.database, safe='')}?{params}"


@dataclass
class _Listener:
    """One database's way in: a pgbouncer or a byte relay, in its folder."""

    folder: Path  # where its socket is (the sandbox's relay folder, or a sub-folder of it)
    lease_dir: Path  # its private files (pgbouncer's config), never mounted
    own_folder: bool  # a source's sub-folder, removed with it
    relay: StreamRelay | None = None
    bouncer: PgBouncer | None = None

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        if self.bouncer is not None:
            await self.bouncer.stop()
        shutil.rmtree(self.lease_dir, ignore_errors=True)
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:  # pgbouncer killed hard leaves its socket
            for leftover in self.folder.glob(".s.PGSQL.*"):
                leftover.unlink(missing_ok=True)


class DatabaseRelay:
    """One sandbox's relay folder, and the lease's listeners in it.

    A session given one `db_dsn` gets its listener in the folder itself (name ""), as it always
    has; a session given `databases` gets one per database, each in a sub-folder named after
    it (``/run/catalog-db/<name>/`` in the sandbox), with its own pgbouncer or byte relay, its
    own address resolved, denied or dialled once: no socket of one leads to another's server.
    """

    def __init__(
        self,
        folder: Path,
        mount: str,
        pgbouncer: str,
        private_dir: Path,
        deny: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        self._deny = deny  # networks, addresses and names never dialled
        self._mount = mount  # where the folder appears inside the sandbox
        self._pgbouncer_binary = pgbouncer  # "" relays PostgreSQL as bytes too
        self.private = private_dir
        self._listeners: dict[str, _Listener] = {}  # by database name; "" for a `db_dsn`

    async def open(self, dsn: str, statement_timeout_s: float, name: str = "") -> str:
        """Listen for one database; return the DSN the kernel should use.

        Without a name, the session's one database: every earlier listener closes first. With
        one, that database's sub-folder: only its own earlier listener closes."""
        if name:
            await self._close_one(name)
        else:
            await self.close()
        target = parse_target(dsn)
        if target is None:
            return dsn
        address = await resolve(target.host, target.port)
        await refuse_denied(address, self._deny)
        await check_answers(address, target.port)
        listener = self._listener(name)
        self._listeners[name] = listener
        mount = f"{self._mount}/{name}" if name else self._mount
        if target.kind == "postgres" and self._pgbouncer_binary:
            return await self._open_pgbouncer(listener, mount, target, address, statement_timeout_s)
        socket_name = f".s.PGSQL.{target.port}" if target.kind == "postgres" else "mysql.sock"
        listener.relay = StreamRelay(listener.folder / socket_name, address, target.port)
        await listener.relay.start()
        if target.kind == "postgres":  # libpq: host is the folder, the port names the file
            where = {"host": mount, "port": str(target.port)}
        else:
            where = {"unix_socket": f"{mount}/{socket_name}"}
        return kernel_dsn(target, where, target.userinfo)

    def _listener(self, name: str) -> _Listener:
        if not name:
            return _Listener(self.folder, self.private / "lease", own_folder=False)
        folder = self.folder / name
        folder.mkdir(mode=0o755, exist_ok=True)
        _open_to_the_sandbox(folder)
        return _Listener(folder, self.private / f"lease-{name}", own_folder=True)

    async def _open_pgbouncer(
        self, listener: _Listener, mount: str, target: Target, address: str, timeout_s: float
    ) -> str:
        user, _, password = target.userinfo.partition(":")
        user, password = unquote(user), unquote(password)
        database = target.database or user
        alias = database if _PLAIN_NAME.match(database) else "catalog_db"
        client_user = user if _PLAIN_NAME.match(user) else "catalog"
        login = ServerLogin(
            address=address,
            port=target.port,
            user=user,
            password=password,
            database=database,
            sslmode=dict(target.query).get("sslmode", "prefer"),
            statement_timeout_s=timeout_s,
        )
        listener.lease_dir.mkdir(mode=0o700)
        listener.bouncer = PgBouncer(self._pgbouncer_binary, listener.lease_dir, listener.folder)
        await listener.bouncer.start(login, client_user, alias)
        plain = Target(target.kind, "", target.port, "", alias, ())
        where = {"host": mount, "port": str(target.port)}
        return kernel_dsn(plain, where, quote(client_user, safe=""))

    async def _close_one(self, name: str) -> None:
        listener = self._listeners.pop(name, None)
        if listener is not None:
            await listener.close()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection; idempotent, never raises."""
        for name in list(self._listeners):
            await self._close_one(name)
        shutil.rmtree(self.private / "lease", ignore_errors=True)
        for leftover in self.folder.glob(".s.PGSQL.*"):  # pgbouncer killed hard leaves its socket
            leftover.unlink(missing_ok=True)


def _open_to_the_sandbox(folder: Path) -> None:
    folder.chmod(0o755)  # whatever the umask: the sandbox's user must get in
    uid = runs_as_uid()
    if uid is not None:  # a root manager's pgbouncer binds its socket as that user
        os.chown(folder, uid, -1)


def make_folders(relay_root: Path, sandbox_id: str) -> tuple[Path, Path]:
    """The sandbox's relay folder (mounted into it) and its private one (never mounted)."""
    relay_root.mkdir(parents=True, exist_ok=True, mode=0o755)
    folder = relay_root / sandbox_id
    folder.mkdir(mode=0o755)
    _open_to_the_sandbox(folder)
    private = private_root() / f"{PRIVATE_PREFIX}{sandbox_id}"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(mode=0o700)
    return folder, private


def private_root() -> Path:
    return Path(tempfile.gettempdir())


def remove_folders(folder: Path, private: Path) -> None:
    for lease_dir in private.glob("lease*"):  # "lease", and "lease-<name>" for each database
        kill_leftover(lease_dir)
    shutil.rmtree(private, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def remove_leftovers(relay_root: Path, manager_id: str, live: set[str]) -> int:
    """Remove the folders (and kill the pgbouncers) of this manager's sandboxes that are gone."""
    removed = 0
    for folder in relay_root.glob(f"{manager_id}.*"):
        if folder.name not in live:
            remove_folders(folder, private_root() / f"{PRIVATE_PREFIX}{folder.name}")
            removed += 1
    for private in private_root().glob(f"{PRIVATE_PREFIX}{manager_id}.*"):
        if private.name.removeprefix(PRIVATE_PREFIX) not in live:
            remove_folders(relay_root / private.name.removeprefix(PRIVATE_PREFIX), private)
    return removed
