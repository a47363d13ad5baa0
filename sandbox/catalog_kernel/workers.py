"""A worker process as the kernel sees it: its pipes, its fork, its signals and its end.

The kernel forks workers from its pre-loaded self (``fork_worker``) and talks to each over four
pipes: commands in, control frames out (results, errors, the end of a cell), stdout, stderr.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from catalog_kernel.protocol import FrameDecoder, Message

# A result is at most MAX_RESULT_CHARS (worker.py) characters, JSON-escaped: far under this.
CONTROL_FRAME_BYTES = 8 * 1024 * 1024


@dataclass
class Worker:
    pid: int
    cmd_w: int
    ctl_r: int
    out_r: int
    err_r: int
    ready: bool = False
    exit_status: int | None = None
    # The control pipe's write end lives in the worker, where a cell can write to it too: frames
    # are capped, and what breaks the protocol gets the worker replaced (Kernel._reject_worker).
    control: FrameDecoder = field(default_factory=lambda: FrameDecoder(CONTROL_FRAME_BYTES))
    violation: str = ""  # why the kernel killed it, when it broke the control protocol
    # who it is on each database's server, by database name (see query_cancel)
    server_sessions: Message = field(default_factory=dict)

    @property
    def kernel_fds(self) -> tuple[int, int, int, int]:
        """The kernel's ends of this worker's pipes."""
        return (self.cmd_w, self.ctl_r, self.out_r, self.err_r)


def fork_worker(in_child: Callable[[int, int], None], close_in_child: Iterable[int]) -> Worker:
    """Fork a worker; the child closes `close_in_child` and every pipe end but its own, then
    calls `in_child(command_fd, control_fd)`, which never returns."""
    cmd_r, cmd_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: keep only its own ends of its own pipes
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (*close_in_child, cmd_w, ctl_r, out_r, err_r, out_w, err_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        in_child(cmd_r, ctl_w)
    # The child makes itself a group leader too; doing it here as well closes the race in
    # which a signal to the group arrives before the child has run that line.
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    for fd in (cmd_r, ctl_w, out_w, err_w):
        os.close(fd)
    return Worker(pid, cmd_w, ctl_r, out_r, err_r)


def signal_worker(pid: int, sig: int) -> None:
    """Signal a worker's whole process group, so subprocesses a cell started share its fate.

    Fall back to the worker alone when its group is gone or not yet formed: a signal that
    reaches nobody would leave a later waitpid blocked forever.
    """
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_worker(worker: Worker) -> None:
    if worker.exit_status is not None:
        return
    try:
        _, status = os.waitpid(worker.pid, 0)
        worker.exit_status = status
    except ChildProcessError:  # already reaped by the kernel's reaper
        worker.exit_status = worker.exit_status or 0


def read_available(fd: int) -> bytes | None:
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


def describe_exit(worker: Worker) -> str:
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
