"""Keeps a session's processes and files from outliving it, whatever its cells did.

In a container the kernel runs as root holding only CAP_SETUID, CAP_SETGID and CAP_KILL. A worker
drops to the session's own uid before it reads a cell, so nothing a cell starts, ``setsid()`` or
not, can signal, trace or read the kernel or a standby worker (they are root), and the kernel finds
all of it by uid: ``kill_session_processes`` kills every process of that uid, and
``SessionFolders.empty`` empties the scratch folder, ``/dev/shm`` and ``/dev/mqueue`` as that uid
(root without CAP_DAC_OVERRIDE could not enter a folder a cell made mode 000), whatever their
modes. An ``RLIMIT_NPROC`` below the container's pids limit keeps a fork bomb from leaving the
kernel unable to fork its next worker.

Without an identity (the process backend, or a kernel not started as root) none of this applies:
the kernel falls back to killing the worker's process group, and says it is not isolated.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

_PR_SET_DUMPABLE = 4
_KILL_ROUNDS_S = 5.0


@dataclass(frozen=True)
class SessionIdentity:
    """Who a session's code runs as, and how many processes it may have at once."""

    uid: int
    gid: int
    max_processes: int


def drop_to_session(identity: SessionIdentity) -> None:
    """In a freshly forked child: become the session's uid for good (no way back)."""
    resource.setrlimit(resource.RLIMIT_NPROC, (identity.max_processes, identity.max_processes))
    os.setgroups([])
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    # A uid change makes the process undumpable, which hides its own /proc/self files from it
    # (some libraries read them). Dumpable again only to its own uid: the kernel stays root.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)


def session_pids(uid: int) -> list[int]:
    """Every live process whose real or effective uid is the session's.

    Zombies are left out: they are dead already, and no signal reaches them; their parent (or,
    once it dies, the kernel as PID 1) reaps them.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:  # it exited while we looked
            continue
        real, effective = fields.get("Uid", "").split()[:2] or ("", "")
        if str(uid) in (real, effective) and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(name))
    return found


def kill_session_processes(uid: int, reap: Callable[[], None], spare: int = 0) -> int:
    """SIGKILL every process of the session's uid but ``spare`` until none is left; return how
    many died. ``reap`` collects the zombies (the kernel is PID 1, so orphans are its children).

    A killed process cannot fork any more, so a fork bomb runs out within a few rounds.
    """
    killed: set[int] = set()
    deadline = time.monotonic() + _KILL_ROUNDS_S
    while time.monotonic() < deadline:
        pids = [pid for pid in session_pids(uid) if pid not in (os.getpid(), spare)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        reap()
        time.sleep(0.001)
    return len(killed)


@dataclass(frozen=True)
class SessionFolders:
    """The folders a session may write, with each one's mode when the kernel started."""

    modes: tuple[tuple[str, int], ...]

    @classmethod
    def snapshot(cls, paths: tuple[str, ...]) -> SessionFolders:
        return cls(tuple((path, stat.S_IMODE(os.stat(path).st_mode)) for path in paths))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.modes)

    def empty(self, identity: SessionIdentity | None) -> None:
        """Remove everything inside each folder, as the session's uid if any; put modes back."""
        if identity is None:
            self.empty_here()
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            status = 0
            try:
                drop_to_session(identity)
                self.empty_here()
            except BaseException:
                status = 1
            os._exit(status)
        os.waitpid(pid, 0)

    def empty_here(self) -> None:
        """Empty them as this process's uid, and remove its System V IPC objects too."""
        for path, mode in self.modes:
            with contextlib.suppress(OSError):  # only the folder's owner may; others kept theirs
                os.chmod(path, mode)
            empty_folder(path)
        remove_sysv_objects()


def empty_folder(path: str) -> None:
    """Remove what is inside ``path``, making each folder writable first; never raises."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        _remove(entry.path)


def _remove(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)  # its owner may have made it unreadable or read only
        empty_folder(path)
        with contextlib.suppress(OSError):
            os.rmdir(path)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


# System V shared memory, semaphores and message queues outlive every process: a session could
# leave data, or pin memory, for the next agent. IPC_RMID as their owner removes them (memory
# still attached goes once the attached processes die, which they have by then).
_IPC_RMID = 0
_IPC_PRIVATE = 0
_SYSV_KINDS = ("shm", "sem", "msg")
_PROBED_IDS = 4096  # where no bound can be learned


def remove_sysv_objects() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for kind in _SYSV_KINDS:
        ids = _listed_ids(kind)
        for ipc_id in range(_next_id(libc, kind)) if ids is None else ids:
            _remove_sysv(libc, kind, ipc_id)


def _remove_sysv(libc: ctypes.CDLL, kind: str, ipc_id: int) -> None:
    if kind == "sem":
        libc.semctl(ipc_id, 0, _IPC_RMID)
    else:
        getattr(libc, f"{kind}ctl")(ipc_id, _IPC_RMID, None)


def _listed_ids(kind: str) -> list[int] | None:
    """The ids of every object of a kind (others' fail to be removed), or None when unknown."""
    try:
        with open(f"/proc/sysvipc/{kind}") as listing:
            rows = listing.read().splitlines()[1:]
    except OSError:
        return None
    return [int(row.split()[1]) for row in rows if row.split()]


def _next_id(libc: ctypes.CDLL, kind: str) -> int:
    """gVisor has no /proc/sysvipc, but hands out ids in order without reuse: a fresh object's
    id bounds every id in use, so the probe costs what the session itself spent."""
    if kind == "shm":
        fresh = libc.shmget(_IPC_PRIVATE, 1, 0o600)
    elif kind == "sem":
        fresh = libc.semget(_IPC_PRIVATE, 1, 0o600)
    else:
        fresh = libc.msgget(_IPC_PRIVATE, 0o600)
    if fresh < 0:
        return _PROBED_IDS
    _remove_sysv(libc, kind, fresh)
    return int(fresh)
