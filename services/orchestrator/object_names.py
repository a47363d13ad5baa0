"""What names a run's outputs: checked output prefixes, run timestamps and object names.

Keys are `{prefix}/{timestamp}/{agent}.{html|json}`. A prefix is checked before anything is
written (`parse_prefix`); each rejection says which part is wrong and how to fix it, under the
field `s3_prefix`. s3:// paths are taken literally, as the AWS CLI does; file:// paths are
percent-decoded, as file URIs are. The timestamp is UTC ISO 8601 with milliseconds at a fixed
width (24 characters), so keys sort by time as plain strings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

from services.common import errors

# An agent's name: its prompt file (prompts/{agent}.yaml), its variable's middle
# (CATALOG_PROMPT_{AGENT}_B64) and its pages' names. Lower case, so names cannot clash by case.
AGENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
AGENT_NAME_RULE = "1-32 lower-case letters, digits and '_', starting with a letter"
KINDS = ("html", "json")
_OBJECT_NAME = re.compile(rf"{AGENT_NAME.pattern}\.(?:{'|'.join(KINDS)})")
PREFIX_FIELD = "s3_prefix"
TIMESTAMP_LENGTH = 24  # 2026-11-23T22:51:11.123Z

_EXAMPLES = "s3://bucket/path or file:///absolute/path"
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_LONGEST_NAME = 32 + len(".html")
_TEMP_EXTRA = len(".") + len(".0123456789abcdef.tmp")  # a temporary file's name beyond its own
_S3_KEY_MAX = 1024  # bytes of UTF-8
_FILE_PATH_MAX = 4095  # PATH_MAX (4096) holds the terminating NUL
_FILE_SEGMENT_MAX = 255
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]")
_IP_LIKE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--table-s3")


@dataclass(frozen=True)
class OutputPrefix:
    """A checked output prefix; build it with `parse_prefix`."""

    scheme: Literal["s3", "file"]
    bucket: str  # the S3 bucket; "" for file
    path: str  # s3: key prefix in the bucket, no slash at either end, may be ""; file: the folder
    uri: str  # normalised, no trailing slash: s3://bucket/path, file:///abs/path


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


def is_timestamp(text: str) -> bool:
    if not _TIMESTAMP_RE.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:  # a day or hour that does not exist
        return False
    return True


def parse_timestamp(text: str) -> str:
    """Return `text` if it is a run timestamp (`2026-11-23T22:51:11.123Z`), else InvalidArgument."""
    if is_timestamp(text):
        return text
    reason = f"{text[:40]!r} is not a UTC timestamp of the form 2026-11-23T22:51:11.123Z"
    raise errors.InvalidArgument(
        f"invalid timestamp: {reason}", field_violations=[("timestamp", reason)]
    )


def object_name(agent_name: str, kind: Literal["html", "json"]) -> str:
    """The object name of an agent's output, e.g. `catalog.html`."""
    if not AGENT_NAME.fullmatch(agent_name):
        reason = f"{agent_name[:40]!r} is not an agent name: {AGENT_NAME_RULE}"
        raise errors.InvalidArgument(reason, field_violations=[("agent_name", reason)])
    if kind not in KINDS:
        reason = f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}"
        raise errors.InvalidArgument(reason, field_violations=[("kind", reason)])
    return f"{agent_name}.{kind}"


def is_object_name(name: str) -> bool:
    """Whether `name` is an output's name, `{agent}.html` or `{agent}.json`."""
    return _OBJECT_NAME.fullmatch(name) is not None


def check_object_name(name: str) -> str:
    if not is_object_name(name):
        reason = f"{name[:40]!r} is not an object name; use object_name(agent, kind)"
        raise errors.InvalidArgument(reason, field_violations=[("name", reason)])
    return name
