"""Start-up settings: a value the agent runner cannot use stops it with a message naming it."""

from __future__ import annotations

import pytest

from services.agent_runner.config import Settings, SettingsError


@pytest.mark.parametrize("value", ["", " , "])
def test_no_sandbox_manager_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^CATALOG_SANDBOX_MANAGERS names no"):
        Settings.from_env({"CATALOG_SANDBOX_MANAGERS": value})


def test_a_default_budget_above_its_ceiling_is_refused_naming_the_ceiling() -> None:
    env = {"CATALOG_AGENT_MAX_TURNS": "50", "CATALOG_AGENT_CEILING_TURNS": "10"}
    with pytest.raises(SettingsError, match="CATALOG_AGENT_CEILING_TURNS=10"):
        Settings.from_env(env)
