"""Start-up settings: a value the orchestrator cannot use stops it with a message naming it."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.orchestrator.app import dbos_config
from services.orchestrator.auth import ApiGuard, AuthSettings
from services.orchestrator.config import Settings, SettingsError
from tests.orchestrator.stack import REPO


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CATALOG_QUEUE_CONCURRENCY", "0", "at least 1"),
        ("CATALOG_RATE_BURST", "0", "at least 1"),
        ("CATALOG_ORCHESTRATOR_GRPC_PORT", "fifty", "whole number"),
        ("CATALOG_STORAGE_RETRY_S", "-1", "at least 0"),
    ],
)
def test_a_bad_setting_is_named(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}.*{says}|{says}.*{name}"):
        Settings.from_env({name: value})


def test_the_lists_drop_blanks() -> None:
    settings = Settings.from_env(
        {"CATALOG_SANDBOX_MANAGERS": " a:1, ,b:2 ", "CATALOG_API_KEYS": ""}
    )
    assert settings.sandbox_managers == ("a:1", "b:2")
    assert settings.api_keys == ()
    assert "api_keys" not in repr(settings) or "a:1" in repr(settings)


def test_the_service_stops_with_the_message_not_a_traceback() -> None:
    env = {**os.environ, "CATALOG_RATE_BURST": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "services.orchestrator"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "orchestrator: CATALOG_RATE_BURST must be at least 1, not 0" in run.stderr
    assert "Traceback" not in run.stderr


def test_tenants_come_from_json_or_a_file_and_api_keys_stay_the_default_tenant(
    tmp_path: Path,
) -> None:
    spec = {"acme": {"keys": ["k-acme"], "prefixes": ["s3://bucket/acme/", "*"]}}
    (tmp_path / "tenants.json").write_text(json.dumps(spec))
    for value in (json.dumps(spec), str(tmp_path / "tenants.json")):
        settings = Settings.from_env({"CATALOG_TENANTS": value, "CATALOG_API_KEYS": "k-old"})
        [acme] = settings.tenants
        assert (acme.name, acme.prefixes) == ("acme", ("s3://bucket/acme", "*"))
        assert "k-acme" not in repr(settings)
        guard = ApiGuard(AuthSettings(settings.api_keys, tenants=settings.tenants))
        assert guard.caller("Bearer k-old").tenant.name == "default"
        assert guard.caller("Bearer k-acme").tenant.name == "acme"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "not valid JSON"),
        ("/no/such/tenants.json", "neither JSON nor a readable file"),
        ('{"Acme": {"keys": ["k"], "prefixes": ["*"]}}', "tenant name"),
        ('{"acme": {"keys": [], "prefixes": ["*"]}}', "non-empty list of keys"),
        ('{"acme": {"keys": ["k"], "prefixes": ["s3://b/x"]}}', "bucket name"),
        ('{"acme": {"keys": ["k"], "prefixes": ["s3://bkt/x"], "admin": true}}', "must be"),
    ],
)
def test_a_bad_tenant_setting_is_named(value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({"CATALOG_TENANTS": value})


def test_a_key_shared_by_two_tenants_is_refused() -> None:
    both = {"a": {"keys": ["k"], "prefixes": ["*"]}, "b": {"keys": ["k"], "prefixes": ["*"]}}
    with pytest.raises(SettingsError, match="belongs to another"):
        Settings.from_env({"CATALOG_TENANTS": json.dumps(both)})
    only_a = json.dumps({"a": both["a"]})
    with pytest.raises(SettingsError, match="belongs to another"):
        Settings.from_env({"CATALOG_TENANTS": only_a, "CATALOG_API_KEYS": "k"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CATALOG_SANDBOX_MANAGERS", ""),
        ("CATALOG_SANDBOX_MANAGERS", " , "),
        ("CATALOG_AGENT_RUNNER", ""),
    ],
)
def test_a_run_without_a_manager_or_runner_to_call_is_refused_at_start(
    name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{name} names no"):
        Settings.from_env({name: value})


def test_a_sqlite_system_database_is_put_in_write_ahead_log_mode(tmp_path: Path) -> None:
    """Each DBOS write then costs one log sync, not the rollback journal's several."""
    path = tmp_path / "state" / "dbos.sqlite"
    settings = dataclasses.replace(Settings(), system_database_url=f"sqlite:///{path}")
    assert dbos_config(settings)["system_database_url"] == f"sqlite:///{path}"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
