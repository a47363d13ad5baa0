"""Webhooks as a request names them: a URL and the events it wants; their checks and payload.

What is checked here needs no network: the scheme (https, or http with
CATALOG_WEBHOOK_ALLOW_HTTP), a host, no credentials in the URL, known events. Where the host
leads is checked when a delivery resolves it (webhook_http.py), since DNS can change after.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.env import SettingsError

SUCCEEDED, FAILED, CANCELLED = "catalog.succeeded", "catalog.failed", "catalog.cancelled"
EVENTS = (SUCCEEDED, FAILED, CANCELLED)
EVENT_OF_STATUS = {"SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "CANCELLED": CANCELLED}
MAX_WEBHOOKS = 8
_MAX_URL = 2048


@dataclass(frozen=True)
class Webhook:
    """A receiver: where to POST, and which events (empty: all)."""

    url: str
    events: tuple[str, ...] = ()

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


def shown_url(url: str) -> str:
    """The URL as GetCatalog shows it: without query or fragment, where tokens tend to hide."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{_port(parts.port)}{parts.path}"


def _port(port: int | None) -> str:
    return f":{port}" if port else ""


def webhook_problems(
    webhooks: Sequence[Webhook], field: str, *, allow_http: bool
) -> list[tuple[str, str]]:
    """Each problem with its field, e.g. ("webhooks[1].url", "...")."""
    if len(webhooks) > MAX_WEBHOOKS:
        return [(field, f"at most {MAX_WEBHOOKS} webhooks, not {len(webhooks)}")]
    problems: list[tuple[str, str]] = []
    for i, hook in enumerate(webhooks):
        why = _url_problem(hook.url, allow_http)
        if why:
            problems.append((f"{field}[{i}].url", why))
        unknown = [e[:40] for e in hook.events if e not in EVENTS]
        if unknown:
            problems.append(
                (f"{field}[{i}].events", f"unknown {unknown}; use some of {', '.join(EVENTS)}")
            )
    return problems


def _url_problem(url: str, allow_http: bool) -> str:
    if not url or len(url) > _MAX_URL:
        return f"required, an https:// URL of at most {_MAX_URL} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "not a valid URL"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        extra = "" if allow_http else " (http:// only with CATALOG_WEBHOOK_ALLOW_HTTP=1)"
        return f"the scheme must be {' or '.join(schemes)}{extra}"
    if not parts.hostname:
        return "name a host"
    if parts.username or parts.password:
        return "no user or password in the URL: the signature proves who sends"
    return ""


def check_webhook_secret(secret: str) -> None:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 to 64 bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise SettingsError(
            "CATALOG_WEBHOOK_SECRET must be `whsec_` and the base64 of 24 to 64 random bytes; "
            "make one with: python -c \"import base64,os; print('whsec_' + "
            'base64.b64encode(os.urandom(32)).decode())"'
        )
