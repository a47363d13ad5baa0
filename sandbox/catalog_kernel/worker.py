"""The worker: a process forked from the pre-loaded kernel that runs one session's cells.

It inherits every heavy import from its parent, opens the session's read-only connections, then
runs cells in one namespace that persists until the worker is replaced. Its fd 1 and 2 are pipes
the parent reads while a cell runs, so output streams as it is written. Results, errors and the
end of each cell go back on a separate control pipe, framed as in ``protocol``.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import linecache
import os
import signal
import sys
import traceback
from typing import Any

from catalog_kernel.capping import cap_text
from catalog_kernel.connections import (
    OpenSession,
    SessionDatabase,
    SessionSettings,
    apply_s3_environment,
    open_session,
    scrub,
    secrets_of,
)
from catalog_kernel.isolation import SessionFolders, SessionIdentity, drop_to_session
from catalog_kernel.protocol import FrameDecoder, Message, read_frame, write_frame
from catalog_kernel.session_guard import SessionGuard

MAX_RESULT_CHARS = 1_000_000


def run_worker(
    cmd_fd: int,
    ctl_fd: int,
    scratch: str,
    identity: SessionIdentity | None = None,
    folders: SessionFolders | None = None,
) -> None:
    """Entry point in the child after fork; never returns.

    A worker is forked ahead of need and waits: its first command is the session's settings.
    Until then it keeps the kernel's uid, so a running session cannot tamper with it; then it
    drops to the session's uid for good, before it connects or runs anything.
    """
    try:
        _prepare_process(scratch)
        namespace = _fresh_namespace()
        decoder, pending = FrameDecoder(), []  # type: ignore[var-annotated]
        first = read_frame(cmd_fd, decoder, pending)
        if first is None:
            return
        if identity is not None:
            drop_to_session(identity)
            if folders is not None and first.get("empty_folders"):  # a reset
                folders.empty_here()  # as the session's uid, whatever modes a cell left
        settings = SessionSettings.from_message(first.get("session") or {})
        ready, guards = _open_session(namespace, settings)
        write_frame(ctl_fd, {"ev": "ready", **ready})
        del first, settings
        _serve(cmd_fd, ctl_fd, namespace, decoder, pending, guards)
    except BaseException:  # the parent reports a worker that died; this one must not linger
        traceback.print_exc()
    finally:
        os._exit(0)


def _prepare_process(scratch: str) -> None:
    # Own process group: a timeout kills the cell's subprocesses together with it.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Be the first process the OOM killer picks, so a memory hog kills the worker, not the kernel.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    # Unbuffered text streams on the pipes: every write reaches the parent at once.
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )
    os.environ["HOME"] = scratch
    os.chdir(scratch)


def _fresh_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for alias, module in (("ibis", "ibis"), ("pd", "pandas"), ("pl", "polars")):
        if module in sys.modules:
            namespace[alias] = sys.modules[module]
    if "ibis" in sys.modules:
        sys.modules["ibis"].options.interactive = True  # a table shows its rows, as in a notebook
    return namespace


def _open_session(
    namespace: dict[str, Any], settings: SessionSettings
) -> tuple[Message, list[SessionGuard]]:
    """Open every database as ``cons[name]``, the first also as ``con``; one that fails is left
    out and its scrubbed error reported, the others still open. The ready message also says
    who each session is on its server (never sent on to the client), so the kernel can stop
    their queries if this worker is killed."""
    os.environ.update(settings.env)
    apply_s3_environment(settings.s3)
    secrets = secrets_of(settings)
    cons: dict[str, Any] = {}
    reports: list[Message] = []
    guards: list[SessionGuard] = []
    server_sessions: dict[str, Message] = {}
    for database in settings.databases:
        report, opened, server_session = _open_database(
            database, settings.statement_timeout_s, secrets
        )
        reports.append(report)
        if opened is None:
            continue
        cons[database.name] = opened.con
        if opened.guard is not None:
            guards.append(opened.guard)
            server_sessions[database.name] = server_session
    namespace["cons"] = cons  # every database that opened, by name, in the session's order
    if settings.databases and settings.databases[0].name in cons:
        namespace["con"] = cons[settings.databases[0].name]
    first = reports[0] if reports else {"backend": "", "read_only": False, "connect_error": ""}
    ready = {
        "backend": first["backend"],
        "read_only": first["read_only"],
        "connect_error": first["connect_error"],
        "databases": reports,
        "server_sessions": server_sessions,
    }
    return ready, guards


def _open_database(
    database: SessionDatabase, statement_timeout_s: float, secrets: list[str]
) -> tuple[Message, OpenSession | None, Message]:
    """What the client learns of one database, its open session, and who it is on the server."""
    report: Message = {"name": database.name, "backend": "", "read_only": False}
    if not database.dsn:  # the manager could not make it reachable, and said why
        error = database.error or "the session gave no connection string for this database"
        return {**report, "connect_error": scrub(error, secrets)}, None, {}
    try:
        session = open_session(database.dsn, statement_timeout_s)
        server_session = session.guard.server_session() if session.guard else {}
    except Exception as exc:  # any driver error: report it scrubbed, keep the worker usable
        message = scrub(f"{type(exc).__name__}: {exc}", secrets)
        return {**report, "connect_error": message}, None, {}
    report.update(backend=session.info.backend, read_only=session.info.read_only)
    return {**report, "connect_error": ""}, session, server_session


def _serve(
    cmd_fd: int,
    ctl_fd: int,
    namespace: dict[str, Any],
    decoder: FrameDecoder,
    pending: list[Message],
    guards: list[SessionGuard],
) -> None:
    cell_number = 0
    while True:
        try:
            request = read_frame(cmd_fd, decoder, pending)
            if request is None:
                return
            cell_number += 1
            for guard in guards:  # whatever the last cell did, this one starts read only
                guard.restore()
            _run_cell(str(request["code"]), cell_number, namespace, ctl_fd)
        except KeyboardInterrupt:
            # An interrupt that arrived just after a cell ended: the parent already has "done".
            continue


def _run_cell(code: str, number: int, namespace: dict[str, Any], ctl_fd: int) -> None:
    filename = f"<cell {number}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    status = "ok"
    worker_pid = os.getpid()
    try:
        value = _execute(code, filename, namespace)
        if value is not None:
            namespace["_"] = value
            write_frame(ctl_fd, {"ev": "result", "text_plain": _display(value)})
    except BaseException as exc:  # user code is data: every failure, SystemExit too, is reported
        _exit_if_forked(worker_pid)
        status = "error"
        write_frame(ctl_fd, _describe_error(exc))
    finally:
        _exit_if_forked(worker_pid)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a user may have replaced sys.stdout
                stream.flush()
    write_frame(ctl_fd, {"ev": "done", "status": status})


def _exit_if_forked(worker_pid: int) -> None:
    """A process a cell forked that returns from the cell must not act as the worker: it would
    answer on the worker's control pipe and read its next cell."""
    if os.getpid() != worker_pid:
        os._exit(0)


def _execute(code: str, filename: str, namespace: dict[str, Any]) -> Any:
    """Run the cell; return the value of its last line when that line is an expression."""
    tree = ast.parse(code, filename, "exec")
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        exec(compile(tree, filename, "exec"), namespace)
        return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
    exec(compile(tree, filename, "exec"), namespace)
    return None


def _display(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the cell
        text = f"<{type(value).__name__} object; repr() failed: {exc!r}>"
    return cap_text(text, MAX_RESULT_CHARS)


def _describe_error(exc: BaseException) -> Message:
    # Drop the frames of this module, so the traceback starts in the user's cell.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    if isinstance(exc, SyntaxError):
        lines = traceback.format_exception_only(type(exc), exc)
    else:
        lines = traceback.format_exception(type(exc), exc, tb)
    return {
        "ev": "error",
        "ename": type(exc).__name__,
        "evalue": cap_text(_safe_str(exc), MAX_RESULT_CHARS),
        "traceback": cap_text("".join(lines), MAX_RESULT_CHARS),
    }


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as failed:  # a broken __str__ must not fail the report
        return f"<{type(exc).__name__}; str() failed: {failed!r}>"
