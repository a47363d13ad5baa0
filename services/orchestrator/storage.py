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
* Prefixes, timestamps and object names are checked in keys.py before anything is written.
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
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config

from services.common import errors
from services.common.logging import log_fields
from services.orchestrator.metrics import STORAGE_WRITE_SECONDS, STORAGE_WRITES
from services.orchestrator.object_names import (
    OutputPrefix,
    check_object_name,
    is_object_name,
    is_timestamp,
    parse_timestamp,
)

_log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")

_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_BUSY_CODES = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}
_S3_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
)


@dataclass(frozen=True)
class WriteResult:
    uri: str  # {prefix}/{timestamp}/{name}
    key: str  # the S3 object key, or the file's absolute path
    size: int  # bytes of the body offered
    created: bool  # False: the key existed already and was left as it was


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

    async def run_object_sizes(self, timestamp: str) -> dict[str, int]: ...


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

    kind = ""  # the metrics' `store` label

    def __init__(self, prefix: OutputPrefix) -> None:
        self.prefix = prefix

    def uri(self, timestamp: str, name: str) -> str:
        return f"{self.prefix.uri}/{parse_timestamp(timestamp)}/{check_object_name(name)}"

    async def write_once(
        self, timestamp: str, name: str, body: bytes, content_type: str
    ) -> WriteResult:
        uri = self.uri(timestamp, name)
        started = time.monotonic()
        try:
            key, created = await self._call(self._put, timestamp, name, body, content_type)
        except Exception:
            STORAGE_WRITES.labels(self.kind, "error").inc()
            raise
        finally:
            STORAGE_WRITE_SECONDS.labels(self.kind).observe(time.monotonic() - started)
        STORAGE_WRITES.labels(self.kind, "created" if created else "existed").inc()
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
        return sorted(name for name in await self._call(self._list, None) if is_timestamp(name))

    async def list_run_objects(self, timestamp: str) -> list[str]:
        names = await self._call(self._list, parse_timestamp(timestamp))
        return sorted(name for name in names if is_object_name(name))

    async def run_object_sizes(self, timestamp: str) -> dict[str, int]:
        """The objects of a run and their sizes in bytes, from one listing: a reader checks
        a size against its budget before it reads the object."""
        sizes = await self._call(self._sizes, parse_timestamp(timestamp))
        return {name: size for name, size in sorted(sizes.items()) if is_object_name(name)}

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

    def _sizes(self, timestamp: str) -> dict[str, int]:
        """The object names in a run, with their sizes."""
        raise NotImplementedError

    def _translate(self, exc: Exception) -> errors.ServiceError | None:
        raise NotImplementedError


class S3Store(_BaseStore):
    """Objects in an S3 bucket, through one boto3 client."""

    kind = "s3"

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

    def _sizes(self, timestamp: str) -> dict[str, int]:
        under = f"{self._base}{timestamp}/"
        sizes: dict[str, int] = {}
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.prefix.bucket, Prefix=under, Delimiter="/"):
            for item in page.get("Contents", []):
                sizes[item["Key"][len(under) :]] = int(item["Size"])
        return sizes

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

    kind = "file"

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

    def _sizes(self, timestamp: str) -> dict[str, int]:
        try:
            with os.scandir(self._root / timestamp) as entries:
                return {e.name: e.stat().st_size for e in entries if e.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            return {}

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
