"""Attacks across tenants and on the orchestrator's inputs, through the real orchestrator (a
`python -m` subprocess on the real stack) over real gRPC and HTTP, and at the unit level where
the check lives (prefix comparison, file roots)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb

from services.common.errors import InvalidArgument, PermissionDenied
from services.orchestrator.catalog_models import StartRequest
from services.orchestrator.object_names import make_timestamp, parse_prefix
from services.orchestrator.pipeline import load_pipeline
from services.orchestrator.sealing import Sealer
from services.orchestrator.service import CatalogOperations
from services.orchestrator.storage import FileStore
from services.orchestrator.tenants import Tenant, prefix_within
from tests.orchestrator.stack import (  # noqa: F401  (fixtures)
    REPO,
    Orchestrator,
    StartOrchestrator,
    manager,
    offline_runner,
    reader_table,
    start,
    wait_finished,
    with_password,
)

ACME_KEY, GLOBEX_KEY = "k-acme-3f9a1c", "k-globex-77d0e2"


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


def tenants_env(root: Path) -> dict[str, str]:
    tenants = {
        "acme": {"keys": [ACME_KEY], "prefixes": [f"file://{root}/acme"]},
        "globex": {"keys": [GLOBEX_KEY], "prefixes": [f"file://{root}/globex"]},
    }
    return {"CATALOG_TENANTS": json.dumps(tenants)}


def start_request(reader: tuple[str, str], prefix: str, **fields: object) -> pb.StartCatalogRequest:
    url, schema = reader
    return pb.StartCatalogRequest(
        db_conn_string=with_password(url),
        tables=[f"{schema}.orders"],
        s3_prefix=prefix,
        **fields,  # type: ignore[arg-type]
    )


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def foreign_calls_are_not_found(orchestrator: Orchestrator, catalog_id: str) -> None:
    """Every way globex could reach acme's run answers exactly as for an unknown id."""
    stub, globex = orchestrator.stub, bearer(GLOBEX_KEY)
    unknown = uuid.uuid4().hex
    said = {}
    for name, wanted in ((catalog_id, "foreign"), (unknown, "unknown")):
        errors = [
            await rpc_error(
                stub.GetCatalog(pb.GetCatalogRequest(catalog_id=name), metadata=globex)
            ),
            await rpc_error(
                stub.CancelCatalog(pb.CancelCatalogRequest(catalog_id=name), metadata=globex)
            ),
        ]
        watch = stub.WatchCatalog(pb.WatchCatalogRequest(catalog_id=name), metadata=globex)
        errors.append(await rpc_error(watch.read()))
        assert {e.code() for e in errors} == {grpc.StatusCode.NOT_FOUND}
        said[wanted] = [(e.details() or "").replace(name, "<id>") for e in errors]
    assert said["foreign"] == said["unknown"]
    listed = await stub.ListCatalogs(pb.ListCatalogsRequest(), metadata=globex)
    assert catalog_id not in [c.catalog_id for c in listed.catalogs]
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        headers = {"Authorization": f"Bearer {GLOBEX_KEY}"}
        foreign = await http.get(f"/catalog/{catalog_id}", headers=headers)
        missing = await http.get(f"/catalog/{unknown}", headers=headers)
        assert (foreign.status, missing.status) == (404, 404)
        foreign_detail = (await foreign.json())["detail"].replace(catalog_id, "<id>")
        assert foreign_detail == (await missing.json())["detail"].replace(unknown, "<id>")


async def test_another_tenants_catalog_is_not_found(
    start: StartOrchestrator,  # noqa: F811
    reader_table: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    orchestrator = await start(**tenants_env(tmp_path))
    acme = bearer(ACME_KEY)
    started = await orchestrator.stub.StartCatalog(
        start_request(reader_table, f"file://{tmp_path}/acme"), metadata=acme
    )
    await foreign_calls_are_not_found(orchestrator, started.catalog_id)
    # The owner is kept with the run: a restarted orchestrator still tells them apart.
    await orchestrator.stop()
    orchestrator = await start(**tenants_env(tmp_path))
    await foreign_calls_are_not_found(orchestrator, started.catalog_id)
    got = await orchestrator.stub.GetCatalog(
        pb.GetCatalogRequest(catalog_id=started.catalog_id), metadata=acme
    )
    assert got.catalog.catalog_id == started.catalog_id
    listed = await orchestrator.stub.ListCatalogs(pb.ListCatalogsRequest(), metadata=acme)
    assert [c.catalog_id for c in listed.catalogs] == [started.catalog_id]
    await orchestrator.stub.CancelCatalog(
        pb.CancelCatalogRequest(catalog_id=started.catalog_id), metadata=acme
    )


async def test_prefix_outside_tenant_is_denied(
    start: StartOrchestrator,  # noqa: F811
    reader_table: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    orchestrator = await start(**tenants_env(tmp_path))
    for prefix in (f"file://{tmp_path}/globex", f"file://{tmp_path}/acmex", "s3://bucket/acme"):
        request = start_request(reader_table, prefix)
        error = await rpc_error(orchestrator.stub.StartCatalog(request, metadata=bearer(ACME_KEY)))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, prefix
        assert f"file://{tmp_path}/acme" in (error.details() or "")
    # `..` never reaches the comparison: it is a bad prefix on its own
    dotted = await rpc_error(
        orchestrator.stub.StartCatalog(
            start_request(reader_table, f"file://{tmp_path}/acme/../globex"),
            metadata=bearer(ACME_KEY),
        )
    )
    assert dotted.code() == grpc.StatusCode.INVALID_ARGUMENT
    url, schema = reader_table
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        denied = await http.post(
            "/catalog",
            json={
                "db_conn_string": with_password(url),
                "tables": [f"{schema}.orders"],
                "s3_prefix": f"file://{tmp_path}/globex/x",
            },
            headers={"Authorization": f"Bearer {ACME_KEY}"},
        )
        assert denied.status == 403
        assert f"file://{tmp_path}/acme" in (await denied.json())["detail"]
    assert not (tmp_path / "globex").exists()


async def test_history_staged_only_from_own_prefix(tmp_path: Path) -> None:
    """The summary's history is the run's own prefix, listed exactly (not `t1x`, not `t1/..`),
    and a run's prefix lies under its tenant's by whole, resolved segments."""
    stamp = make_timestamp()
    for folder in ("t1", "t1x", "t2"):
        store = FileStore(parse_prefix(f"file://{tmp_path}/{folder}"))
        await store.write_once(stamp if folder == "t1" else make_timestamp(), "catalog.html",
                               folder.encode(), "text/html")  # fmt: skip
        await asyncio.sleep(0.002)
    own = FileStore(parse_prefix(f"file://{tmp_path}/t1"))
    assert await own.list_runs() == [stamp]
    assert await own.read(stamp, "catalog.html") == b"t1"

    t1 = Tenant("t1", prefixes=("s3://bkt/t1", f"file://{tmp_path}/t1"))
    t1.check_prefix(parse_prefix("s3://bkt/t1/nightly"))
    for outside in ("s3://bkt/t1x", "s3://bkt/t2", "s3://bkz/t1"):
        with pytest.raises(PermissionDenied):
            t1.check_prefix(parse_prefix(outside))
    with pytest.raises(InvalidArgument):
        parse_prefix("s3://bkt/t1/../t2")
    (tmp_path / "t1" / "to-t2").symlink_to(tmp_path / "t2")
    leak = parse_prefix(f"file://{tmp_path}/t1/to-t2")
    assert not prefix_within(leak, parse_prefix(f"file://{tmp_path}/t1"))
    with pytest.raises(PermissionDenied):
        t1.check_prefix(leak)


async def test_idempotency_key_reuse_with_other_inputs_is_failed_precondition(
    start: StartOrchestrator,  # noqa: F811
    reader_table: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    orchestrator = await start(**tenants_env(tmp_path))
    acme, globex = bearer(ACME_KEY), bearer(GLOBEX_KEY)
    prefix = f"file://{tmp_path}/acme"
    first = await orchestrator.stub.StartCatalog(
        start_request(reader_table, prefix, idempotency_key="nightly-1"), metadata=acme
    )
    again = await orchestrator.stub.StartCatalog(
        start_request(reader_table, prefix, idempotency_key="nightly-1"), metadata=acme
    )
    assert again.catalog_id == first.catalog_id
    other = await rpc_error(
        orchestrator.stub.StartCatalog(
            start_request(reader_table, f"{prefix}/elsewhere", idempotency_key="nightly-1"),
            metadata=acme,
        )
    )
    assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "nightly-1" in (other.details() or "")
    # the same key in another tenant is that tenant's own run
    theirs = await orchestrator.stub.StartCatalog(
        start_request(reader_table, f"file://{tmp_path}/globex", idempotency_key="nightly-1"),
        metadata=globex,
    )
    assert theirs.catalog_id != first.catalog_id
    url, schema = reader_table
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        conflict = await http.post(
            "/catalog",
            json={
                "db_conn_string": with_password(url),
                "tables": [f"{schema}.orders", f"{schema}.customers"],
                "s3_prefix": prefix,
                "idempotency_key": "nightly-1",
            },
            headers={"Authorization": f"Bearer {ACME_KEY}"},
        )
        assert conflict.status == 409
    for catalog_id, key in ((first.catalog_id, acme), (theirs.catalog_id, globex)):
        await orchestrator.stub.CancelCatalog(
            pb.CancelCatalogRequest(catalog_id=catalog_id), metadata=key
        )


async def test_file_prefix_outside_catalogs_folder_is_refused(
    start: StartOrchestrator,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unit level: with no roots set, only ./catalogs (resolved) is allowed.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "catalogs").mkdir()
    (tmp_path / "catalogs" / "out-link").symlink_to(tmp_path / "elsewhere")
    pipeline = load_pipeline(REPO / "prompts", {})
    queue: Any = None  # never reached: only the validation runs
    operations = CatalogOperations(queue, Sealer(_fernet_key()), 10, pipeline=pipeline)

    def problems(prefix: str) -> str:
        request = StartRequest("postgresql://u@h/db", ["t"], prefix)
        try:
            operations._validate(request)
        except InvalidArgument as exc:
            return exc.message
        return ""

    assert problems(f"file://{tmp_path}/catalogs/shop") == ""
    for outside in ("/tmp/shop", f"{tmp_path}/catalogsx", f"{tmp_path}/catalogs/out-link/x"):
        assert f"{tmp_path}/catalogs" in problems(f"file://{outside}"), outside

    # Through the real orchestrator: a link inside the configured root that points out.
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "link").symlink_to(tmp_path / "outside")
    orchestrator = await start(CATALOG_FILE_ROOTS=str(allowed))
    error = await rpc_error(
        orchestrator.stub.StartCatalog(
            pb.StartCatalogRequest(
                db_conn_string="postgresql://reader@127.0.0.1:5432/postgres",
                tables=["public.orders"],
                s3_prefix=f"file://{allowed}/link/shop",
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(allowed) in (error.details() or "")
    assert not (tmp_path / "outside").exists()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _raw_http(port: int, head: str, body: bytes, timeout_s: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
        conn.sendall(head.encode() + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


async def test_2gb_post_is_refused_before_it_is_read(
    start: StartOrchestrator,  # noqa: F811
) -> None:
    orchestrator = await start()
    port = int(orchestrator.env["CATALOG_ORCHESTRATOR_HTTP_PORT"])
    pid = orchestrator.process.pid
    before = _rss_kib(pid)
    head = (
        "POST /catalog HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {2 * 1024**3}\r\n\r\n"
    )
    started = time.monotonic()
    answer = await asyncio.to_thread(_raw_http, port, head, b"{" + b" " * 4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    # A chunked body carries no length: it is cut off once it passes 1 MiB.
    chunk = b" " * 65536
    chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20  # 1.25 MiB
    chunked = head.replace(f"Content-Length: {2 * 1024**3}", "Transfer-Encoding: chunked")
    answer = await asyncio.to_thread(_raw_http, port, chunked, chunks + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert _rss_kib(pid) - before < 50 * 1024
    # gRPC has its limit too: the same 1 MiB.
    huge = pb.StartCatalogRequest(
        db_conn_string="x" * (2 * 1024**2), tables=["t"], s3_prefix="s3://bkt/p"
    )
    error = await rpc_error(orchestrator.stub.StartCatalog(huge))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert orchestrator.process.returncode is None  # still serving
