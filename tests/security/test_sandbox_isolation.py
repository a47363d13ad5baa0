"""Attacks from inside a cell on what outlives it: processes, files, the kernel, the next lease.

Each test is one thing a hostile cell tries, in a container hardened exactly as the sandbox
manager starts them (tests/security/conftest.py).
"""

from __future__ import annotations

import asyncio
import textwrap

from catalog.v1 import sandbox_pb2 as pb

from services.sandbox_manager.kernel_client import CellResult, KernelClient
from tests.sandbox_manager.conftest import StartManager
from tests.sandbox_manager.test_lifecycle import run as run_grpc
from tests.sandbox_manager.test_lifecycle import stdout as stdout_of
from tests.security.conftest import SESSION_UID

# A cell that leaves a daemon behind: double fork and setsid, so it is in no group the kernel
# knows, then it keeps running under a name a test can look for.
PLANT_DAEMON = textwrap.dedent(
    """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open('/tmp/daemon.pid', 'w') as f:
                f.write(str(os.getpid()))
            while True:
                time.sleep(0.05)
        os._exit(0)
    time.sleep(0.3)
    int(open('/tmp/daemon.pid').read())
    """
)

SESSION_PROCESSES = textwrap.dedent(
    f"""
    import os
    mine = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                status = open(f'/proc/{{name}}/status').read()
            except OSError:
                continue
            uid = status.split('Uid:')[1].split()[0]
            zombie = status.split('State:')[1].split()[0] == 'Z'  # dead, awaiting its parent
            if uid == '{SESSION_UID}' and int(name) != os.getpid() and not zombie:
                mine.append(int(name))
    sorted(mine)
    """
)


async def run(kernel: KernelClient, code: str, **options: object) -> CellResult:
    cell = await kernel.execute(code, **options)
    assert cell.error is None or options, cell.error
    return cell


async def test_a_setsid_daemon_does_not_survive_a_reset(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    daemon = int((await run(isolated_kernel, PLANT_DAEMON)).result)
    assert daemon in eval((await run(isolated_kernel, SESSION_PROCESSES)).result)
    await isolated_kernel.reset()
    # Only the fresh worker itself is left of the session's uid (the cell excludes itself).
    assert eval((await run(isolated_kernel, SESSION_PROCESSES)).result) == []


async def test_a_cell_cannot_signal_or_read_the_kernel_or_the_standby_worker(
    isolated_kernel: KernelClient,
) -> None:
    """The standby is forked before the next session's settings reach it: a cell that could read
    its pipes (/proc/PID/fd) would read that session's DSN."""
    await isolated_kernel.start_session({"env": {"MARKER": "x"}})
    cell = await run(
        isolated_kernel,
        textwrap.dedent(
            """
            import os, signal
            others = [int(p) for p in os.listdir('/proc') if p.isdigit()
                      and os.stat(f'/proc/{p}').st_uid != os.getuid()]
            outcomes = {}
            for pid in others:
                for what, attempt in {
                    'signal': lambda: os.kill(pid, signal.SIGSTOP),
                    'memory': lambda: open(f'/proc/{pid}/mem', 'rb').read(1),
                    'pipes': lambda: [os.open(f'/proc/{pid}/fd/{fd}', os.O_RDONLY | os.O_NONBLOCK)
                                      for fd in os.listdir(f'/proc/{pid}/fd')],
                }.items():
                    try:
                        attempt()
                        outcomes[(pid, what)] = 'allowed'
                    except PermissionError:
                        outcomes[(pid, what)] = 'denied'
            len(others), set(outcomes.values())
            """
        ),
    )
    count, outcomes = eval(cell.result)
    assert count >= 2  # the kernel and its standby worker
    assert outcomes == {"denied"}, cell.result
    assert (await isolated_kernel.ping())["worker_alive"]


async def test_a_planted_package_is_not_imported_after_a_reset(
    isolated_kernel: KernelClient,
) -> None:
    await isolated_kernel.start_session({})
    await run(
        isolated_kernel,
        textwrap.dedent(
            """
            import os
            for name in ('matplotlib', 'catalog_helpers'):
                os.makedirs(f'/tmp/{name}')
                with open(f'/tmp/{name}/__init__.py', 'w') as f:
                    f.write("raise SystemExit('planted code ran')")
                os.chmod(f'/tmp/{name}', 0o555)   # read only: a plain rmtree cannot empty it
            os.makedirs('/tmp/locked/inner')
            os.chmod('/tmp/locked', 0)           # not even readable
            with open('/tmp/json.py', 'w') as f:
                f.write("raise SystemExit('planted json ran')")
            """
        ),
    )
    # Even in the same session, nothing written under /tmp shadows a module.
    same_session = await isolated_kernel.execute(
        "import importlib; importlib.reload(__import__('json')).__file__"
    )
    assert same_session.error is None and "/tmp" not in same_session.result
    await isolated_kernel.reset()
    cell = await run(
        isolated_kernel,
        textwrap.dedent(
            """
            import os, sys, importlib.util
            (sorted(os.listdir('/tmp')), importlib.util.find_spec('catalog_helpers'),
             [p for p in sys.path if p in ('', '/tmp') or p.startswith('/tmp/')])
            """
        ),
    )
    assert cell.result == "([], None, [])"


async def test_dev_shm_and_mqueue_are_emptied_on_reset(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    await run(
        isolated_kernel,
        textwrap.dedent(
            """
            import ctypes, os
            with open('/dev/shm/planted', 'w') as f:
                f.write('next agent, run this')
            os.chmod('/dev/shm/planted', 0o400)
            if os.path.isdir('/dev/mqueue'):  # gVisor has no mqueue file system
                librt = ctypes.CDLL('librt.so.1', use_errno=True)
                librt.mq_open.restype = ctypes.c_int
                assert librt.mq_open(b'/planted', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0
            """
        ),
    )
    await isolated_kernel.reset()
    listing = "import os; [os.listdir(d) for d in ('/dev/shm', '/dev/mqueue') if os.path.isdir(d)]"
    cell = await run(isolated_kernel, listing)
    assert cell.result in ("[[], []]", "[[]]")


async def test_a_fork_bomb_does_not_take_the_kernel_down(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    await run(isolated_kernel, "kept = 'before'")
    bomb = await isolated_kernel.execute(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        timeout_s=3,
    )
    assert bomb.status == "timeout"
    # Whether the worker survived the interrupt or was replaced, no process of the bomb is left.
    assert eval((await run(isolated_kernel, SESSION_PROCESSES)).result) == []
    assert (await run(isolated_kernel, "sum(range(10))")).result == "45"


async def test_a_full_tmpfs_does_not_take_the_kernel_down(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    full = await isolated_kernel.execute(
        "with open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)\n"
    )
    assert full.error is not None and full.error["ename"] == "OSError"  # No space left
    assert (await run(isolated_kernel, "'still here'")).result == "'still here'"
    await isolated_kernel.reset()
    assert (await run(isolated_kernel, "import os; os.listdir('/tmp')")).result == "[]"


STEAL_FOREVER = textwrap.dedent(
    """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:  # read every pipe and environment in reach, forever
                for pid in os.listdir('/proc'):
                    fds = [f'/proc/{pid}/fd/{n}' for n in range(12)]
                    for path in (f'/proc/{pid}/environ', *fds):
                        try:
                            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                            loot = os.read(fd, 65536)
                            os.close(fd)
                            if b'tenant-b' in loot:
                                open('/tmp/loot', 'ab').write(loot)
                        except OSError:
                            pass
                time.sleep(0.01)
        os._exit(0)
    'planted'
    """
)


async def test_a_daemon_left_by_one_lease_cannot_read_the_next_leases_session(
    start_manager: StartManager,
) -> None:
    manager = await start_manager(min_warm="1", max_size="1")
    stub = manager.stub
    first = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    assert (
        stdout_of(await run_grpc(stub, first.lease_id, STEAL_FOREVER + "\nprint('ok')")) == "ok\n"
    )
    await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=first.lease_id))
    session = pb.SessionConfig(env={"NEXT_TENANT_SECRET": "tenant-b-dsn-password"})
    second = (await stub.AcquireSandbox(pb.AcquireSandboxRequest(session=session))).lease
    assert second.sandbox_id != first.sandbox_id
    look = (
        "import os\n"
        "others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()\n"
        "          and os.stat(f'/proc/{p}').st_uid != 0]\n"
        "print(os.path.exists('/tmp/loot'), others)"
    )
    await asyncio.sleep(0.5)  # time for a daemon, had it survived, to read the new session
    # No loot, and no process but this cell's own and root's (the kernel and its standby).
    assert stdout_of(await run_grpc(stub, second.lease_id, look)) == "False []\n"


async def test_sysv_ipc_objects_do_not_survive_a_reset(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    plant = textwrap.dedent(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        shm = libc.shmget(0x5EED, 4096, 0o1666)
        ctypes.memmove(libc.shmat(shm, None, 0), b'PLANTED', 7)
        msg = libc.msgget(0x5EEE, 0o1666)
        sem = libc.semget(0x5EEF, 1, 0o1666)
        (shm >= 0, msg >= 0, sem >= 0)
        """
    )
    assert (await run(isolated_kernel, plant)).result == "(True, True, True)"
    await isolated_kernel.reset()
    look = textwrap.dedent(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        (libc.shmget(0x5EED, 0, 0), libc.msgget(0x5EEE, 0), libc.semget(0x5EEF, 0, 0))
        """
    )
    assert (await run(isolated_kernel, look)).result == "(-1, -1, -1)"  # all gone


# A cell can reach the worker's control pipe (it runs in the worker): find its write end.
FORGE = textwrap.dedent(
    """
    import json, os, struct
    def control_fd():
        for fd in map(int, os.listdir('/proc/self/fd')):
            if fd > 2 and os.path.exists(f'/proc/self/fdinfo/{fd}'):
                flags = int(open(f'/proc/self/fdinfo/{fd}').read().split('flags:')[1].split()[0], 8)
                if flags & 3 == os.O_WRONLY and 'pipe' in os.readlink(f'/proc/self/fd/{fd}'):
                    return fd
    def forge(message):
        body = json.dumps(message).encode()
        os.write(control_fd(), struct.pack('>I', len(body)) + body)
    """
)


async def test_forged_control_frames_get_the_worker_replaced(
    isolated_kernel: KernelClient,
) -> None:
    await isolated_kernel.start_session({})
    await run(isolated_kernel, "kept = 1")
    forged = await isolated_kernel.execute(
        FORGE + "forge({'ev': 'result', 'text_plain': 'x'})\n"
        "forge({'ev': 'result', 'text_plain': 'y' * 10_000_000})\n"
        "import time; time.sleep(5)"
    )
    assert forged.status == "crashed" and forged.state_lost
    assert forged.error is not None and "control" in forged.error["evalue"]
    assert len(forged.result or "") <= 100_000  # capped like output, not 10 MB
    after = await isolated_kernel.execute("kept")
    assert after.error is not None and after.error["ename"] == "NameError"  # a new worker
    assert (await run(isolated_kernel, "'fine'")).result == "'fine'"


async def test_a_huge_exception_message_is_capped(isolated_kernel: KernelClient) -> None:
    await isolated_kernel.start_session({})
    raised = await isolated_kernel.execute("raise ValueError('x' * 20_000_000)")
    assert raised.error is not None and raised.error["ename"] == "ValueError"
    assert "characters truncated" in raised.error["evalue"]
    assert len(raised.error["evalue"]) + len(raised.error["traceback"]) < 300_000
