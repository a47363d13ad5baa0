"""Caps one output stream of a cell: the head streams live, the tail is kept, the middle is cut.

An agent that prints a million rows needs to see how the output starts and how it ends, and to be
told how much was left out, rather than silently losing the end (which makes it re-run the cell).
"""

from __future__ import annotations

import codecs


class CappedStream:
    """Passes the first ``head_bytes`` through at once and remembers the last ``tail_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self._head_left = max_bytes - max_bytes // 2
        self._tail_bytes = max_bytes // 2
        self._tail = bytearray()
        self._omitted = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """Take raw output; return the text to emit now (empty once the head is used up)."""
        head, rest = data[: self._head_left], data[self._head_left :]
        self._head_left -= len(head)
        if rest:
            self._tail += rest
            overflow = len(self._tail) - self._tail_bytes
            if overflow > 0:
                del self._tail[:overflow]
                self._omitted += overflow
        return self._decoder.decode(head) if head else ""

    @property
    def bytes_omitted(self) -> int:
        return self._omitted

    def finish(self) -> str:
        """Return whatever is still held: the rest of a split character, then the tail."""
        if not self._omitted:
            return self._decoder.decode(bytes(self._tail), final=True)
        head_end = self._decoder.decode(b"", final=True)
        # The cut may have split a character: drop its stray continuation bytes.
        tail = bytes(self._tail).lstrip(bytes(range(0x80, 0xC0)))
        return head_end + tail.decode("utf-8", errors="replace")


def cap_text(text: str, max_chars: int) -> str:
    """The head and tail of ``text`` within ``max_chars``, saying how much was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    half = max_chars // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters truncated ...]\n{text[-half:]}"
