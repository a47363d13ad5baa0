"""The output store of catalog runs: write-once objects in an S3 bucket or a local folder.

A run's pages live under the caller's output prefix, `{prefix}/{timestamp}/{agent}.{html|json}`,
e.g. `s3://bucket/catalogs/2026-11-23T22:51:11.123Z/catalog.html`. The timestamp is UTC ISO 8601
with milliseconds at a fixed width (24 characters), so keys sort by time as plain strings.

The choices:

* Objects are write-once. A workflow step that runs again after a crash must not replace a page
  someone may have read already: writing an existing key answers `created=False` and leaves the
  stored object as it was. (A put retried after a lost response finds its own object: False.)
* S3 gets that from a conditional put, `PutObject` with `If-None-Match: *`: the server refuses an
  existing key (412 PreconditionFailed, or 409 ConditionalRequestConflict while another write to
  it is in flight), so there is no read-then-write race, and S3 shows an object only once its
  upload is complete. A store without conditional writes (501) fails the write rather than risk
  an overwrite.
* A folder gets the same from a hard link: the body goes to a hidden temporary file beside its
  final name, is fsynced, then `os.link`-ed into place. Unlike `rename`, `link` fails when the
  name exists, and the name appears with the whole body or not at all. The temporary file is
  removed either way. The content type is not kept on disk.
* Prefixes are checked before anything is written (`parse_prefix`); each rejection says which
  part is wrong and how to fix it, under the field `s3_prefix`. s3:// paths are taken literally,
  as the AWS CLI does; file:// paths are percent-decoded, as file URIs are.
* boto3 blocks, so every call runs in `asyncio.to_thread`, on one client per store whose `Config`
  bounds it (connect and read timeouts, standard retries). boto3 errors are translated in
  `_s3_error`, OS errors in `_os_error`; messages name the bucket or folder, never a credential.
* Listings show only our own runs and objects; anything else under the prefix is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, Protocol, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlsplit

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config

from services.common import errors
from services.common.logging import log_fields

_log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")

AGENT_NAMES = ("catalog", "summary")
KINDS = ("html", "json")
OBJECT_NAMES = frozenset(f"{agent}.{kind}" for agent in AGENT_NAMES for kind in KINDS)
PREFIX_FIELD = "s3_prefix"
TIMESTAMP_LENGTH = 24  # 2026-11-23T22:51:11.123Z

_EXAMPLES = "s3://bucket/path or file:///absolute/path"
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_LONGEST_NAME = max(len(name) for name in OBJECT_NAMES)
_TEMP_EXTRA = len(".") + len(".0123456789abcdef.tmp")  # a temporary file's name beyond its own
_S3_KEY_MAX = 1024  # bytes of UTF-8
_FILE_PATH_MAX = 4095  # PATH_MAX (4096) holds the terminating NUL
_FILE_SEGMENT_MAX = 255
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]")
_IP_LIKE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--table-s3")
_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_BUSY_CODES = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}
_S3_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
)


@dataclass(frozen=True)
class OutputPrefix:
    """A checked output prefix; build it with `parse_prefix`."""

    scheme: Literal["s3", "file"]
    bucket: str  # the S3 bucket; "" for file
    path: str  # s3: key prefix in the bucket, no slash at either end, may be ""; file: the folder
    uri: str  # normalised, no trailing slash: s3://bucket/path, file:///abs/path


@dataclass(frozen=True)
class WriteResult:
    uri: str  # {prefix}/{timestamp}/{name}
    key: str  # the S3 object key, or the file's absolute path
    size: int  # bytes of the body offered
    created: bool  # False: the key existed already and was left as it was


def _bad(reason: str) -> errors.InvalidArgument:
    message = f"invalid s3_prefix: {reason}"
    return errors.InvalidArgument(message, field_violations=[(PREFIX_FIELD, reason)])


def parse_prefix(prefix: str) -> OutputPrefix:
    """Check `s3://bucket/path` or `file:///abs/path`; raise InvalidArgument if it is bad."""
    if not prefix:
        raise _bad(f"the prefix is empty; give {_EXAMPLES}")
    _check_chars(prefix, "the prefix")
    if "?" in prefix or "#" in prefix:
        raise _bad("the prefix has a query or fragment ('?' or '#'); remove it")
    match = _SCHEME_RE.fullmatch(prefix)
    if match is None:
        raise _bad(f"the prefix has no scheme; write {_EXAMPLES}")
    scheme, rest = match[1].lower(), match[2]
    if scheme not in ("s3", "file"):
        raise _bad(f"the scheme '{match[1]}:' is not supported; write {_EXAMPLES}")
    if not rest.startswith("//"):
        raise _bad(f"'{scheme}:' must be followed by '//'; write {_EXAMPLES} (absolute paths only)")
    if "//" in rest[2:]:
        raise _bad("the path has an empty segment ('//'); remove the extra slash")
    return _parse_s3(rest[2:]) if scheme == "s3" else _parse_file(rest[2:])


def _check_chars(text: str, what: str) -> None:
    for index, char in enumerate(text):
        kind = {"Cc": "a control character", "Cs": "a lone surrogate (not valid UTF-8)"}.get(
            unicodedata.category(char)
        )
        if kind:
            raise _bad(f"{what} contains {kind}, U+{ord(char):04X}, at position {index}; remove it")
    if "\\" in text:
        raise _bad(f"{what} contains a backslash; separate folders with '/'")


def _parse_s3(body: str) -> OutputPrefix:
    bucket, _, path = body.partition("/")
    _check_bucket(bucket)
    path = path.removesuffix("/")
    if path:
        _check_segments(path, segment_max=_S3_KEY_MAX)
    size = len(path.encode())
    longest = size + bool(path) + TIMESTAMP_LENGTH + 1 + _LONGEST_NAME
    if longest > _S3_KEY_MAX:
        raise _bad(
            f"the path is {size} bytes, so our longest key would be {longest} bytes, over S3's "
            f"{_S3_KEY_MAX}-byte limit; shorten the path to {_S3_KEY_MAX - longest + size} bytes"
        )
    return OutputPrefix("s3", bucket, path, f"s3://{bucket}/{path}".removesuffix("/"))


def _check_bucket(bucket: str) -> None:
    if not bucket:
        raise _bad("the prefix has no bucket name; write s3://bucket/path")
    foreign = [char for char in bucket if not _BUCKET_CHARS.fullmatch(char)]
    rules = [
        (3 <= len(bucket) <= 63, f"is {len(bucket)} characters long; the limits are 3 to 63"),
        (bucket == bucket.lower(), "has uppercase letters; bucket names are lowercase"),
        (not foreign, f"contains {foreign[:1]}; use lowercase letters, digits, '.' and '-'"),
        (bucket[0].isalnum() and bucket[-1].isalnum(), "must begin and end with a letter or digit"),
        (".." not in bucket, "contains '..'; bucket names have no two adjacent periods"),
        (not _IP_LIKE.fullmatch(bucket), "is formatted as an IP address; name it otherwise"),
        (not bucket.startswith(_RESERVED_PREFIXES), "starts with a prefix S3 reserves"),
        (not bucket.endswith(_RESERVED_SUFFIXES), "ends with a suffix S3 reserves"),
    ]
    for holds, reason in rules:
        if not holds:
            raise _bad(f"the bucket name '{bucket}' {reason}")


def _check_segments(path: str, *, segment_max: int) -> None:
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise _bad(f"the path segment '{segment}' is not allowed; name the folder directly")
        if not segment:
            raise _bad("the path has an empty segment ('//'); remove the extra slash")
        if (size := len(segment.encode())) > segment_max:
            raise _bad(
                f"the path segment '{segment[:16]}...' is {size} bytes; "
                f"a folder name holds at most {segment_max} bytes, so shorten it"
            )


def _parse_file(body: str) -> OutputPrefix:
    if not body.startswith("/"):
        raise _bad(
            f"the file prefix has a host part '{body.split('/', 1)[0]}' (or is a relative path); "
            "name a local folder by its absolute path: file:///absolute/path (three slashes)"
        )
    try:
        path = unquote_to_bytes(body).decode("utf-8").removesuffix("/")
    except UnicodeDecodeError:
        raise _bad("the path's percent-escapes are not valid UTF-8; fix them") from None
    if not path:
        raise _bad("the prefix names the filesystem root; name a folder, e.g. file:///srv/catalog")
    _check_chars(path, "the decoded path")
    _check_segments(path[1:], segment_max=_FILE_SEGMENT_MAX)
    longest = len(path.encode()) + 1 + TIMESTAMP_LENGTH + 1 + _LONGEST_NAME + _TEMP_EXTRA
    if longest > _FILE_PATH_MAX:
        raise _bad(
            f"the path is {len(path.encode())} bytes, so our longest file path would be "
            f"{longest} bytes, over the {_FILE_PATH_MAX}-byte limit; choose a shorter folder"
        )
    return OutputPrefix("file", "", path, "file://" + quote(path, safe="/:@!$&'()*+,;=~"))


def make_timestamp(now: datetime | None = None) -> str:
    """`now` (default: the current time) as `2026-11-23T22:51:11.123Z`, milliseconds truncated."""
    moment = datetime.now(UTC) if now is None else now
    if moment.utcoffset() is None:
        raise ValueError("make_timestamp needs an aware datetime, e.g. datetime.now(UTC)")
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def _is_timestamp(text: str) -> bool:
    if not _TIMESTAMP_RE.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:  # a day or hour that does not exist
        return False
    return True


def parse_timestamp(text: str) -> str:
    """Return `text` if it is a run timestamp (`2026-11-23T22:51:11.123Z`), else InvalidArgument."""
    if _is_timestamp(text):
        return text
    reason = f"{text[:40]!r} is not a UTC timestamp of the form 2026-11-23T22:51:11.123Z"
    raise errors.InvalidArgument(
        f"invalid timestamp: {reason}", field_violations=[("timestamp", reason)]
    )


def object_name(agent_name: str, kind: Literal["html", "json"]) -> str:
    """The object name of an agent's output, e.g. `catalog.html`."""
    if agent_name not in AGENT_NAMES:
        reason = f"unknown agent {agent_name[:40]!r}; the agents are {', '.join(AGENT_NAMES)}"
        raise errors.InvalidArgument(reason, field_violations=[("agent_name", reason)])
    if kind not in KINDS:
        reason = f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}"
        raise errors.InvalidArgument(reason, field_violations=[("kind", reason)])
    return f"{agent_name}.{kind}"


def _check_name(name: str) -> str:
    if name not in OBJECT_NAMES:
        reason = f"{name[:40]!r} is not an object name; use object_name(agent, kind)"
        raise errors.InvalidArgument(reason, field_violations=[("name", reason)])
    return name


class Store(Protocol):
    """Write-once objects under one output prefix."""

    @property
    def prefix(self) -> OutputPrefix: ...

    def uri(self, timestamp: str, name: str) -> str: ...

    async def write_once(
        self, timestamp: str, name: str, body: bytes, content_type: str
    ) -> WriteResult: ...

    async def read(self, timestamp: str, name: str) -> bytes: ...

    async def list_runs(self) -> list[str]: ...

    async def list_run_objects(self, timestamp: str) -> list[str]: ...


def open_store(prefix: OutputPrefix, *, endpoint_url: str | None = None) -> Store:
    """The store for `prefix`; `endpoint_url` overrides the AWS settings' S3 endpoint."""
    if prefix.scheme == "file":
        return FileStore(prefix)
    try:
        session = boto3.session.Session()
        client = session.client("s3", endpoint_url=endpoint_url or None, config=_S3_CONFIG)
    except (boto_errors.BotoCoreError, ValueError) as exc:
        raise errors.FailedPrecondition(
            f"cannot set up the S3 client for bucket '{prefix.bucket}' ({type(exc).__name__}); "
            "check the AWS settings: region, profile and endpoint URL"
        ) from exc
    return S3Store(prefix, client)


class _BaseStore:
    """What both stores share: the checks, the log line, and the worker thread for blocking I/O.

    A store supplies `_put`, `_get` (None when absent), `_list` and `_translate`; they run in a
    worker thread (or, for `_translate`, on an exception they raised).
    """

    def __init__(self, prefix: OutputPrefix) -> None:
        self.prefix = prefix

    def uri(self, timestamp: str, name: str) -> str:
        return f"{self.prefix.uri}/{parse_timestamp(timestamp)}/{_check_name(name)}"

    async def write_once(
        self, timestamp: str, name: str, body: bytes, content_type: str
    ) -> WriteResult:
        uri = self.uri(timestamp, name)
        key, created = await self._call(self._put, timestamp, name, body, content_type)
        log_fields(
            _log, logging.INFO, "storage write", key=key, uri=uri, size=len(body), created=created
        )
        return WriteResult(uri, key, len(body), created)

    async def read(self, timestamp: str, name: str) -> bytes:
        uri = self.uri(timestamp, name)
        data = await self._call(self._get, timestamp, name)
        if data is None:
            raise errors.NotFound(f"no object at {uri}")
        return data

    async def list_runs(self) -> list[str]:
        return sorted(name for name in await self._call(self._list, None) if _is_timestamp(name))

    async def list_run_objects(self, timestamp: str) -> list[str]:
        names = await self._call(self._list, parse_timestamp(timestamp))
        return sorted(name for name in names if name in OBJECT_NAMES)

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except errors.ServiceError:
            raise
        except Exception as exc:
            error = self._translate(exc)
            if error is None:
                raise
            raise error from exc

    def _put(self, timestamp: str, name: str, body: bytes, content_type: str) -> tuple[str, bool]:
        """Store the object unless its key exists; return (key, created)."""
        raise NotImplementedError

    def _get(self, timestamp: str, name: str) -> bytes | None:
        raise NotImplementedError

    def _list(self, timestamp: str | None) -> list[str]:
        """The folder names under the prefix (None), or the object names in a run."""
        raise NotImplementedError

    def _translate(self, exc: Exception) -> errors.ServiceError | None:
        raise NotImplementedError


class S3Store(_BaseStore):
    """Objects in an S3 bucket, through one boto3 client."""

    def __init__(self, prefix: OutputPrefix, client: Any) -> None:
        super().__init__(prefix)
        self._client = client
        self._base = f"{prefix.path}/" if prefix.path else ""
        self._endpoint = _redact(str(client.meta.endpoint_url))

    def _key(self, timestamp: str, name: str) -> str:
        return f"{self._base}{timestamp}/{name}"

    def _put(self, timestamp: str, name: str, body: bytes, content_type: str) -> tuple[str, bool]:
        key = self._key(timestamp, name)
        try:
            self._client.put_object(
                Bucket=self.prefix.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except boto_errors.ClientError as exc:
            if _error_code(exc) in _EXISTS_CODES:
                return key, False
            raise
        return key, True

    def _get(self, timestamp: str, name: str) -> bytes | None:
        try:
            response = self._client.get_object(
                Bucket=self.prefix.bucket, Key=self._key(timestamp, name)
            )
        except boto_errors.ClientError as exc:
            if _error_code(exc) == "NoSuchKey":
                return None
            raise
        data: bytes = response["Body"].read()
        return data

    def _list(self, timestamp: str | None) -> list[str]:
        under = self._base if timestamp is None else f"{self._base}{timestamp}/"
        names: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.prefix.bucket, Prefix=under, Delimiter="/"):
            if timestamp is None:
                names.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
            else:
                names.extend(item["Key"] for item in page.get("Contents", []))
        return [name[len(under) :].removesuffix("/") for name in names]

    def _translate(self, exc: Exception) -> errors.ServiceError | None:
        return _s3_error(exc, self.prefix.bucket, self._endpoint)


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _redact(url: str) -> str:
    """The endpoint URL without any user or password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()


def _s3_error(exc: Exception, bucket: str, endpoint: str) -> errors.ServiceError | None:
    """The service error for a boto3 failure on `bucket` (None: not boto3's); no credentials."""
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return errors.FailedPrecondition(
            f"no usable AWS credentials for bucket '{bucket}'; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    if isinstance(exc, boto_errors.ConnectionError | boto_errors.HTTPClientError):
        return errors.Unavailable(
            f"the S3 storage at {endpoint} is unreachable for bucket '{bucket}' "
            f"({type(exc).__name__}); check the endpoint URL and that the storage is up, then retry"
        )
    if not isinstance(exc, boto_errors.ClientError):
        if isinstance(exc, boto_errors.BotoCoreError):
            return errors.Unavailable(f"the S3 storage at {endpoint} failed ({type(exc).__name__})")
        return None
    code = _error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code == "NoSuchBucket":
        return errors.FailedPrecondition(
            f"the bucket '{bucket}' does not exist at {endpoint}; create it or fix the s3_prefix"
        )
    if code in _DENIED_CODES or status == 403:
        return errors.FailedPrecondition(
            f"access to the bucket '{bucket}' was denied ({code}); grant s3:PutObject, "
            "s3:GetObject and s3:ListBucket on it, or fix the AWS credentials"
        )
    if code == "NotImplemented":
        return errors.FailedPrecondition(
            f"the S3 storage at {endpoint} does not support conditional writes (If-None-Match), "
            "which write-once objects need; use a store that does"
        )
    if status >= 500 or code in _BUSY_CODES:
        return errors.Unavailable(f"the S3 storage at {endpoint} answered {status} {code}; retry")
    return errors.FailedPrecondition(f"S3 refused a request on bucket '{bucket}' ({status} {code})")


class FileStore(_BaseStore):
    """Objects as files in a local folder, written through a temporary file and a hard link."""

    def __init__(self, prefix: OutputPrefix) -> None:
        super().__init__(prefix)
        self._root = Path(prefix.path)

    def _put(self, timestamp: str, name: str, body: bytes, content_type: str) -> tuple[str, bool]:
        path = self._root / timestamp / name
        return str(path), _link_once(path, body)

    def _get(self, timestamp: str, name: str) -> bytes | None:
        try:
            return (self._root / timestamp / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _list(self, timestamp: str | None) -> list[str]:
        folder = self._root if timestamp is None else self._root / timestamp
        try:
            with os.scandir(folder) as entries:
                return [entry.name for entry in entries if entry.is_dir() == (timestamp is None)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _translate(self, exc: Exception) -> errors.ServiceError | None:
        return _os_error(exc, self._root) if isinstance(exc, OSError) else None


def _link_once(path: Path, body: bytes) -> bool:
    """Write `path` unless it exists: a fsynced temporary file, hard-linked into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)  # the new name survives a power cut
        finally:
            os.close(folder)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _os_error(exc: OSError, root: Path) -> errors.ServiceError:
    """The service error for a failed file operation under the store's folder `root`."""
    where = exc.filename or root
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errors.ResourceExhausted(
            f"no space left to write {where}; free space or choose another folder"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return errors.FailedPrecondition(
            f"cannot write {where}: {reason}; the folder {root} must be writable by this service "
            "on a filesystem with hard links, or choose another file:// prefix"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return errors.FailedPrecondition(
            f"cannot use {where}: a file stands where a folder is needed under {root}; "
            "move it away or choose another file:// prefix"
        )
    if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENAMETOOLONG):
        return errors.FailedPrecondition(f"cannot write {where}: {reason}; choose another folder")
    return errors.Unavailable(f"the storage folder {root} failed at {where}: {reason}; retry")
