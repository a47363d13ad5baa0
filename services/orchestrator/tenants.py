"""Tenants: who owns a catalog, and where each may write.

An API key belongs to one tenant. A tenant sees and controls only its own catalogs (another
tenant's catalog is NOT_FOUND, exactly as an unknown id) and may start catalogs only under its
own output prefixes (PERMISSION_DENIED otherwise, naming the prefixes it may use).

`CATALOG_TENANTS` holds JSON, or the path of a JSON file (better: keys stay out of the
environment), of this shape::

    {"acme":   {"keys": ["k-acme-1"], "prefixes": ["s3://bucket/acme"]},
     "globex": {"keys": ["k-globex"], "prefixes": ["s3://bucket/globex", "file:///srv/globex"]}}

`"prefixes": ["*"]` allows any prefix (file:// ones still only under CATALOG_FILE_ROOTS).
Keys in `CATALOG_API_KEYS` belong to the tenant `default`, which may write anywhere; with no
keys at all every caller is `default`.

Prefixes are compared after `parse_prefix` normalised them (no `..`, `.` or `//` passes it),
segment by segment: `s3://b/t1x` does not lie under `s3://b/t1`. file:// paths are resolved
(symlinks too) before they are compared.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.common.env import SettingsError
from services.common.errors import InvalidArgument, PermissionDenied
from services.orchestrator.object_names import OutputPrefix, parse_prefix

DEFAULT_TENANT = "default"
ANY_PREFIX = "*"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Tenant:
    """One tenant: its name, its keys (hidden from repr) and the prefixes it may write."""

    name: str
    keys: tuple[str, ...] = field(default=(), repr=False)
    # normalised prefix URIs; ("*",) allows any
    prefixes: tuple[str, ...] = (ANY_PREFIX,)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise SettingsError(
                f"tenant name {self.name[:40]!r} is not valid: use 1-63 lowercase letters, "
                "digits, '_' and '-', starting with a letter or digit"
            )
        if not self.prefixes:
            raise SettingsError(f'tenant {self.name!r} has no prefixes; list some, or "*"')

    def check_prefix(self, prefix: OutputPrefix) -> None:
        """Raise PermissionDenied unless `prefix` lies under one of this tenant's prefixes."""
        if ANY_PREFIX in self.prefixes:
            return
        if any(prefix_within(prefix, parse_prefix(allowed)) for allowed in self.prefixes):
            return
        raise PermissionDenied(
            f"the s3_prefix is outside what tenant {self.name!r} may write; "
            f"use a prefix under one of: {', '.join(self.prefixes)}"
        )


def prefix_within(prefix: OutputPrefix, allowed: OutputPrefix) -> bool:
    """Whether `prefix` is `allowed` or lies under it, by whole path segments.

    Both come from `parse_prefix`, so neither holds `..`, `.` or an empty segment; file://
    paths are also resolved (symlinks, `..` through a link) before the comparison.
    """
    if prefix.scheme != allowed.scheme or prefix.bucket != allowed.bucket:
        return False
    path, under = prefix.path, allowed.path
    if prefix.scheme == "file":
        path, under = os.path.realpath(path), os.path.realpath(under)
    if not under or under == "/":
        return True
    return path == under or path.startswith(under.rstrip("/") + "/")


def parse_tenants(value: str) -> tuple[Tenant, ...]:
    """The tenants `CATALOG_TENANTS` names (JSON, or the path of a JSON file); () when unset."""
    if not value.strip():
        return ()
    return tuple(_tenant(name, spec) for name, spec in _load(value).items())


def check_tenants(tenants: Sequence[Tenant], legacy_keys: Sequence[str]) -> None:
    """No key may belong to two tenants; `legacy_keys` belong to `default`."""
    names = [t.name for t in tenants]
    if len(set(names)) != len(names) or (legacy_keys and DEFAULT_TENANT in names):
        raise SettingsError(
            "a tenant is named twice (CATALOG_API_KEYS give keys to the tenant 'default': "
            "list those keys in CATALOG_TENANTS only)"
        )
    seen: set[str] = set(legacy_keys)
    for tenant in tenants:
        if seen & set(tenant.keys):
            raise SettingsError(f"an API key of tenant {tenant.name!r} belongs to another too")
        seen |= set(tenant.keys)


def _load(value: str) -> Mapping[str, object]:
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise SettingsError(
                f"CATALOG_TENANTS is neither JSON nor a readable file ({exc.strerror})"
            ) from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"CATALOG_TENANTS is not valid JSON (line {exc.lineno})") from None
    if not isinstance(loaded, dict) or not loaded:
        raise SettingsError('CATALOG_TENANTS must map tenant names to {"keys", "prefixes"}')
    return loaded


def _tenant(name: str, spec: object) -> Tenant:
    if not isinstance(spec, dict) or set(spec) - {"keys", "prefixes"}:
        raise SettingsError(
            f'CATALOG_TENANTS[{name!r}] must be {{"keys": [...], "prefixes": [...]}}'
        )
    keys, prefixes = spec.get("keys", []), spec.get("prefixes", [])
    if not _strings(keys) or not keys:
        raise SettingsError(f"CATALOG_TENANTS[{name!r}].keys must be a non-empty list of keys")
    if not _strings(prefixes):
        raise SettingsError(f"CATALOG_TENANTS[{name!r}].prefixes must be a list of prefixes")
    normalised = []
    for prefix in prefixes:
        try:
            normalised.append(prefix if prefix == ANY_PREFIX else parse_prefix(prefix).uri)
        except InvalidArgument as exc:
            raise SettingsError(f"CATALOG_TENANTS[{name!r}]: {exc.message}") from None
    return Tenant(name, tuple(keys), tuple(normalised))


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
