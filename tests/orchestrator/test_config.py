"""Start-up settings: a value the orchestrator cannot use stops it with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
