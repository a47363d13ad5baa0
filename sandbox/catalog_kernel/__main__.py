"""Run the kernel on this process's stdio: ``python -m catalog_kernel [--scratch DIR]``.

Settings come from the command line, else from the environment (CATALOG_KERNEL_*), so the image
and the subprocess backend configure it the same way.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import tempfile

from catalog_kernel.isolation import SessionFolders, SessionIdentity
from catalog_kernel.options import KernelOptions
from catalog_kernel.preload import DEFAULT_MODULES, preload
from catalog_kernel.zygote import Kernel


def _parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="catalog_kernel", description=__doc__)
    parser.add_argument(
        "--scratch",
        default=env("CATALOG_KERNEL_SCRATCH"),
        help="folder for the session's files, emptied when a session ends "
        "(default: a new private temporary folder)",
    )
    parser.add_argument(
        "--preload",
        default=env("CATALOG_KERNEL_PRELOAD", ",".join(DEFAULT_MODULES)),
        help="comma-separated modules to import before forking workers ('' for none)",
    )
    parser.add_argument(
        "--default-timeout-s",
        type=float,
        default=float(env("CATALOG_KERNEL_DEFAULT_TIMEOUT_S", "600")),
    )
    parser.add_argument(
        "--interrupt-grace-s",
        type=float,
        default=float(env("CATALOG_KERNEL_INTERRUPT_GRACE_S", "1.0")),
    )
    parser.add_argument(
        "--max-output-bytes",
        type=int,
        default=int(env("CATALOG_KERNEL_MAX_OUTPUT_BYTES", "100000")),
    )
    parser.add_argument(
        "--session-uid",
        type=int,
        default=int(env("CATALOG_KERNEL_SESSION_UID", "0")),
        help="uid (and gid) that sessions run as; needs a kernel started as root (0: none)",
    )
    parser.add_argument(
        "--session-max-processes",
        type=int,
        default=int(env("CATALOG_KERNEL_SESSION_MAX_PROCESSES", "128")),
        help="RLIMIT_NPROC of a session: keep it below the container's pids limit",
    )
    parser.add_argument(
        "--shared-folders",
        default=env("CATALOG_KERNEL_SHARED_FOLDERS", ""),
        help="comma-separated folders emptied with the scratch folder (e.g. /dev/shm)",
    )
    return parser.parse_args(argv)


def _identity(args: argparse.Namespace) -> SessionIdentity | None:
    """Sessions get a uid of their own only when the kernel can give it: as root."""
    if args.session_uid <= 0:
        return None
    if os.geteuid() != 0:
        print(
            "catalog_kernel: --session-uid needs a kernel started as root; sessions are NOT "
            "isolated from the kernel",
            file=sys.stderr,
        )
        return None
    return SessionIdentity(args.session_uid, args.session_uid, args.session_max_processes)


def _session_folders(scratch: str, shared: str) -> tuple[str, ...]:
    os.makedirs(scratch, exist_ok=True)
    return (scratch, *(f for f in shared.split(",") if f and os.path.isdir(f)))


def _safe_sys_path(scratch: str) -> None:
    """Nothing a session writes may become importable: no cwd entry, nothing under scratch."""
    root = os.path.realpath(scratch)
    sys.path[:] = [
        entry
        for entry in sys.path
        if entry and os.path.commonpath([root, os.path.realpath(entry)]) != root
    ]


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    # The protocol owns the original stdio; anything else that prints lands on stderr.
    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client stops us with shutdown or SIGTERM
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # jemalloc's background threads (in pyarrow and polars) would not survive the fork.
    for name in ("JE_ARROW_MALLOC_CONF", "_RJEM_MALLOC_CONF"):
        os.environ.setdefault(name, "background_thread:false")
    modules = tuple(m.strip() for m in args.preload.split(",") if m.strip())
    scratch = args.scratch or tempfile.mkdtemp(prefix="catalog-kernel-")
    _safe_sys_path(scratch)
    options = KernelOptions(
        scratch=scratch,
        default_timeout_s=args.default_timeout_s,
        interrupt_grace_s=args.interrupt_grace_s,
        default_max_output_bytes=args.max_output_bytes,
        preload_ms=preload(modules),
        identity=_identity(args),
        folders=SessionFolders.snapshot(_session_folders(scratch, args.shared_folders)),
    )
    # Keep the preloaded objects out of the collector's reach: a worker's first collection
    # would otherwise write to every object and copy the parent's whole heap.
    gc.freeze()
    Kernel(channel_in, channel_out, options).serve()


if __name__ == "__main__":
    main()
