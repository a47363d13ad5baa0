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

from catalog_kernel.preload import DEFAULT_MODULES, preload
from catalog_kernel.zygote import Kernel, KernelOptions


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
    return parser.parse_args(argv)


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
    options = KernelOptions(
        scratch=args.scratch or tempfile.mkdtemp(prefix="catalog-kernel-"),
        default_timeout_s=args.default_timeout_s,
        interrupt_grace_s=args.interrupt_grace_s,
        default_max_output_bytes=args.max_output_bytes,
        preload_ms=preload(modules),
    )
    os.makedirs(options.scratch, exist_ok=True)
    # Keep the preloaded objects out of the collector's reach: a worker's first collection
    # would otherwise write to every object and copy the parent's whole heap.
    gc.freeze()
    Kernel(channel_in, channel_out, options).serve()


if __name__ == "__main__":
    main()
