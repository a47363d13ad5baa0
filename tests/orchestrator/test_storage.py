"""The output store, on a real folder (tmp_path) and on real S3 wire protocol (moto's server)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.ports import free_port
from services.orchestrator.object_names import (
    OutputPrefix,
    make_timestamp,
    object_name,
    parse_prefix,
    parse_timestamp,
)
from services.orchestrator.storage import FileStore, S3Store, Store, open_store
from tests.orchestrator.conftest import FAKE_AWS_ENV, s3_client

HTML = "text/html; charset=utf-8"
T1 = "2026-11-23T22:51:11.123Z"
T2 = "2026-12-31T23:59:59.999Z"
T3 = "2027-01-01T00:00:00.000Z"


@dataclass
class Backend:
    """A store and a way to look at what it wrote without going through it."""

    store: Store
    prefix: OutputPrefix
    expected_key: Callable[[str, str], str]  # (timestamp, name) -> where the object must be
    raw_read: Callable[[str], bytes]  # WriteResult.key -> the bytes stored there
    put_raw: Callable[
        [str, bytes], None
    ]  # path from the prefix's parent folder -> a foreign object


def _file_backend(tmp_path: Path) -> Backend:
    parent = tmp_path / "catalogs"
    prefix = parse_prefix((parent / "team-a").as_uri() + "/")

    def put_raw(relative: str, body: bytes) -> None:
        path = parent / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    return Backend(
        store=open_store(prefix),
        prefix=prefix,
        expected_key=lambda ts, name: str(parent / "team-a" / ts / name),
        raw_read=lambda key: Path(key).read_bytes(),
        put_raw=put_raw,
    )


def _s3_backend(endpoint: str, bucket: str) -> Backend:
    client = s3_client(endpoint)
    prefix = parse_prefix(f"s3://{bucket}/catalogs/team-a/")
    return Backend(
        store=open_store(prefix, endpoint_url=endpoint),
        prefix=prefix,
        expected_key=lambda ts, name: f"catalogs/team-a/{ts}/{name}",
        raw_read=lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
        put_raw=lambda rel, body: client.put_object(
            Bucket=bucket, Key=f"catalogs/{rel}", Body=body
        ),
    )


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return _file_backend(tmp_path)
    endpoint = request.getfixturevalue("s3_server")
    return _s3_backend(endpoint, request.getfixturevalue("s3_bucket"))


# --- keys and timestamps ------------------------------------------------------------------


async def test_keys_have_the_pinned_layout(backend: Backend) -> None:
    timestamp = make_timestamp()
    for agent in ("catalog", "summary", "pii"):
        name = object_name(agent, "html")
        body = f"<h1>{agent}</h1>".encode()
        result = await backend.store.write_once(timestamp, name, body, HTML)
        assert result.uri == f"{backend.prefix.uri}/{timestamp}/{agent}.html"
        assert result.uri == backend.store.uri(timestamp, name)
        assert result.key == backend.expected_key(timestamp, f"{agent}.html")
        assert (result.size, result.created) == (len(body), True)
        assert backend.raw_read(result.key) == body


async def test_open_store_picks_the_store_by_scheme(tmp_path: Path, s3_server: str) -> None:
    assert isinstance(open_store(parse_prefix(tmp_path.as_uri())), FileStore)
    assert isinstance(
        open_store(parse_prefix("s3://some-bucket/x"), endpoint_url=s3_server), S3Store
    )


async def test_s3_keeps_the_content_type(s3_server: str, s3_bucket: str) -> None:
    store = open_store(parse_prefix(f"s3://{s3_bucket}/out"), endpoint_url=s3_server)
    result = await store.write_once(T1, "summary.json", b"{}", "application/json")
    head = s3_client(s3_server).head_object(Bucket=s3_bucket, Key=result.key)
    assert head["ContentType"] == "application/json"


async def test_s3_prefix_may_be_a_bare_bucket(s3_server: str, s3_bucket: str) -> None:
    store = open_store(parse_prefix(f"s3://{s3_bucket}/"), endpoint_url=s3_server)
    result = await store.write_once(T1, "catalog.html", b"<p>", HTML)
    assert result.key == f"{T1}/catalog.html"
    assert result.uri == f"s3://{s3_bucket}/{T1}/catalog.html"
    assert await store.list_runs() == [T1]


def test_timestamps_are_fixed_width_and_sort_by_time() -> None:
    plus_two = timezone(timedelta(hours=2))
    moments = [  # in time order
        datetime(999, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 23, 22, 51, 11, 123456, tzinfo=UTC),
        datetime(2026, 11, 23, 22, 51, 11, 999999, tzinfo=UTC),  # truncated, not rounded up
        datetime(2026, 11, 23, 22, 51, 12, 0, tzinfo=UTC),  # a second boundary
        datetime(2026, 11, 23, 22, 51, 12, 9000, tzinfo=UTC),
        datetime(2026, 11, 23, 22, 51, 12, 10000, tzinfo=UTC),  # 9 ms, then 10 ms
        datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2027, 1, 1, 2, 0, 0, 0, tzinfo=plus_two),  # 2027-01-01T00:00:00Z
        datetime(2027, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
    ]
    stamps = [make_timestamp(moment) for moment in moments]
    assert stamps[0] == "0999-01-01T00:00:00.000Z"
    assert stamps[1:4] == [T1, "2026-11-23T22:51:11.999Z", "2026-11-23T22:51:12.000Z"]
    assert stamps[4:6] == ["2026-11-23T22:51:12.009Z", "2026-11-23T22:51:12.010Z"]
    assert stamps[6:8] == [T2, T3]
    assert all(len(stamp) == 24 for stamp in stamps)
    assert sorted(stamps) == stamps
    assert sorted(reversed(stamps)) == stamps
    assert [parse_timestamp(stamp) for stamp in stamps] == stamps


def test_make_timestamp_defaults_to_now_in_utc() -> None:
    before = make_timestamp(datetime.now(UTC))
    stamp = make_timestamp()
    after = make_timestamp(datetime.now(UTC))
    assert before <= stamp <= after
    assert parse_timestamp(stamp) == stamp


def test_make_timestamp_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        make_timestamp(datetime(2026, 11, 23, 22, 51, 11))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-23T22:51:11Z",  # no milliseconds
        "2026-11-23T22:51:11.1234Z",
        "2026-11-23T22:51:11.123",  # no Z
        "2026-11-23T22:51:11.123+00:00",
        "2026-11-23 22:51:11.123Z",
        "2026-13-01T00:00:00.000Z",  # month 13
        "2026-02-30T00:00:00.000Z",
        "2026-11-23T24:00:00.000Z",
        "\u0662026-11-23T22:51:11.123Z",  # an Arabic-Indic digit
        "../2026-11-23T22:51:11.123Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_timestamp(text)
    assert info.value.field_violations[0][0] == "timestamp"
    assert "2026-11-23T22:51:11.123Z" in info.value.field_violations[0][1]


def test_object_names() -> None:
    assert object_name("catalog", "html") == "catalog.html"
    assert object_name("summary", "json") == "summary.json"
    with pytest.raises(InvalidArgument) as info:
        object_name("../catalog", "html")
    assert info.value.field_violations[0][0] == "agent_name"
    for bad in ("Catalog", "a.b", "", "x" * 33):
        with pytest.raises(InvalidArgument):
            object_name(bad, "html")
    assert object_name("relations_2", "json") == "relations_2.json"
    with pytest.raises(InvalidArgument) as info:
        object_name("catalog", "exe")  # type: ignore[arg-type]
    assert info.value.field_violations[0][0] == "kind"


# --- write-once -----------------------------------------------------------------------------


async def test_an_existing_key_is_never_overwritten(backend: Backend) -> None:
    first = await backend.store.write_once(T1, "catalog.html", b"first", HTML)
    second = await backend.store.write_once(T1, "catalog.html", b"second, longer", HTML)
    assert first.created and not second.created
    assert (second.key, second.uri) == (first.key, first.uri)
    assert backend.raw_read(first.key) == b"first"
    assert await backend.store.read(T1, "catalog.html") == b"first"


async def test_concurrent_file_writes_leave_one_whole_object(tmp_path: Path) -> None:
    """Racing writers: one wins, whole. (Not run on moto: its If-None-Match check and its put
    are separate steps in a threaded server, so moto, unlike S3, can let two racers through.)"""
    backend = _file_backend(tmp_path)
    bodies = [f"writer {n} ".encode() * 10_000 for n in range(8)]
    results = await asyncio.gather(
        *(backend.store.write_once(T1, "summary.html", body, HTML) for body in bodies)
    )
    winners = [body for body, result in zip(bodies, results, strict=True) if result.created]
    assert len(winners) == 1
    assert backend.raw_read(results[0].key) == winners[0]


async def test_file_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = open_store(parse_prefix(tmp_path.as_uri()))
    await store.write_once(T1, "catalog.html", b"a", HTML)
    await store.write_once(T1, "catalog.html", b"b", HTML)
    await store.write_once(T1, "catalog.json", b"{}", "application/json")
    assert sorted(os.listdir(tmp_path / T1)) == ["catalog.html", "catalog.json"]


async def test_file_store_on_a_file_says_what_to_fix(tmp_path: Path) -> None:
    in_the_way = tmp_path / "out"
    in_the_way.write_text("not a folder")
    store = open_store(parse_prefix(in_the_way.as_uri()))
    with pytest.raises(FailedPrecondition, match="a file stands where a folder is needed"):
        await store.write_once(T1, "catalog.html", b"a", HTML)
    assert await store.list_runs() == []


async def test_a_write_is_logged_as_one_structured_line(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="services.orchestrator.storage"):
        result = await backend.store.write_once(T1, "catalog.html", b"abc", HTML)
        await backend.store.write_once(T1, "catalog.html", b"abcd", HTML)
    records = [record for record in caplog.records if record.getMessage() == "storage write"]
    assert [record.__dict__["fields"] for record in records] == [
        {"key": result.key, "uri": result.uri, "size": 3, "created": True},
        {"key": result.key, "uri": result.uri, "size": 4, "created": False},
    ]


# --- listing and reading --------------------------------------------------------------------


async def test_list_runs_is_sorted_and_ignores_foreign_folders(backend: Backend) -> None:
    for timestamp in (T3, T1, T2):
        await backend.store.write_once(timestamp, "catalog.html", b"x", HTML)
    for foreign in (
        "team-a/not-a-run/catalog.html",
        "team-a/2026-11-23T22:51:11Z/catalog.html",  # the wrong format
        "team-a/2026-13-01T00:00:00.000Z/catalog.html",  # no such month
        "team-a/2026-11-23T22:51:13.000Z",  # an object (a file), not a folder
        "team-a/notes.txt",
        "team-a-other/2026-11-23T22:51:14.000Z/catalog.html",  # a sibling prefix
    ):
        backend.put_raw(foreign, b"foreign")
    assert await backend.store.list_runs() == [T1, T2, T3]


async def test_list_runs_of_an_empty_prefix(backend: Backend) -> None:
    assert await backend.store.list_runs() == []


async def test_list_run_objects_names_our_objects(backend: Backend) -> None:
    for name in ("summary.json", "catalog.html", "summary.html"):
        await backend.store.write_once(T1, name, b"x", HTML)
    await backend.store.write_once(T2, "catalog.json", b"x", HTML)
    backend.put_raw(f"team-a/{T1}/notes.txt", b"foreign")
    backend.put_raw(f"team-a/{T1}/nested/catalog.html", b"foreign")
    assert await backend.store.list_run_objects(T1) == [
        "catalog.html",
        "summary.html",
        "summary.json",
    ]
    assert await backend.store.list_run_objects(T2) == ["catalog.json"]
    assert await backend.store.list_run_objects(T3) == []


async def test_reading_a_missing_object_is_not_found(backend: Backend) -> None:
    await backend.store.write_once(T1, "catalog.html", b"x", HTML)
    for timestamp, name in ((T1, "summary.html"), (T2, "catalog.html")):
        with pytest.raises(NotFound) as info:
            await backend.store.read(timestamp, name)
        assert backend.store.uri(timestamp, name) in info.value.message


async def test_store_refuses_foreign_names_and_timestamps(backend: Backend) -> None:
    for timestamp, name, field in (
        (T1, "../catalog.html", "name"),
        (T1, "catalog.exe", "name"),
        ("yesterday", "catalog.html", "timestamp"),
        (f"{T1}/..", "catalog.html", "timestamp"),
    ):
        with pytest.raises(InvalidArgument) as info:
            await backend.store.write_once(timestamp, name, b"x", HTML)
        assert info.value.field_violations[0][0] == field
    with pytest.raises(InvalidArgument):
        await backend.store.list_run_objects("..")
    assert await backend.store.list_runs() == []


# --- prefixes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://my-bucket/catalogs/team-a/", ("s3", "my-bucket", "catalogs/team-a")),
        ("s3://my-bucket", ("s3", "my-bucket", "")),
        ("s3://my-bucket/", ("s3", "my-bucket", "")),
        ("S3://my.bucket-1/a b/\u00fc", ("s3", "my.bucket-1", "a b/\u00fc")),
        ("s3://b12/x%20y", ("s3", "b12", "x%20y")),  # S3 paths are literal
        ("s3://b12/" + "a" * 961, ("s3", "b12", "a" * 961)),  # the longest that fits
        ("file:///srv/catalog/", ("file", "", "/srv/catalog")),
        ("file:///srv/my%20catalog", ("file", "", "/srv/my catalog")),  # file URIs are decoded
    ],
)
def test_parse_prefix_accepts(text: str, expected: tuple[str, str, str]) -> None:
    prefix = parse_prefix(text)
    assert (prefix.scheme, prefix.bucket, prefix.path) == expected
    assert not prefix.uri.endswith("/")
    assert parse_prefix(prefix.uri) == prefix


def test_parse_prefix_normalises_the_uri() -> None:
    assert parse_prefix("S3://my-bucket/a/").uri == "s3://my-bucket/a"
    assert parse_prefix("s3://my-bucket/").uri == "s3://my-bucket"
    assert parse_prefix("file:///srv/my catalog/").uri == "file:///srv/my%20catalog"


LONG_FILE_PATH = "/".join(["a" * 200] * 21)
BAD_PREFIXES = [
    ("", "is empty"),
    ("http://bucket/path", "scheme 'http:'"),
    ("ftp://bucket/path", "scheme 'ftp:'"),
    ("bucket/path", "no scheme"),
    ("s3:bucket/path", "followed by '//'"),
    ("s3:///path", "no bucket name"),
    ("s3://My-Bucket/path", "uppercase"),
    ("s3://ab/path", "'ab' is 2 characters long"),
    ("s3://" + "a" * 64 + "/path", "is 64 characters long"),
    ("s3://192.168.5.4/path", "IP address"),
    ("s3://my_bucket/path", "contains ['_']"),
    ("s3://-bucket/path", "begin and end with a letter or digit"),
    ("s3://bucket-/path", "begin and end with a letter or digit"),
    ("s3://my..bucket/path", "no two adjacent periods"),
    ("s3://xn--bucket/path", "prefix S3 reserves"),
    ("s3://bucket-s3alias/path", "suffix S3 reserves"),
    ("s3://bucket--ol-s3/path", "suffix S3 reserves"),
    ("s3://bucket/a/../b", "segment '..'"),
    ("s3://bucket/..", "segment '..'"),
    ("s3://bucket/a/./b", "segment '.'"),
    ("s3://bucket/a//b", "empty segment ('//')"),
    ("s3://bucket//", "empty segment ('//')"),
    ("s3://bucket/a\\b", "backslash"),
    ("s3://bucket/a\x00b", "a control character, U+0000"),
    ("s3://bucket/a\nb", "a control character, U+000A"),
    ("s3://bucket/a\x7fb", "a control character, U+007F"),
    ("s3://bucket/a\x85b", "a control character, U+0085"),
    ("s3://bucket/a\ud800b", "a lone surrogate (not valid UTF-8), U+D800"),
    ("s3://bucket/" + "a" * 962, "over S3's 1024-byte limit"),
    ("s3://bucket/" + "\u00e9" * 494, "over S3's 1024-byte limit"),  # 988 bytes of UTF-8
    ("s3://bucket/a?b=1", "query or fragment"),
    ("file:relative/out", "followed by '//'"),
    ("file:./out", "followed by '//'"),
    ("file://out/catalog", "host part 'out'"),
    ("file://localhost/srv/catalog", "host part 'localhost'"),
    ("file:///", "filesystem root"),
    ("file:///srv/%2E%2E/etc", "segment '..'"),
    ("file:///srv/a%00b", "a control character, U+0000"),
    ("file:///srv/a%5Cb", "backslash"),
    ("file:///srv/%FF", "not valid UTF-8"),
    ("file:///srv/" + "a" * 256, "at most 255 bytes"),
    ("file:///" + LONG_FILE_PATH, "over the 4095-byte limit"),
]


@pytest.mark.parametrize(
    ("text", "reason"), BAD_PREFIXES, ids=[repr(t)[:40] for t, _ in BAD_PREFIXES]
)
def test_parse_prefix_rejects(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_prefix(text)
    [(field, description)] = info.value.field_violations
    assert field == "s3_prefix"
    assert reason in description
    assert description in info.value.message


# --- failing storage ------------------------------------------------------------------------


def _assert_no_credentials(error: Exception) -> None:
    text = f"{error} {getattr(error, 'field_violations', '')}"
    for secret in (FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"], FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in text


async def test_an_unreachable_endpoint_is_unavailable(s3_server: str) -> None:
    port = free_port()  # nobody listens there
    endpoint = f"http://user:hunter2@127.0.0.1:{port}"
    store = open_store(parse_prefix("s3://catalog-out/runs"), endpoint_url=endpoint)
    for call in (store.write_once(T1, "catalog.html", b"x", HTML), store.list_runs()):
        with pytest.raises(Unavailable) as info:
            await call
        message = info.value.message
        assert f"127.0.0.1:{port}" in message and "unreachable" in message
        assert "catalog-out" in message and "hunter2" not in message
        _assert_no_credentials(info.value)


async def test_a_missing_bucket_fails_its_precondition(s3_server: str) -> None:
    bucket = f"catalog-missing-{uuid.uuid4().hex[:8]}"
    store = open_store(parse_prefix(f"s3://{bucket}/runs"), endpoint_url=s3_server)
    for call in (
        store.write_once(T1, "catalog.html", b"x", HTML),
        store.read(T1, "catalog.html"),
        store.list_runs(),
    ):
        with pytest.raises(FailedPrecondition) as info:
            await call
        assert f"the bucket '{bucket}' does not exist" in info.value.message
        _assert_no_credentials(info.value)


async def test_missing_credentials_fail_their_precondition(
    s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = open_store(parse_prefix(f"s3://{s3_bucket}/runs"), endpoint_url=s3_server)
    with pytest.raises(FailedPrecondition, match="no usable AWS credentials"):
        await store.write_once(T1, "catalog.html", b"x", HTML)


def test_moto_refuses_a_second_conditional_put(s3_server: str, s3_bucket: str) -> None:
    """What the S3 store relies on: If-None-Match: * on an existing key answers 412."""
    client = s3_client(s3_server)
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"first"


async def test_a_runs_objects_are_listed_with_their_sizes(backend: Backend) -> None:
    await backend.store.write_once(T1, "catalog.html", b"x" * 1234, HTML)
    await backend.store.write_once(T1, "catalog.json", b"{}", "application/json")
    backend.put_raw(f"team-a/{T1}/notes.txt", b"not ours")
    assert await backend.store.run_object_sizes(T1) == {"catalog.html": 1234, "catalog.json": 2}
    assert await backend.store.run_object_sizes(T2) == {}
