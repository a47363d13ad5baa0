"""docs/settings.md is the one Settings table: every setting the code reads, and no other."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# How the services and the kernel read a setting: env_int(env, "X"), env.get("X"), env("X")...
READS = re.compile(
    r'(?:env_int|env_float|env_list|env\.get|environ\.get|getenv|env)\(\s*(?:env,\s*)?"([A-Z][A-Z0-9_]+)"'
)


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for folder in ("services", "sandbox", "demo", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            names.update(READS.findall(path.read_text()))
    return names


def settings_table() -> str:
    return (REPO / "docs" / "settings.md").read_text()


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    read = settings_read_by_the_code()
    assert len(read) > 40  # the pattern still finds the settings
    table = settings_table()
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert not missing, f"add these to the Settings table in docs/settings.md: {missing}"


def test_the_settings_table_names_nothing_the_code_does_not_read() -> None:
    documented = set(re.findall(r"`((?:CATALOG|DBOS|ANTHROPIC)_[A-Z0-9_]+)`", settings_table()))
    read = settings_read_by_the_code() | {
        "CATALOG_PROMPT_CATALOG_B64",
        "CATALOG_PROMPT_SUMMARY_B64",
        "CATALOG_PIPELINE_B64",  # pipeline.py reads it by its constant, PIPELINE_VAR
    }
    assert not sorted(documented - read)
