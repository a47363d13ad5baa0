"""The kernel's wire protocol: length-prefixed JSON frames on one long-lived byte channel.

The kernel reads requests on its standard input and writes events on its standard output; in a
container that channel is the attached stdio, for the subprocess kernel it is a pair of pipes.
Nothing else is ever written to that standard output: the kernel moves its own fd 1 to stderr at
start-up, and user code writes into pipes the kernel reads.

Framing
    Each frame is a 4-byte big-endian unsigned length N, then N bytes of UTF-8 JSON holding one
    object. Frames over MAX_FRAME_BYTES are a protocol error. The same framing carries the
    messages between the kernel and its worker processes.

Requests (client -> kernel); each carries a client-chosen ``id`` echoed by its events.
    {"op": "start_session", "id", "session": {"db_dsn" | "databases", "s3": {...},
                                               "env": {...}, "statement_timeout_s"}}
        Forks a fresh worker that opens each database read-only as ``cons[name]`` (a dict in
        the order given, holding those that opened) and binds ``con`` to the first, when it
        opened. ``databases`` is ``[{"name", "dsn", "connect_error"?}]``; ``db_dsn`` is the
        shorthand for one named "default". An entry with no ``dsn`` is not opened: its
        ``connect_error`` (the manager's reason) is reported as is.
        -> {"ev": "session", "id", "backend", "read_only", "connect_error",
            "databases": [{"name", "backend", "read_only", "connect_error"}], "duration_ms"}
           The top-level fields describe the first database; every error is scrubbed of
           every DSN of the session and its password.
    {"op": "execute", "id", "code", "timeout_s", "max_output_bytes"}
        -> any number of {"ev": "stdout"|"stderr", "id", "text"} as output is produced,
           {"ev": "truncated", "id", "stream", "bytes_omitted"} then the kept tail as one more
           stdout/stderr event when a stream went over its cap,
           {"ev": "result", "id", "text_plain"} for the value of a last expression,
           {"ev": "error", "id", "ename", "evalue", "traceback"} when the cell failed,
           and always last {"ev": "done", "id", "status", "duration_ms", "state_lost",
           "stdout_bytes_omitted", "stderr_bytes_omitted"}.
        status is one of ok, error, timeout, interrupted, crashed.
    {"op": "interrupt", "id"}
        Interrupts the running cell (its "done" says interrupted); no reply of its own.
    {"op": "reset", "id", ["session": {...}]}
        Kills the worker, empties the scratch folder, and gives the session a fresh worker;
        with "session", the new worker uses those settings instead.
        -> {"ev": "session", ...} as for start_session.
    {"op": "end_session", "id"}
        Kills the worker, forgets the session settings and empties the scratch folder.
        -> {"ev": "session_ended", "id", "duration_ms"}
    {"op": "ping", "id"}  -> {"ev": "pong", "id", "worker_alive", "busy"}
    {"op": "shutdown", "id"}  -> the kernel kills its worker and exits.

Kernel-initiated events
    {"ev": "hello", "protocol": PROTOCOL_VERSION, "pid", "preload_ms"} once, when ready.
    {"ev": "protocol_error", "id", "message"} for a request the kernel cannot act on.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")

Message = dict[str, Any]


class ProtocolError(Exception):
    """A frame that cannot be decoded: the channel is out of sync and must be dropped."""


def encode_frame(message: Message) -> bytes:
    """Serialize one message as a length-prefixed JSON frame."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, take whole messages out."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self._max_frame_bytes:
                raise ProtocolError(
                    f"announced frame of {length} bytes exceeds {self._max_frame_bytes}"
                )
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            try:
                message = json.loads(body)
            except ValueError as exc:
                raise ProtocolError(f"frame is not JSON: {exc}") from exc
            if not isinstance(message, dict):
                raise ProtocolError("frame does not hold a JSON object")
            messages.append(message)
        return messages


def write_frame(fd: int, message: Message) -> None:
    """Write one frame to a blocking file descriptor, retrying short writes."""
    view = memoryview(encode_frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_frame(fd: int, decoder: FrameDecoder, pending: list[Message]) -> Message | None:
    """Read from a blocking descriptor until one message is whole; None at end of file."""
    while not pending:
        data = os.read(fd, 65536)
        if not data:
            return None
        pending.extend(decoder.feed(data))
    return pending.pop(0)
