"""Replacing secret values (a DSN, its password, keys) in text that leaves a service."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[redacted]"


class Redactor:
    """Replaces every given secret with `[redacted]`; values under 4 characters are ignored
    (they would blank out ordinary text)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a DSN is replaced whole before the password inside it.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text
