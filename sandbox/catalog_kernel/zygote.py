"""The kernel's main process: it holds the heavy imports and forks one worker per session.

One thread, one ``selectors`` loop over the request channel and the current worker's pipes
(stdout, stderr, control). It never runs user code, so it stays responsive while a cell spins,
and it outlives workers that exit, segfault or are killed for memory. The protocol is described
in ``catalog_kernel.protocol``.

A cell's life: the request goes to the worker's command pipe; output is streamed through a
``CappedStream`` per stream; the worker's "done" ends it. Past the cell's timeout the worker's
process group gets SIGINT; if the cell has not ended ``interrupt_grace_s`` later, the group is
killed and a fresh worker forked with the same session, and "done" says the state was lost.

With a session identity (see ``isolation``), whenever a worker is replaced, reset or the session
ends, every process of the session's uid dies, not only the worker's group; reset and the end of
a session also empty the session's folders.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from catalog_kernel.capping import CappedStream, cap_text
from catalog_kernel.connections import SessionSettings, scrub, secrets_of
from catalog_kernel.isolation import SessionFolders, SessionIdentity, kill_session_processes
from catalog_kernel.protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    Message,
    ProtocolError,
    write_frame,
)
from catalog_kernel.query_cancel import cancel_server_query
from catalog_kernel.worker import run_worker


@dataclass(frozen=True)
class KernelOptions:
    scratch: str
    default_timeout_s: float = 600.0
    interrupt_grace_s: float = 1.0
    default_max_output_bytes: int = 100_000
    connect_timeout_s: float = 60.0
    preload_ms: float = 0.0
    identity: SessionIdentity | None = None  # None: not isolated (the process backend)
    # Emptied at reset and when a session ends: the scratch folder, and /dev/shm and the like.
    folders: SessionFolders = field(default_factory=lambda: SessionFolders(()))


@dataclass
class _Worker:
    pid: int
    cmd_w: int
    ctl_r: int
    out_r: int
    err_r: int
    ready: bool = False
    exit_status: int | None = None
    # The control pipe's write end lives in the worker, where a cell can write to it too: frames
    # are capped, and what breaks the protocol gets the worker replaced (see _reject_worker).
    control: FrameDecoder = field(default_factory=lambda: FrameDecoder(_CONTROL_FRAME_BYTES))
    violation: str = ""  # why the kernel killed it, when it broke the control protocol
    server_session: Message = field(default_factory=dict)  # its database session, if any


@dataclass
class _SessionOp:
    """A start_session or reset waiting for the new worker to report ready."""

    request_id: object
    started: float
    deadline: float


@dataclass
class _CellOp:
    """An execute request in flight."""

    request_id: object
    started: float
    deadline: float
    timeout_s: float
    streams: dict[str, CappedStream]
    interrupt_reason: str = ""  # "timeout" or "interrupted" once SIGINT was sent
    kill_deadline: float = 0.0
    max_bytes: int = 0  # the cell's output cap, for its result and error texts too
    answered: set[str] = field(default_factory=set)  # result, error, done: each at most once


# A result is at most MAX_RESULT_CHARS (worker.py) characters, JSON-escaped: far under this.
_CONTROL_FRAME_BYTES = 8 * 1024 * 1024


def _now() -> float:
    return time.monotonic()


class Kernel:
    def __init__(self, channel_in: int, channel_out: int, options: KernelOptions) -> None:
        self._in = channel_in
        self._out = channel_out
        self._options = options
        self._requests = FrameDecoder()
        self._selector = selectors.DefaultSelector()
        self._session: Message = {}
        self._secrets: list[str] = []
        self._worker: _Worker | None = None
        self._standby: _Worker | None = None  # forked ahead, waiting for a session
        self._op: _SessionOp | _CellOp | None = None
        self._stopping = False
        self._session_uid_used = False  # has any worker dropped to the session uid yet?

    # --- the loop ---------------------------------------------------------------------------
    def serve(self) -> None:
        os.set_blocking(self._in, False)
        self._selector.register(self._in, selectors.EVENT_READ, self._on_request_bytes)
        self._send(
            {
                "ev": "hello",
                "protocol": PROTOCOL_VERSION,
                "pid": os.getpid(),
                "preload_ms": round(self._options.preload_ms, 1),
            }
        )
        try:
            while not self._stopping:
                if self._op is None:
                    self._ensure_standby()
                for key, _ in self._selector.select(self._select_timeout()):
                    callback: Callable[[int], None] = key.data
                    callback(key.fd)
                self._check_deadlines()
                self._reap_orphans()
        except BrokenPipeError:
            pass  # the client hung up: nobody is left to serve
        finally:
            self._kill_worker()
            self._discard_standby()

    def _select_timeout(self) -> float:
        if self._op is None:
            return 1.0
        deadline = self._op.deadline
        if isinstance(self._op, _CellOp) and self._op.interrupt_reason:
            deadline = self._op.kill_deadline
        return max(0.0, min(1.0, deadline - _now()))

    def _send(self, message: Message) -> None:
        write_frame(self._out, message)

    def _send_text(self, kind: str, request_id: object, text: str) -> None:
        if text:
            self._send({"ev": kind, "id": request_id, "text": scrub(text, self._secrets)})

    # --- requests ---------------------------------------------------------------------------
    def _on_request_bytes(self, fd: int) -> None:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return
        if not data:  # the client hung up
            self._stopping = True
            return
        try:
            requests = self._requests.feed(data)
        except ProtocolError as exc:
            self._send({"ev": "protocol_error", "id": None, "message": str(exc)})
            self._stopping = True
            return
        for request in requests:
            self._dispatch(request)

    def _dispatch(self, request: Message) -> None:
        op, request_id = request.get("op"), request.get("id")
        handlers: dict[str, Callable[[Message], None]] = {
            "start_session": self._start_session,
            "reset": self._reset,
            "execute": self._execute,
            "interrupt": self._interrupt_request,
            "end_session": self._end_session,
            "ping": self._ping,
            "shutdown": self._shutdown,
        }
        handler = handlers.get(str(op))
        if handler is None:
            self._protocol_error(request_id, f"unknown op {op!r}")
        elif self._op is not None and op in ("start_session", "reset", "execute"):
            self._protocol_error(request_id, f"busy with request {self._op.request_id!r}")
        else:
            handler(request)

    def _protocol_error(self, request_id: object, message: str) -> None:
        self._send({"ev": "protocol_error", "id": request_id, "message": message})

    def _start_session(self, request: Message) -> None:
        self._session = dict(request.get("session") or {})
        self._secrets = secrets_of(SessionSettings.from_message(self._session))
        self._replace_worker(request)

    def _reset(self, request: Message) -> None:
        if "session" in request:  # new connection settings for the fresh worker
            self._session = dict(request.get("session") or {})
            self._secrets = secrets_of(SessionSettings.from_message(self._session))
        self._replace_worker(request, empty_scratch=True)

    def _replace_worker(self, request: Message, empty_scratch: bool = False) -> None:
        started = _now()
        # Tearing down a large worker takes tens of ms: let the loop reap it after the new
        # worker is serving.
        self._kill_worker(wait=False)
        self._kill_session_processes()
        # With a session uid the new worker empties the folders itself, once it is that uid:
        # that saves forking a cleaner from this large process.
        empty_in_worker = empty_scratch and self._options.identity is not None
        if empty_scratch and not empty_in_worker:
            self._options.folders.empty(None)
        self._activate_worker(empty_folders=empty_in_worker)
        self._op = _SessionOp(request.get("id"), started, started + self._options.connect_timeout_s)

    def _execute(self, request: Message) -> None:
        code = request.get("code")
        if not isinstance(code, str):
            self._protocol_error(request.get("id"), "execute needs a string 'code'")
            return
        timeout_s = float(request.get("timeout_s") or self._options.default_timeout_s)
        max_bytes = int(request.get("max_output_bytes") or self._options.default_max_output_bytes)
        started = _now()
        streams = {"stdout": CappedStream(max_bytes), "stderr": CappedStream(max_bytes)}
        self._op = _CellOp(
            request.get("id"), started, started + timeout_s, timeout_s, streams, max_bytes=max_bytes
        )
        if self._worker is None:
            self._activate_worker()
        assert self._worker is not None
        try:
            write_frame(self._worker.cmd_w, {"code": code})
        except BrokenPipeError:
            self._on_worker_exit()

    def _interrupt_request(self, request: Message) -> None:
        if isinstance(self._op, _CellOp) and not self._op.interrupt_reason:
            self._interrupt("interrupted")

    def _end_session(self, request: Message) -> None:
        started = _now()
        if isinstance(self._op, _CellOp):  # the lease ended under a running cell
            self._op.interrupt_reason = self._op.interrupt_reason or "interrupted"
            worker = self._worker
            self._kill_worker()
            if worker is not None:
                cancel_server_query(self._session, worker.server_session)
            why = "the session ended while the cell ran; its Python process was stopped"
            self._send_error({"ename": "KeyboardInterrupt", "evalue": why, "traceback": ""})
            self._finish_cell("interrupted", state_lost=True)
        elif isinstance(self._op, _SessionOp):
            self._kill_worker()
            self._finish_session({"connect_error": "the session ended before it was open"})
        self._kill_worker()
        self._kill_session_processes()
        # The standby was forked while this session's settings were in memory: never reuse it.
        self._discard_standby()
        self._session, self._secrets = {}, []
        self._options.folders.empty(self._options.identity)
        self._send(
            {
                "ev": "session_ended",
                "id": request.get("id"),
                "duration_ms": round((_now() - started) * 1000, 3),
            }
        )

    def _ping(self, request: Message) -> None:
        self._send(
            {
                "ev": "pong",
                "id": request.get("id"),
                "worker_alive": self._worker is not None,
                "busy": self._op is not None,
            }
        )

    def _shutdown(self, request: Message) -> None:
        self._stopping = True

    # --- the worker -------------------------------------------------------------------------
    def _fork_worker(self) -> _Worker:
        """Fork a worker that waits for its session settings; its pipes are not watched yet."""
        cmd_r, cmd_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: keep only its own ends of its own pipes, then never return
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            self._selector.close()
            inherited = [self._in, self._out, cmd_w, ctl_r, out_r, err_r, out_w, err_w]
            for other in (self._worker, self._standby):
                if other is not None:
                    inherited += [other.cmd_w, other.ctl_r, other.out_r, other.err_r]
            for fd in inherited:
                with contextlib.suppress(OSError):
                    os.close(fd)
            options = self._options
            run_worker(cmd_r, ctl_w, options.scratch, options.identity, options.folders)
        # The child makes itself a group leader too; doing it here as well closes the race in
        # which a signal to the group arrives before the child has run that line.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        for fd in (cmd_r, ctl_w, out_w, err_w):
            os.close(fd)
        return _Worker(pid, cmd_w, ctl_r, out_r, err_r)

    def _ensure_standby(self) -> None:
        if self._standby is None and not self._stopping:
            self._standby = self._fork_worker()

    def _discard_standby(self) -> None:
        if self._standby is not None:
            self._kill(self._standby, wait=True)
            self._standby = None

    def _activate_worker(self, empty_folders: bool = False) -> None:
        """Make the standby (or, without one, a new worker) current and hand it the session."""
        worker, self._standby = self._standby or self._fork_worker(), None
        self._session_uid_used = True
        start = {"session": self._session, "empty_folders": empty_folders}
        try:
            write_frame(worker.cmd_w, start)
        except BrokenPipeError:  # the standby died while it waited: start a new one
            self._kill(worker, wait=True)
            worker = self._fork_worker()
            write_frame(worker.cmd_w, start)
        for fd, callback in (
            (worker.ctl_r, self._on_control),
            (worker.out_r, self._on_output),
            (worker.err_r, self._on_output),
        ):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, callback)
        self._worker = worker

    def _kill_worker(self, wait: bool = True) -> None:
        """Kill the current worker; idempotent. Without wait, the loop reaps it later."""
        if self._worker is not None:
            self._kill(self._worker, wait)
            self._worker = None

    def _kill_session_processes(self) -> None:
        """Kill what the session started outside the worker's group (setsid, double forks).

        The standby is still root until it gets a session, so it survives this."""
        if self._options.identity is not None and self._session_uid_used:
            kill_session_processes(self._options.identity.uid, self._reap_orphans)

    def _kill(self, worker: _Worker, wait: bool) -> None:
        _signal_worker(worker.pid, signal.SIGKILL)
        if wait:
            self._wait_worker(worker)
        self._close_worker(worker)

    def _wait_worker(self, worker: _Worker) -> None:
        if worker.exit_status is not None:
            return
        try:
            _, status = os.waitpid(worker.pid, 0)
            worker.exit_status = status
        except ChildProcessError:  # already reaped by _reap_orphans
            worker.exit_status = worker.exit_status or 0

    def _close_worker(self, worker: _Worker) -> None:
        for fd in (worker.ctl_r, worker.out_r, worker.err_r):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
        for fd in (worker.cmd_w, worker.ctl_r, worker.out_r, worker.err_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _on_output(self, fd: int) -> None:
        data = _read_available(fd)
        if data is None:  # end of file: the worker is gone, the control pipe will say so
            self._selector.unregister(fd)
            return
        self._route_output(fd, data)

    def _route_output(self, fd: int, data: bytes) -> None:
        # Output outside a cell (a background thread, a connection warning) is dropped.
        if not data or not isinstance(self._op, _CellOp) or self._worker is None:
            return
        kind = "stdout" if fd == self._worker.out_r else "stderr"
        self._send_text(kind, self._op.request_id, self._op.streams[kind].feed(data))

    def _drain_output(self) -> None:
        """Forward what the worker wrote before its last control message, keeping order."""
        if self._worker is None:
            return
        for fd in (self._worker.out_r, self._worker.err_r):
            data = _read_available(fd)
            if data:
                self._route_output(fd, data)

    def _on_control(self, fd: int) -> None:
        assert self._worker is not None
        data = _read_available(fd)
        if data is None:
            self._on_worker_exit()
            return
        try:
            messages = self._worker.control.feed(data)
        except ProtocolError as exc:
            self._reject_worker(f"it wrote a malformed control frame: {exc}")
            return
        for message in messages:
            if self._worker is None:  # rejected by an earlier message
                return
            self._on_worker_message(message)

    def _reject_worker(self, why: str) -> None:
        """A cell wrote to the worker's control pipe: replace the worker, as after a crash."""
        assert self._worker is not None
        self._worker.violation = why
        _signal_worker(self._worker.pid, signal.SIGKILL)
        self._on_worker_exit()

    def _on_worker_message(self, message: Message) -> None:
        assert self._worker is not None
        event = message.get("ev")
        if event == "ready":
            if self._worker.ready:
                self._reject_worker("it said it was ready twice")
                return
            self._worker.ready = True
            self._worker.server_session = dict(message.get("server_session") or {})
            if isinstance(self._op, _SessionOp):
                self._finish_session(message)
            return
        if not isinstance(self._op, _CellOp):
            return
        if event in self._op.answered:
            self._reject_worker(f"it sent a second {event!r} for one cell")
            return
        self._op.answered.add(str(event))
        self._drain_output()
        if event == "result":
            text = cap_text(str(message.get("text_plain", "")), self._op.max_bytes)
            text = scrub(text, self._secrets)
            self._send({"ev": "result", "id": self._op.request_id, "text_plain": text})
        elif event == "error":
            if self._op.interrupt_reason and message.get("ename") == "KeyboardInterrupt":
                message = self._interrupted_error(state_lost=False)
            self._send_error(message)
        elif event == "done":
            self._finish_cell(str(message.get("status", "ok")), state_lost=False)

    def _finish_session(self, ready: Message) -> None:
        assert isinstance(self._op, _SessionOp)
        self._send(
            {
                "ev": "session",
                "id": self._op.request_id,
                "backend": ready.get("backend", ""),
                "read_only": bool(ready.get("read_only")),
                "connect_error": scrub(str(ready.get("connect_error", "")), self._secrets),
                "duration_ms": round((_now() - self._op.started) * 1000, 3),
            }
        )
        self._op = None

    def _send_error(self, message: Message) -> None:
        assert isinstance(self._op, _CellOp)
        limit = self._op.max_bytes
        self._send(
            {
                "ev": "error",
                "id": self._op.request_id,
                "ename": str(message.get("ename", "")),
                "evalue": scrub(cap_text(str(message.get("evalue", "")), limit), self._secrets),
                "traceback": scrub(
                    cap_text(str(message.get("traceback", "")), limit), self._secrets
                ),
            }
        )

    def _finish_cell(self, status: str, state_lost: bool) -> None:
        op = self._op
        assert isinstance(op, _CellOp)
        if op.interrupt_reason and self._options.identity is not None:
            # The worker stopped, but what the cell forked (a fork bomb) may not have.
            spare = self._worker.pid if self._worker is not None else 0
            kill_session_processes(self._options.identity.uid, self._reap_orphans, spare=spare)
        for kind, stream in op.streams.items():
            if stream.bytes_omitted:
                self._send(
                    {
                        "ev": "truncated",
                        "id": op.request_id,
                        "stream": kind,
                        "bytes_omitted": stream.bytes_omitted,
                    }
                )
            self._send_text(kind, op.request_id, stream.finish())
        self._send(
            {
                "ev": "done",
                "id": op.request_id,
                "status": op.interrupt_reason or status,
                "duration_ms": round((_now() - op.started) * 1000, 3),
                "state_lost": state_lost,
                "stdout_bytes_omitted": op.streams["stdout"].bytes_omitted,
                "stderr_bytes_omitted": op.streams["stderr"].bytes_omitted,
            }
        )
        self._op = None

    def _on_worker_exit(self) -> None:
        """The worker died (exit, signal, OOM kill, or our own kill): report, then replace it."""
        worker = self._worker
        assert worker is not None
        self._drain_output()
        self._wait_worker(worker)
        self._close_worker(worker)
        self._worker = None
        was_ready = worker.ready
        if isinstance(self._op, _CellOp):
            if self._op.interrupt_reason:
                self._send_error(self._interrupted_error(state_lost=True))
            else:
                self._send_error(
                    {"ename": "WorkerCrashed", "evalue": _describe_exit(worker), "traceback": ""}
                )
            self._finish_cell("crashed", state_lost=True)
        elif isinstance(self._op, _SessionOp):
            self._finish_session(
                {
                    "connect_error": "the Python process died while opening the "
                    f"session: {_describe_exit(worker)}"
                }
            )
            return
        self._kill_session_processes()
        # Have the next cell's interpreter ready, unless workers die before they are even ready.
        if was_ready:
            self._activate_worker()

    def _interrupted_error(self, state_lost: bool) -> Message:
        assert isinstance(self._op, _CellOp)
        if self._op.interrupt_reason == "timeout":
            what = f"the cell did not finish within its timeout of {self._op.timeout_s:g} s"
        else:
            what = "the cell was interrupted by the client"
        if state_lost:
            what += (
                "; it ignored the interrupt, so its Python process was replaced and every "
                "variable was lost"
            )
        ename = "TimeoutError" if self._op.interrupt_reason == "timeout" else "KeyboardInterrupt"
        return {"ename": ename, "evalue": what, "traceback": ""}

    # --- time -------------------------------------------------------------------------------
    def _interrupt(self, reason: str) -> None:
        assert isinstance(self._op, _CellOp) and self._worker is not None
        self._op.interrupt_reason = reason
        self._op.kill_deadline = _now() + self._options.interrupt_grace_s
        _signal_worker(self._worker.pid, signal.SIGINT)

    def _check_deadlines(self) -> None:
        op, now = self._op, _now()
        if isinstance(op, _CellOp):
            if not op.interrupt_reason and now >= op.deadline:
                self._interrupt("timeout")
            elif op.interrupt_reason and now >= op.kill_deadline and self._worker is not None:
                _signal_worker(self._worker.pid, signal.SIGKILL)
                cancel_server_query(self._session, self._worker.server_session)
                self._on_worker_exit()
        elif isinstance(op, _SessionOp) and now >= op.deadline:
            self._kill_worker()
            self._finish_session(
                {
                    "connect_error": "opening the session took longer than "
                    f"{self._options.connect_timeout_s:g} s"
                }
            )

    def _reap_orphans(self) -> None:
        """Reap exited children; in a container the kernel is PID 1 and inherits orphans."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._worker is not None and pid == self._worker.pid:
                self._worker.exit_status = status


def _signal_worker(pid: int, sig: int) -> None:
    """Signal a worker's whole process group, so subprocesses a cell started share its fate.

    Fall back to the worker alone when its group is gone or not yet formed: a signal that
    reaches nobody would leave a later waitpid blocked forever.
    """
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _read_available(fd: int) -> bytes | None:
    """Everything readable now; None at end of file."""
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        except OSError as exc:
            if exc.errno == errno.EBADF:
                break
            raise
        if not data:
            return b"".join(chunks) if chunks else None
        chunks.append(data)
    return b"".join(chunks)


def _describe_exit(worker: _Worker) -> str:
    if worker.violation:
        return (
            f"the kernel replaced the Python process because {worker.violation} (cells must "
            "not write to the kernel's channels); its variables are lost"
        )
    status = worker.exit_status or 0
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        hint = " (likely killed for using too much memory)" if number == signal.SIGKILL else ""
        return (
            f"the Python process was killed by signal {number} ({name}){hint}; "
            "its variables are lost"
        )
    return (
        f"the Python process exited with code {os.waitstatus_to_exitcode(status)}; "
        "its variables are lost"
    )
