"""Typed readers of environment variables for each service's `Settings.from_env()`.

A value that cannot be used raises SettingsError naming the variable and what it needs, so a
service stops at start-up with a message an operator can act on.
"""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use; the message names it."""


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    try:
        value = int(env[name]) if name in env else default
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, not {env[name]!r}") from exc
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def env_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None
) -> float:
    try:
        value = float(env[name]) if name in env else default
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, not {env[name]!r}") from exc
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, not {value:g}")
    return value


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    if name not in env:
        return default
    return tuple(item.strip() for item in env[name].split(",") if item.strip())
