"""Start-up settings: a value the agent runner cannot use stops it with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.agent_runner.app import open_store
from services.agent_runner.config import Settings, SettingsError


@pytest.mark.parametrize("value", ["", " , "])
def test_no_sandbox_manager_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^CATALOG_SANDBOX_MANAGERS names no"):
        Settings.from_env({"CATALOG_SANDBOX_MANAGERS": value})


def test_a_default_budget_above_its_ceiling_is_refused_naming_the_ceiling() -> None:
    env = {"CATALOG_AGENT_MAX_TURNS": "50", "CATALOG_AGENT_CEILING_TURNS": "10"}
    with pytest.raises(SettingsError, match="CATALOG_AGENT_CEILING_TURNS=10"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("CATALOG_AGENT_RUN_RETENTION_S", "run_retention_s"),
        ("CATALOG_AGENT_MAX_RETAINED_RUNS", "max_retained_runs"),
    ],
)
def test_the_finished_runs_bounds_are_settings_of_at_least_one(name: str, field: str) -> None:
    assert getattr(Settings.from_env({name: "7"}), field) == 7
    with pytest.raises(SettingsError, match=f"^{name} must be at least 1"):
        Settings.from_env({name: "0"})


def test_an_unusable_state_folder_stops_the_runner_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = Settings.from_env({"CATALOG_AGENT_STATE_DIR": str(blocker / "state")})
    with pytest.raises(SettingsError, match=r"^CATALOG_AGENT_STATE_DIR="):
        open_store(settings)
