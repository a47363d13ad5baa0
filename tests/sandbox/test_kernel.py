"""The kernel's behaviour as an agent sees it, on the subprocess kernel and in a real container."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from services.sandbox_manager.kernel_client import KernelClient

PASSWORD = "Sup3r-Secret-pw-4711"


@pytest.fixture(params=["process", "container"])
def kernel_client(request: pytest.FixtureRequest) -> KernelClient:
    """The same behaviour is asserted on both ways the kernel runs."""
    name = "shared_kernel" if request.param == "process" else "container_kernel"
    client: KernelClient = request.getfixturevalue(name)
    return client


@pytest.fixture
async def any_kernel(kernel_client: KernelClient) -> AsyncIterator[KernelClient]:
    """A kernel with a fresh, empty session."""
    await kernel_client.start_session({})
    yield kernel_client
    await kernel_client.end_session()


def postgres_session(server_url: str, password: str = PASSWORD) -> dict[str, object]:
    # Trust auth ignores the password, so a test can carry a secret that must never show.
    return {"db_dsn": server_url.replace("postgres@", f"postgres:{password}@")}


async def make_duckdb(client: KernelClient, rows: int) -> str:
    """Create a DuckDB file inside the kernel's scratch folder; return its DSN."""
    cell = await client.execute(
        "import duckdb, os\n"
        "path = os.path.abspath('sample.duckdb')\n"
        "db = duckdb.connect(path)\n"
        "db.execute('CREATE TABLE events AS SELECT range AS id, range % 7 AS kind '\n"
        f"           'FROM range({rows})')\n"
        "db.close()\n"
        "path"
    )
    assert cell.status == "ok", cell.error
    assert cell.result is not None
    return "duckdb://" + cell.result.strip("'")


async def test_state_persists_across_cells(any_kernel: KernelClient) -> None:
    await any_kernel.execute("rows = [1, 2, 3]")
    cell = await any_kernel.execute("rows.append(4)\nprint(len(rows))\nsum(rows)")
    assert (cell.status, cell.stdout, cell.result) == ("ok", "4\n", "10")


async def test_reset_gives_a_clean_namespace_with_warm_imports(any_kernel: KernelClient) -> None:
    await any_kernel.execute("secret_state = 42")
    info = await any_kernel.reset()
    gone = await any_kernel.execute("secret_state")
    assert gone.status == "error" and gone.error and gone.error["ename"] == "NameError"
    # The heavy libraries are already loaded in the fresh process: no import needed.
    warm = await any_kernel.execute(
        "import sys\nsorted(m for m in ('ibis', 'pandas', 'polars', 'pyarrow', 'boto3') "
        "if m in sys.modules)"
    )
    assert warm.result == "['boto3', 'ibis', 'pandas', 'polars', 'pyarrow']"
    assert info.connect_error == ""


async def test_output_streams_while_the_cell_runs(any_kernel: KernelClient) -> None:
    code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')"
    started = time.monotonic()
    arrivals: list[tuple[str, float]] = []
    async for event in any_kernel.stream(code):
        if event["ev"] == "stdout":
            arrivals.append((event["text"], time.monotonic() - started))
    assert arrivals[0][0].startswith("first")
    assert arrivals[0][1] < 1.0, f"first chunk came after {arrivals[0][1]:.2f} s"
    assert "".join(text for text, _ in arrivals) == "first\nsecond\n"


async def test_a_spinning_cell_times_out_and_the_next_cell_works(any_kernel: KernelClient) -> None:
    await any_kernel.execute("kept = 'still here'")
    started = time.monotonic()
    cell = await any_kernel.execute("while True: pass", timeout_s=2)
    assert time.monotonic() - started < 3
    assert cell.status == "timeout" and cell.error and cell.error["ename"] == "TimeoutError"
    # The interrupt stopped it, so the namespace survived.
    assert not cell.state_lost
    assert (await any_kernel.execute("kept")).result == "'still here'"


async def test_a_cell_that_ignores_the_interrupt_is_killed(any_kernel: KernelClient) -> None:
    await any_kernel.execute("doomed = 1")
    started = time.monotonic()
    cell = await any_kernel.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
        timeout_s=2,
    )
    assert time.monotonic() - started < 4
    assert (cell.status, cell.state_lost) == ("timeout", True)
    assert cell.error and "variable was lost" in cell.error["evalue"]
    after = await any_kernel.execute("doomed")
    assert after.error and after.error["ename"] == "NameError"
    assert (await any_kernel.execute("6 * 7")).result == "42"


@pytest.mark.parametrize(
    ("code", "how"),
    [
        ("import os\nos._exit(1)", "exited with code 1"),
        ("import ctypes\nctypes.string_at(0)", "signal 11 (SIGSEGV)"),
    ],
)
async def test_a_dying_worker_is_survived(any_kernel: KernelClient, code: str, how: str) -> None:
    cell = await any_kernel.execute(code)
    assert (cell.status, cell.state_lost) == ("crashed", True)
    assert cell.error and how in cell.error["evalue"]
    assert (await any_kernel.execute("1 + 1")).result == "2"


async def test_output_is_capped_keeping_head_and_tail(any_kernel: KernelClient) -> None:
    cell = await any_kernel.execute(
        "for i in range(100_000):\n    print(f'line {i:06d}')", max_output_bytes=2_000
    )
    total = 100_000 * len("line 000000\n")
    assert cell.status == "ok"
    assert cell.stdout.startswith("line 000000\nline 000001\n")
    assert cell.stdout.endswith("line 099999\n")
    assert cell.bytes_omitted["stdout"] == total - 2_000
    done = cell.events[-1]
    assert done["stdout_bytes_omitted"] == total - 2_000
    assert len(cell.stdout) == 2_000


async def test_errors_come_back_as_tracebacks(any_kernel: KernelClient) -> None:
    cell = await any_kernel.execute("def f():\n    return 1 / 0\nprint('before')\nf()")
    assert cell.status == "error" and cell.stdout == "before\n"
    assert cell.error and cell.error["ename"] == "ZeroDivisionError"
    traceback = cell.error["traceback"]
    assert 'File "<cell' in traceback and "return 1 / 0" in traceback
    assert "catalog_kernel" not in traceback  # the kernel's own frames are hidden
    syntax = await any_kernel.execute("x = (")
    assert syntax.error and syntax.error["ename"] == "SyntaxError"


async def test_a_cancelled_cell_is_interrupted_and_the_kernel_stays(
    any_kernel: KernelClient,
) -> None:
    code = "import time\nprint('go', flush=True)\ntime.sleep(60)"
    async with contextlib.aclosing(any_kernel.stream(code)) as events:
        async for event in events:
            if event["ev"] == "stdout":
                break  # the caller walks away mid-cell
    started = time.monotonic()
    assert (await any_kernel.execute("'free again'")).result == "'free again'"
    assert time.monotonic() - started < 5


async def test_duckdb_connection_reads_a_million_rows_and_refuses_writes(
    any_kernel: KernelClient,
) -> None:
    dsn = await make_duckdb(any_kernel, 1_000_000)
    info = await any_kernel.start_session({"db_dsn": dsn})
    assert (info.backend, info.read_only, info.connect_error) == ("duckdb", True, "")
    count = await any_kernel.execute("int(con.table('events').count().execute())")
    assert count.result == "1000000"
    by_kind = await any_kernel.execute(
        "t = con.table('events')\nint(t.filter(t.kind == 3).count().execute())"
    )
    assert by_kind.result == str(len([i for i in range(1_000_000) if i % 7 == 3]))
    write = await any_kernel.execute("con.raw_sql('INSERT INTO events VALUES (-1, -1)')")
    assert write.status == "error"
    assert write.error and "read-only" in write.error["evalue"].lower()


async def test_postgres_connection_reads_and_refuses_writes(
    any_kernel: KernelClient, postgres_table: tuple[str, str]
) -> None:
    server, schema = postgres_table
    info = await any_kernel.start_session(postgres_session(server))
    assert (info.backend, info.read_only, info.connect_error) == ("postgres", True, "")
    total = await any_kernel.execute(
        f"int(con.table('orders', database='{schema}').amount.sum().execute())"
    )
    assert total.result == str(int(sum(g * 1.5 for g in range(1, 1001))))
    write = await any_kernel.execute(
        f"with con.raw_sql('INSERT INTO {schema}.orders VALUES (0, 0)') as c:\n    pass"
    )
    assert write.status == "error" and write.error
    assert write.error["ename"] == "ReadOnlySqlTransaction"


async def test_mysql_connection_reads_and_refuses_writes(
    any_kernel: KernelClient, mysql_table: tuple[str, str]
) -> None:
    server, database = mysql_table
    info = await any_kernel.start_session({"db_dsn": f"{server}/{database}"})
    assert (info.backend, info.read_only, info.connect_error) == ("mysql", True, "")
    count = await any_kernel.execute("int(con.table('orders').count().execute())")
    assert count.result == "1000"
    write = await any_kernel.execute("con.raw_sql('UPDATE orders SET amount = 0').close()")
    assert write.status == "error" and write.error
    assert "READ ONLY" in write.error["evalue"]


async def test_the_password_never_appears_in_output(
    any_kernel: KernelClient, postgres_table: tuple[str, str]
) -> None:
    server, _ = postgres_table
    info = await any_kernel.start_session(postgres_session(server))
    assert info.connect_error == ""
    leaks = [
        await any_kernel.execute("print(con.con.info.password)"),
        await any_kernel.execute("con.con.info.dsn"),
        await any_kernel.execute("import os\nprint(dict(os.environ))"),
        await any_kernel.execute("raise RuntimeError(con.con.info.password)"),
    ]
    for cell in leaks:
        for event in cell.events:
            assert PASSWORD not in str(event)
    assert "[redacted]" in leaks[0].stdout
    # A connection that fails reports why, without the password.
    bad = await any_kernel.start_session(
        {"db_dsn": f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/none"}
    )
    assert bad.connect_error and PASSWORD not in bad.connect_error
    assert "127.0.0.1" in bad.connect_error


async def test_ending_a_session_empties_the_scratch_folder(any_kernel: KernelClient) -> None:
    await any_kernel.execute("open('leftover.txt', 'w').write('private')")
    await any_kernel.end_session()
    await any_kernel.start_session({})
    cell = await any_kernel.execute("import os\nsorted(os.listdir('.'))")
    assert cell.result == "[]"


async def test_s3_settings_reach_boto3_without_showing_the_secret(
    any_kernel: KernelClient,
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    await any_kernel.start_session(
        {
            "s3": {
                "endpoint_url": "http://127.0.0.1:9",
                "region": "eu-west-1",
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": secret,
            }
        }
    )
    cell = await any_kernel.execute(
        "import boto3\ns3 = boto3.client('s3')\n"
        "print(s3.meta.endpoint_url, s3.meta.region_name)\n"
        "s3._request_signer._credentials.secret_key"
    )
    assert cell.stdout == "http://127.0.0.1:9 eu-west-1\n"
    assert cell.result == "'[redacted]'"


async def test_ending_a_session_stops_its_running_cell(any_kernel: KernelClient) -> None:
    events: list[dict[str, object]] = []
    started = asyncio.Event()

    async def run() -> None:
        async for event in any_kernel.stream("import time\nprint('x', flush=True)\ntime.sleep(60)"):
            events.append(event)
            started.set()

    cell = asyncio.create_task(run())
    await asyncio.wait_for(started.wait(), 10)
    await any_kernel.end_session()
    await asyncio.wait_for(cell, 5)
    done = events[-1]
    assert (done["ev"], done["status"], done["state_lost"]) == ("done", "interrupted", True)
    await any_kernel.start_session({})
    assert (await any_kernel.execute("'next lease'")).result == "'next lease'"


async def test_reset_also_empties_the_scratch_folder(any_kernel: KernelClient) -> None:
    await any_kernel.execute("open('notes.txt', 'w').write('from the first agent')")
    await any_kernel.reset()
    assert (await any_kernel.execute("import os\nos.listdir('.')")).result == "[]"


async def test_sessions_ended_at_once_never_hang_the_kernel(shared_kernel: KernelClient) -> None:
    # Ending a session discards the standby worker the kernel has just forked; a kill that
    # arrives before that worker forms its process group must still reach it.
    for _ in range(40):
        await asyncio.wait_for(shared_kernel.start_session({}), timeout=10)
        await asyncio.wait_for(shared_kernel.reset(), timeout=10)
        await asyncio.wait_for(shared_kernel.end_session(), timeout=10)
    pong = await asyncio.wait_for(shared_kernel.ping(), timeout=10)
    assert pong["ev"] == "pong"


# --- several databases: cons[name], con the first ---------------------------------------------


async def test_several_databases_open_as_cons_in_order_and_con_is_the_first(
    any_kernel: KernelClient, postgres_table: tuple[str, str], mysql_table: tuple[str, str]
) -> None:
    pg_server, schema = postgres_table
    my_server, database = mysql_table
    lake = await make_duckdb(any_kernel, 10)
    databases = [
        {"name": "app", "dsn": postgres_session(pg_server)["db_dsn"]},
        {"name": "billing", "dsn": f"{my_server}/{database}"},
        {"name": "lake", "dsn": lake},
    ]
    info = await any_kernel.start_session({"databases": databases, "statement_timeout_s": 30})
    assert [(d.name, d.backend, d.read_only, d.connect_error) for d in info.databases] == [
        ("app", "postgres", True, ""),
        ("billing", "mysql", True, ""),
        ("lake", "duckdb", True, ""),
    ]
    assert (info.backend, info.read_only, info.connect_error) == ("postgres", True, "")
    counts = await any_kernel.execute(
        "print(list(cons), con is cons['app'])\n"
        f"print(int(cons['app'].table('orders', database='{schema}').count().execute()),\n"
        "      int(cons['billing'].table('orders').count().execute()),\n"
        "      int(cons['lake'].table('events').count().execute()))"
    )
    assert counts.stdout == "['app', 'billing', 'lake'] True\n1000 1000 10\n", counts.error
    writes = await any_kernel.execute(
        "import contextlib\nrefused = []\n"
        f"for name, sql in [('app', 'INSERT INTO {schema}.orders VALUES (0, 0)'),\n"
        "                  ('billing', 'UPDATE orders SET amount = 0'),\n"
        "                  ('lake', 'INSERT INTO events VALUES (-1, -1)')]:\n"
        "    try:\n"
        "        cons[name].raw_sql(sql)\n"
        "    except Exception as exc:\n"
        "        refused.append(name)\n"
        "refused"
    )
    assert writes.result == "['app', 'billing', 'lake']", writes.error
    # Past the guard, on the second database: the next cell starts read only there too.
    await any_kernel.execute("cons['billing'].con.query('SET SESSION TRANSACTION READ WRITE')")
    mode = await any_kernel.execute(
        "c = cons['billing'].raw_sql('SELECT @@session.tx_read_only')\nc.fetchone()[0]"
    )
    assert mode.result == "1", mode.error


async def test_a_database_that_fails_is_left_out_and_the_others_open(
    any_kernel: KernelClient, postgres_table: tuple[str, str]
) -> None:
    pg_server, schema = postgres_table
    other = "An0ther-Secret-pw-0815"
    databases = [
        {"name": "lost", "dsn": f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/none"},
        {"name": "app", "dsn": postgres_session(pg_server, other)["db_dsn"]},
        {"name": "cut", "dsn": "", "connect_error": f"the relay is down ({other})"},
    ]
    info = await any_kernel.start_session({"databases": databases})
    lost, app, cut = info.databases
    assert (lost.backend, lost.read_only) == (
        "",
        False,
    ) and "Connection refused" in lost.connect_error
    assert (app.backend, app.read_only, app.connect_error) == ("postgres", True, "")
    assert cut.connect_error == "the relay is down ([redacted])"
    # The top-level fields describe the first database, which failed: `con` is not bound.
    assert (info.backend, info.connect_error) == ("", lost.connect_error)
    seen = await any_kernel.execute(
        "print(list(cons), 'con' in globals())\n"
        f"print(int(cons['app'].table('orders', database='{schema}').count().execute()))\n"
        "print(cons['app'].con.info.password)"
    )
    assert seen.stdout == "['app'] False\n1000\n[redacted]\n", seen.error
    for text in (str(info), str(seen.events)):
        assert PASSWORD not in text and other not in text
