"""Replacing secret values (a DSN, its password, keys) in text that leaves a service.

Code the model writes can print a secret in disguise as easily as in the clear, so each secret
is also redacted in its common encodings: base64 (standard and URL-safe, with and without
padding, and the three ways a secret can align inside a longer base64 string), hex (lower and
upper case), URL-encoding (`quote` and `quote_plus`) and reversed; each form also as HTML
escapes it, since pages are HTML. The forms are computed once per secret set and matched in one
regular-expression pass, longest first.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4
"""A secret shorter than this is ignored: it would blank out ordinary text."""
MIN_FORM_CHARS = 8
"""An encoded form shorter than this is ignored, for the same reason (a literal form is kept
from MIN_SECRET_CHARS)."""

_ENCODERS: tuple[Callable[[bytes], bytes], ...] = (base64.b64encode, base64.urlsafe_b64encode)
# Inside a longer base64 string a secret starts 0, 1 or 2 bytes after a 3-byte boundary; the
# first characters then mix in bits of what comes before it: skip that many characters.
_ALIGNMENT_SKIP = {0: 0, 1: 2, 2: 3}


def encoded_forms(secret: str) -> set[str]:
    """`secret` and every encoding of it the redactor looks for (the short ones dropped)."""
    raw = secret.encode()
    forms = {
        raw.hex(),
        raw.hex().upper(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        secret[::-1],
    }
    for encode in _ENCODERS:
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for offset, skip in _ALIGNMENT_SKIP.items():
            # characters that depend on the secret's bytes alone, whatever surrounds it
            end = (offset + len(raw)) * 8 // 6
            forms.add(encode(b"\0" * offset + raw).decode()[skip:end])
    forms = {form for form in forms if len(form) >= MIN_FORM_CHARS} | {secret}
    return forms | {html.escape(form, quote=q) for form in forms for q in (True, False)}


class Redactor:
    """Replaces every given secret, and its encodings, with `[redacted]`; values under
    MIN_SECRET_CHARS characters are ignored."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in {s for s in secrets if len(s) >= MIN_SECRET_CHARS}:
            forms |= encoded_forms(secret)
        # Longest first, so a DSN is replaced whole before the password inside it.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)


def shown_value(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message about it, or "the value given" when it looks like it
    holds a connection string: a DSN pasted into the wrong field must not be echoed back."""
    if "://" in text or "@" in text:
        return "the value given"
    return repr(text[:limit])
