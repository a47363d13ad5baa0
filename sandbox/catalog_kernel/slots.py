"""The kernel's two worker slots: the current worker, and a standby forked ahead of need.

Forking, handing a session over, killing (the worker's group, and with a session uid every
process of that uid) and reaping live here; what the workers say is the kernel's business.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
from collections.abc import Callable

from catalog_kernel.isolation import SessionFolders, SessionIdentity, kill_session_processes
from catalog_kernel.protocol import Message, write_frame
from catalog_kernel.worker import run_worker
from catalog_kernel.workers import Worker, fork_worker, signal_worker, wait_worker

FdCallback = Callable[[int], None]


class WorkerSlots:
    def __init__(
        self,
        selector: selectors.BaseSelector,
        channel_fds: tuple[int, int],
        scratch: str,
        identity: SessionIdentity | None,
        folders: SessionFolders,
    ) -> None:
        self._selector = selector
        self._channel_fds = channel_fds  # the kernel's own stdio: no worker keeps them
        self._scratch = scratch
        self._identity = identity
        self._folders = folders
        self.current: Worker | None = None
        self.standby: Worker | None = None  # forked ahead, waiting for a session
        self._uid_used = False  # has any worker dropped to the session uid yet?

    def fork(self) -> Worker:
        """Fork a worker that waits for its session settings; its pipes are not watched yet."""
        others = [fd for w in (self.current, self.standby) if w is not None for fd in w.kernel_fds]

        def in_child(cmd_r: int, ctl_w: int) -> None:
            self._selector.close()
            run_worker(cmd_r, ctl_w, self._scratch, self._identity, self._folders)

        return fork_worker(in_child, [*self._channel_fds, *others])

    def ensure_standby(self) -> None:
        if self.standby is None:
            self.standby = self.fork()

    def discard_standby(self) -> None:
        if self.standby is not None:
            self.kill(self.standby, wait=True)
            self.standby = None

    def activate(self, start: Message, on_control: FdCallback, on_output: FdCallback) -> Worker:
        """Make the standby (or, without one, a new worker) current and send it `start`."""
        worker, self.standby = self.standby or self.fork(), None
        self._uid_used = True
        try:
            write_frame(worker.cmd_w, start)
        except BrokenPipeError:  # the standby died while it waited: start a new one
            self.kill(worker, wait=True)
            worker = self.fork()
            write_frame(worker.cmd_w, start)
        for fd, callback in (
            (worker.ctl_r, on_control),
            (worker.out_r, on_output),
            (worker.err_r, on_output),
        ):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, callback)
        self.current = worker
        return worker

    def kill_current(self, wait: bool = True) -> None:
        """Kill the current worker; idempotent. Without wait, `reap` collects it later."""
        if self.current is not None:
            self.kill(self.current, wait)
            self.current = None

    def kill_session_processes(self, spare: int = 0) -> None:
        """Kill what the session started outside the worker's group (setsid, double forks).

        The standby is still root until it gets a session, so it survives this."""
        if self._identity is not None and self._uid_used:
            kill_session_processes(self._identity.uid, self.reap, spare=spare)

    def kill(self, worker: Worker, wait: bool) -> None:
        signal_worker(worker.pid, signal.SIGKILL)
        if wait:
            wait_worker(worker)
        self.close(worker)

    def close(self, worker: Worker) -> None:
        for fd in (worker.ctl_r, worker.out_r, worker.err_r):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
        for fd in worker.kernel_fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def reap(self) -> None:
        """Reap exited children; in a container the kernel is PID 1 and inherits orphans."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.current is not None and pid == self.current.pid:
                self.current.exit_status = status
