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

import os
import selectors
import signal
import time
from collections.abc import Callable

from catalog_kernel.capping import CappedStream, cap_text
from catalog_kernel.connections import SessionSettings, scrub, secrets_of
from catalog_kernel.operations import CellOp, SessionOp, ms_since
from catalog_kernel.options import KernelOptions
from catalog_kernel.protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    Message,
    ProtocolError,
    write_frame,
)
from catalog_kernel.query_cancel import cancel_server_queries
from catalog_kernel.slots import WorkerSlots
from catalog_kernel.workers import (
    Worker,
    describe_exit,
    read_available,
    signal_worker,
    wait_worker,
)


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
        self._slots = WorkerSlots(
            self._selector,
            (channel_in, channel_out),
            options.scratch,
            options.identity,
            options.folders,
        )
        self._op: SessionOp | CellOp | None = None
        self._stopping = False

    @property
    def _worker(self) -> Worker | None:
        return self._slots.current

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
                    self._slots.ensure_standby()
                for key, _ in self._selector.select(self._select_timeout()):
                    callback: Callable[[int], None] = key.data
                    callback(key.fd)
                self._check_deadlines()
                self._slots.reap()
        except BrokenPipeError:
            pass  # the client hung up: nobody is left to serve
        finally:
            self._kill_worker()
            self._slots.discard_standby()

    def _select_timeout(self) -> float:
        if self._op is None:
            return 1.0
        deadline = self._op.deadline
        if isinstance(self._op, CellOp) and self._op.interrupt_reason:
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
        self._slots.kill_session_processes()
        # With a session uid the new worker empties the folders itself, once it is that uid:
        # that saves forking a cleaner from this large process.
        empty_in_worker = empty_scratch and self._options.identity is not None
        if empty_scratch and not empty_in_worker:
            self._options.folders.empty(None)
        self._activate_worker(empty_folders=empty_in_worker)
        self._op = SessionOp(request.get("id"), started, started + self._options.connect_timeout_s)

    def _execute(self, request: Message) -> None:
        code = request.get("code")
        if not isinstance(code, str):
            self._protocol_error(request.get("id"), "execute needs a string 'code'")
            return
        timeout_s = float(request.get("timeout_s") or self._options.default_timeout_s)
        max_bytes = int(request.get("max_output_bytes") or self._options.default_max_output_bytes)
        started = _now()
        streams = {"stdout": CappedStream(max_bytes), "stderr": CappedStream(max_bytes)}
        self._op = CellOp(
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
        if isinstance(self._op, CellOp) and not self._op.interrupt_reason:
            self._interrupt("interrupted")

    def _end_session(self, request: Message) -> None:
        started = _now()
        if isinstance(self._op, CellOp):  # the lease ended under a running cell
            self._op.interrupt_reason = self._op.interrupt_reason or "interrupted"
            worker = self._worker
            self._kill_worker()
            if worker is not None:
                cancel_server_queries(self._session, worker.server_sessions)
            why = "the session ended while the cell ran; its Python process was stopped"
            self._send_error({"ename": "KeyboardInterrupt", "evalue": why, "traceback": ""})
            self._finish_cell("interrupted", state_lost=True)
        elif isinstance(self._op, SessionOp):
            self._kill_worker()
            self._finish_session({"connect_error": "the session ended before it was open"})
        self._kill_worker()
        self._slots.kill_session_processes()
        # The standby was forked while this session's settings were in memory: never reuse it.
        self._slots.discard_standby()
        self._session, self._secrets = {}, []
        self._options.folders.empty(self._options.identity)
        self._send(
            {"ev": "session_ended", "id": request.get("id"), "duration_ms": ms_since(started)}
        )

    def _ping(self, request: Message) -> None:
        alive, busy = self._worker is not None, self._op is not None
        self._send({"ev": "pong", "id": request.get("id"), "worker_alive": alive, "busy": busy})

    def _shutdown(self, request: Message) -> None:
        self._stopping = True

    # --- the worker -------------------------------------------------------------------------
    def _activate_worker(self, empty_folders: bool = False) -> None:
        """Make the standby (or a new worker) current and hand it the session."""
        start = {"session": self._session, "empty_folders": empty_folders}
        self._slots.activate(start, self._on_control, self._on_output)

    def _kill_worker(self, wait: bool = True) -> None:
        self._slots.kill_current(wait)

    def _on_output(self, fd: int) -> None:
        data = read_available(fd)
        if data is None:  # end of file: the worker is gone, the control pipe will say so
            self._selector.unregister(fd)
            return
        self._route_output(fd, data)

    def _route_output(self, fd: int, data: bytes) -> None:
        # Output outside a cell (a background thread, a connection warning) is dropped.
        if not data or not isinstance(self._op, CellOp) or self._worker is None:
            return
        kind = "stdout" if fd == self._worker.out_r else "stderr"
        self._send_text(kind, self._op.request_id, self._op.streams[kind].feed(data))

    def _drain_output(self) -> None:
        """Forward what the worker wrote before its last control message, keeping order."""
        if self._worker is None:
            return
        for fd in (self._worker.out_r, self._worker.err_r):
            data = read_available(fd)
            if data:
                self._route_output(fd, data)

    def _on_control(self, fd: int) -> None:
        assert self._worker is not None
        data = read_available(fd)
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
        signal_worker(self._worker.pid, signal.SIGKILL)
        self._on_worker_exit()

    def _on_worker_message(self, message: Message) -> None:
        assert self._worker is not None
        event = message.get("ev")
        if event == "ready":
            if self._worker.ready:
                self._reject_worker("it said it was ready twice")
                return
            self._worker.ready = True
            self._worker.server_sessions = dict(message.get("server_sessions") or {})
            if isinstance(self._op, SessionOp):
                self._finish_session(message)
            return
        if not isinstance(self._op, CellOp):
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
                message = self._op.interrupted_error(state_lost=False)
            self._send_error(message)
        elif event == "done":
            self._finish_cell(str(message.get("status", "ok")), state_lost=False)

    def _finish_session(self, ready: Message) -> None:
        assert isinstance(self._op, SessionOp)
        self._send(self._op.session_event(ready, self._secrets))
        self._op = None

    def _send_error(self, message: Message) -> None:
        assert isinstance(self._op, CellOp)
        self._send(self._op.error_event(message, self._secrets))

    def _finish_cell(self, status: str, state_lost: bool) -> None:
        op = self._op
        assert isinstance(op, CellOp)
        if op.interrupt_reason:
            # The worker stopped, but what the cell forked (a fork bomb) may not have.
            self._slots.kill_session_processes(spare=self._worker.pid if self._worker else 0)
        for event in op.closing_events(status, state_lost, self._secrets):
            self._send(event)
        self._op = None

    def _on_worker_exit(self) -> None:
        """The worker died (exit, signal, OOM kill, or our own kill): report, then replace it."""
        worker = self._worker
        assert worker is not None
        self._drain_output()
        wait_worker(worker)
        self._slots.close(worker)
        self._slots.current = None
        was_ready = worker.ready
        if isinstance(self._op, CellOp):
            if self._op.interrupt_reason:
                self._send_error(self._op.interrupted_error(state_lost=True))
            else:
                self._send_error(
                    {"ename": "WorkerCrashed", "evalue": describe_exit(worker), "traceback": ""}
                )
            self._finish_cell("crashed", state_lost=True)
        elif isinstance(self._op, SessionOp):
            self._finish_session(
                {
                    "connect_error": "the Python process died while opening the "
                    f"session: {describe_exit(worker)}"
                }
            )
            return
        self._slots.kill_session_processes()
        # Have the next cell's interpreter ready, unless workers die before they are even ready.
        if was_ready:
            self._activate_worker()

    # --- time -------------------------------------------------------------------------------
    def _interrupt(self, reason: str) -> None:
        assert isinstance(self._op, CellOp) and self._worker is not None
        self._op.interrupt_reason = reason
        self._op.kill_deadline = _now() + self._options.interrupt_grace_s
        signal_worker(self._worker.pid, signal.SIGINT)

    def _check_deadlines(self) -> None:
        op, now = self._op, _now()
        if isinstance(op, CellOp):
            if not op.interrupt_reason and now >= op.deadline:
                self._interrupt("timeout")
            elif op.interrupt_reason and now >= op.kill_deadline and self._worker is not None:
                signal_worker(self._worker.pid, signal.SIGKILL)
                cancel_server_queries(self._session, self._worker.server_sessions)
                self._on_worker_exit()
        elif isinstance(op, SessionOp) and now >= op.deadline:
            self._kill_worker()
            self._finish_session(
                {
                    "connect_error": "opening the session took longer than "
                    f"{self._options.connect_timeout_s:g} s"
                }
            )
