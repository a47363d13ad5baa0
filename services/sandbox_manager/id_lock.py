"""One live manager per id: an exclusive flock on a file named after the id, held for life.

A manager removes every container carrying its id's label when it starts (what a killed run
left behind), so a second manager started with a live one's id would destroy the first one's
sandboxes, leases and all. The second must refuse to start instead.

Why flock: the kernel releases the lock when its holder exits, however it exits (kill -9
included), so a crashed manager's id is free again at once, with no stale lock to clean up and
no heartbeat or clock to tune. Where: for the Docker backend, in the relay folder
(CATALOG_SANDBOX_RELAY_DIR), which dockerd must see at the same path because every sandbox
mounts its relay folder from it; so every manager that can reach the containers of a dockerd
shares that folder, and so the lock (compose mounts one host folder into every manager). The
process backend's sandboxes are this host's processes: its lock lives in the temporary folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path

from services.common.env import SettingsError


class ManagerIdLock:
    """Held from `acquire` to `release` (or the process's exit).

    `release` removes the file while still holding the lock, so a stopped manager leaves
    nothing behind; whoever opened the old file meanwhile sees, once it holds the lock, that
    the path no longer names that file, and tries again on the new one (a killed manager's
    file stays, unlocked, for its next start to take).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, manager_id: str) -> None:
        """Take the id, or raise SettingsError naming the setting to change."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise SettingsError(
                    f"another sandbox manager ({holder}) is running with the id "
                    f"{manager_id!r}, and would lose its sandboxes to this one: give each "
                    f"manager its own CATALOG_SANDBOX_MANAGER_ID (lock: {self.path})"
                ) from None
            if not self._names(fd):  # its holder removed it as we opened it: take the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            self._fd = fd

    def _names(self, fd: int) -> bool:
        try:
            held, named = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while locked: see the class docstring
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None


def lock_path(manager_id: str, backend: str, relay_dir: str) -> Path:
    """Where the lock on `manager_id` lives: a dot-file, so no leftover sweep globs it."""
    folder = Path(relay_dir) if backend == "docker" else Path(tempfile.gettempdir())
    return folder / f".catalog-manager-{manager_id}.lock"
