"""The agents' prompts: the shipped files, environment overrides, bad prompts, the command line."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.agent_runner.report import REPORT_MARKER
from services.orchestrator.errors import PromptError
from services.orchestrator.prompts import (
    AgentPrompt,
    env_var,
    load_prompt,
    load_prompts,
    main,
)

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
AGENTS = ("catalog", "summary")  # the shipped agents these tests know
CATALOG_VAR = "CATALOG_PROMPT_CATALOG_B64"
SUMMARY_VAR = "CATALOG_PROMPT_SUMMARY_B64"


def _shipped(agent: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROMPTS / f"{agent}.yaml").read_text("utf-8"))
    return data


def _b64(text: str | bytes) -> str:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _clean_environ() -> dict[str, str]:
    """The test process's environment without any prompt override a developer may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_PROMPT_")}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.orchestrator.prompts", *args],
        cwd=ROOT,
        env={**_clean_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- the shipped files -----------------------------------------------------------------------


def test_the_shipped_files_load_with_sources_and_digests() -> None:
    prompts = load_prompts(PROMPTS, {})
    assert set(AGENTS) <= set(prompts)
    for agent, prompt in prompts.items():
        assert isinstance(prompt, AgentPrompt)
        assert prompt.agent_name == agent
        assert prompt.source == str(PROMPTS / f"{agent}.yaml")
        expected = hashlib.sha256(prompt.system_prompt.encode("utf-8")).hexdigest()[:12]
        assert prompt.digest == expected
        assert prompt.system_prompt.endswith("\n")
        assert prompt.system_prompt.index("# Limits") < prompt.system_prompt.index("# HTML format")


def test_loading_is_deterministic() -> None:
    assert load_prompts(PROMPTS, {}) == load_prompts(PROMPTS, {})


def test_the_catalog_prompt_has_what_the_agent_needs() -> None:
    prompt = load_prompt("catalog", PROMPTS, {})
    text = prompt.system_prompt
    for needed in (
        '{"tables": [...]}',
        "schema.table",
        "`con`",
        "execute_python",
        "submit_html",
        "read only",
        "password",
        "catalog_toolkit.profile_table(con, ",
        "[[catalog-toolkit-report]]",
        "catalog.json",
        "- max_tables: 50",
        "- sample_rows: 5",
        "html.escape",
    ):
        assert needed in text, needed
    assert "# Criteria" not in text
    # The marker the prompt teaches is the one the runner fills in.
    assert REPORT_MARKER in text
    assert prompt.limits["max_tables"] == 50


def test_the_summary_prompt_has_what_the_agent_needs() -> None:
    prompt = load_prompt("summary", PROMPTS, {})
    text = prompt.system_prompt
    for needed in (
        '"history_dir": "/tmp/history"',
        "{history_dir}/{timestamp}/",
        "catalog.json",
        "catalog_toolkit.compare_runs(history_dir, current_timestamp)",
        "[[catalog-toolkit-report]]",
        "current_timestamp",
        "s3_prefix",
        "submit_html",
        "baseline",
        "If there is no earlier run",
        "# Criteria",
        "## Good",
        "## Bad",
        "## Neutral",
        "- baseline_runs: 5",
        'catalog_toolkit.run_agents(history_dir, current_timestamp, exclude="summary")',
        '<a href="pii.html">',
    ):
        assert needed in text, needed
    assert text.index("## Good") < text.index("## Bad") < text.index("## Neutral")


# --- environment overrides -------------------------------------------------------------------


def test_an_environment_variable_replaces_the_file(tmp_path: Path) -> None:
    data = _shipped("catalog")
    data["instructions"] = "Catalog at most `max_tables` tables, `sample_rows` rows each.\n"
    data["limits"] = {"max_tables": 3, "sample_rows": 2, "row_budget": 1234}
    data["html_format"] = "One page; sample above `row_budget` rows.\n"
    env = {CATALOG_VAR: _b64(_dump(data))}
    shipped = load_prompt("catalog", PROMPTS, {})
    # An empty directory: with the variable set, the file is not read at all.
    prompt = load_prompt("catalog", tmp_path, env)
    assert prompt.source == f"env:{CATALOG_VAR}"
    assert prompt.system_prompt != shipped.system_prompt
    assert prompt.digest != shipped.digest
    assert prompt.system_prompt.startswith("Catalog at most `max_tables` tables")
    assert "- row_budget: 1234" in prompt.system_prompt
    summary = load_prompts(PROMPTS, env)["summary"]
    assert summary.source == str(PROMPTS / "summary.yaml")


def test_an_empty_variable_counts_as_unset() -> None:
    prompt = load_prompt("summary", PROMPTS, {SUMMARY_VAR: "  "})
    assert prompt.source == str(PROMPTS / "summary.yaml")


def test_the_variable_may_be_wrapped_over_lines() -> None:
    encoded = _b64((PROMPTS / "summary.yaml").read_bytes())
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    prompt = load_prompt("summary", PROMPTS, {SUMMARY_VAR: wrapped})
    assert prompt.system_prompt == load_prompt("summary", PROMPTS, {}).system_prompt


def test_env_var_names() -> None:
    assert [env_var(agent) for agent in AGENTS] == [CATALOG_VAR, SUMMARY_VAR]


# --- bad prompts -----------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[part]
        data[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[part]
        del data[last]

    return mutate


BAD_DOCUMENTS = [
    pytest.param(
        "summary",
        _set("run_when", "sometimes"),
        "key 'run_when' must be one of succeeded, completed, always",
        id="run-when",
    ),
    pytest.param(
        "catalog", _set("reads", ["disk"]), "key 'reads' must be a list of database", id="reads"
    ),
    pytest.param(
        "summary", _set("needs", ["Catalog"]), "key 'needs' must be a list of agent", id="needs"
    ),
    pytest.param(
        "summary",
        _set("needs", ["catalog", "catalog"]),
        "key 'needs' names catalog more than once",
        id="needs-twice",
    ),
    pytest.param(
        "catalog", _set("needs", ["catalog"]), "an agent cannot need itself", id="needs-itself"
    ),
    pytest.param("catalog", _delete("instructions"), "key 'instructions' is missing", id="missing"),
    pytest.param(
        "summary", _delete("criteria"), "key 'criteria' is missing", id="missing-criteria"
    ),
    pytest.param(
        "catalog", _delete("limits.max_tables"), "key 'limits.max_tables' is missing", id="no-limit"
    ),
    pytest.param(
        "summary", _delete("criteria.good"), "key 'criteria.good' is missing", id="no-good"
    ),
    pytest.param(
        "catalog",
        _set("instructions", 42),
        "key 'instructions' must be a non-empty string",
        id="int",
    ),
    pytest.param(
        "catalog",
        _set("html_format", "  "),
        "key 'html_format' must be a non-empty string",
        id="blank",
    ),
    pytest.param(
        "catalog", _set("limits", [1, 2]), "key 'limits' must be a mapping", id="limits-list"
    ),
    pytest.param(
        "catalog",
        _set("limits.max_tables", "fifty"),
        "'limits.max_tables' must be a positive integer",
        id="limit-string",
    ),
    pytest.param(
        "catalog",
        _set("limits.sample_rows", 5.5),
        "'limits.sample_rows' must be a positive integer",
        id="limit-float",
    ),
    pytest.param(
        "catalog",
        _set("limits.max_tables", True),
        "'limits.max_tables' must be a positive integer",
        id="limit-bool",
    ),
    pytest.param(
        "summary",
        _set("criteria.bad", "everything"),
        "key 'criteria.bad' must be a list of one-line strings",
        id="criteria-string",
    ),
    pytest.param(
        "summary",
        _set("criteria.neutral", [{"A rename": "worth confirming"}]),
        "read as a mapping: quote it",
        id="criteria-colon",
    ),
    pytest.param("catalog", _set("version", 2), "key 'version' must be 1, not 2", id="version"),
    pytest.param(
        "catalog",
        _set("description", "two\nlines"),
        "key 'description' must be one line",
        id="description",
    ),
    pytest.param(
        "catalog", _set("instructtions", "x"), "unknown key 'instructtions'", id="unknown"
    ),
    pytest.param("catalog", _set("criteria", {"good": ["x"]}), "unknown key 'criteria'", id="crit"),
    pytest.param(
        "summary", _set("criteria.ugly", ["x"]), "unknown key 'criteria.ugly'", id="unknown-nested"
    ),
    pytest.param(
        "catalog",
        _set("limits.max_tabels", 5),
        "'limits.max_tabels' is not mentioned",
        id="limit-typo",
    ),
    pytest.param(
        "catalog",
        _set("limits.max_tables", 0),
        "'limits.max_tables' must be a positive integer",
        id="limit-zero",
    ),
    pytest.param(
        "summary",
        _set("limits.baseline_runs", -3),
        "'limits.baseline_runs' must be a positive integer",
        id="limit-negative",
    ),
    pytest.param(
        "summary",
        _set("limits.null_rate_jump", 1.5),
        "'limits.null_rate_jump' must be a fraction, 0 < x <= 1",
        id="fraction-over-one",
    ),
    pytest.param(
        "summary",
        _set("limits.distinct_tolerance", 0.0),
        "'limits.distinct_tolerance' must be a fraction",
        id="fraction-zero",
    ),
]


def _mutated(agent: str, mutate: Mutation) -> str:
    data = copy.deepcopy(_shipped(agent))
    mutate(data)
    return _dump(data)


def _write_prompts(directory: Path, **texts: str) -> Path:
    for agent in AGENTS:
        path = directory / f"{agent}.yaml"
        path.write_text(texts.get(agent, (PROMPTS / f"{agent}.yaml").read_text("utf-8")), "utf-8")
    (directory / "pipeline.yaml").write_text("version: 1\nagents: [catalog, summary]\n")
    return directory


@pytest.mark.parametrize(("agent", "mutate", "message"), BAD_DOCUMENTS)
def test_a_bad_file_names_the_file_and_the_key(
    tmp_path: Path, agent: str, mutate: Mutation, message: str
) -> None:
    _write_prompts(tmp_path, **{agent: _mutated(agent, mutate)})
    with pytest.raises(PromptError) as caught:
        load_prompts(tmp_path, {})
    assert str(caught.value).startswith(f"{tmp_path / f'{agent}.yaml'}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(("agent", "mutate", "message"), BAD_DOCUMENTS)
def test_a_bad_variable_names_the_variable_and_the_key(
    agent: str, mutate: Mutation, message: str
) -> None:
    var = env_var(agent)
    with pytest.raises(PromptError) as caught:
        load_prompts(PROMPTS, {var: _b64(_mutated(agent, mutate))})
    assert str(caught.value).startswith(f"{var}: ")
    assert message in str(caught.value)


def test_prompt_error_is_a_value_error() -> None:
    assert issubclass(PromptError, ValueError)


BAD_YAML = "version: 1\nagent: summary\ndescription: a: b\n"

BAD_TEXTS = [
    pytest.param(BAD_YAML, "not valid YAML (line 3", id="yaml"),
    pytest.param("version: 1\nagent: catalog\nversion: 1\n", "written twice", id="duplicate"),
    pytest.param("- a list\n", "must be a YAML mapping of keys, not list", id="list"),
    pytest.param("# only a comment\n", "must be a YAML mapping of keys, not NoneType", id="empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TEXTS)
def test_bad_yaml_in_a_file(tmp_path: Path, text: str, message: str) -> None:
    _write_prompts(tmp_path, summary=text)
    with pytest.raises(PromptError, match=r"^.*summary\.yaml: ") as caught:
        load_prompt("summary", tmp_path, {})
    assert message in str(caught.value)


@pytest.mark.parametrize(("text", "message"), BAD_TEXTS)
def test_bad_yaml_in_a_variable(text: str, message: str) -> None:
    with pytest.raises(PromptError) as caught:
        load_prompt("summary", PROMPTS, {SUMMARY_VAR: _b64(text)})
    assert str(caught.value).startswith(f"{SUMMARY_VAR}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("value", ["not base64!", "abc", "Zm9v\x00"])
def test_bad_base64(value: str) -> None:
    with pytest.raises(PromptError, match=f"^{SUMMARY_VAR}: not valid base64"):
        load_prompt("summary", PROMPTS, {SUMMARY_VAR: value})


def test_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=f"^{CATALOG_VAR}: not valid UTF-8"):
        load_prompt("catalog", PROMPTS, {CATALOG_VAR: _b64(b"\xff\xfe")})
    (tmp_path / "catalog.yaml").write_bytes(b"version: 1\n\xff\n")
    with pytest.raises(PromptError, match=r"catalog\.yaml: not valid UTF-8"):
        load_prompt("catalog", tmp_path, {})


def test_agent_mismatch_in_a_file(tmp_path: Path) -> None:
    _write_prompts(tmp_path, catalog=(PROMPTS / "summary.yaml").read_text("utf-8"))
    with pytest.raises(PromptError) as caught:
        load_prompt("catalog", tmp_path, {})
    assert str(caught.value) == (
        f"{tmp_path / 'catalog.yaml'}: agent: 'summary' does not match the file catalog.yaml"
    )


def test_agent_mismatch_in_a_variable() -> None:
    env = {CATALOG_VAR: _b64((PROMPTS / "summary.yaml").read_bytes())}
    with pytest.raises(PromptError) as caught:
        load_prompt("catalog", PROMPTS, env)
    assert str(caught.value) == (
        f"{CATALOG_VAR}: agent: 'summary' does not match the variable {CATALOG_VAR}"
    )


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=r"catalog\.yaml: cannot be read"):
        load_prompt("catalog", tmp_path, {})


def test_a_misspelled_variable_is_an_error() -> None:
    """A variable names an agent of its own; the YAML meant for another one gives it away."""
    shipped = _b64((PROMPTS / "catalog.yaml").read_bytes())
    with pytest.raises(PromptError) as caught:
        load_prompts(PROMPTS, {"CATALOG_PROMPT_CATLOG_B64": shipped})
    assert str(caught.value) == (
        "CATALOG_PROMPT_CATLOG_B64: agent: 'catalog' does not match "
        "the variable CATALOG_PROMPT_CATLOG_B64"
    )


@pytest.mark.parametrize("name", ["Other", "a-b", "pipeline", "x" * 33])
def test_a_bad_agent_name(name: str) -> None:
    with pytest.raises(PromptError, match="is not an agent name"):
        load_prompt(name, PROMPTS, {})


def test_a_variable_with_a_bad_agent_name() -> None:
    with pytest.raises(PromptError, match=r"^CATALOG_PROMPT_PIPELINE_B64: 'pipeline' is not an"):
        load_prompts(PROMPTS, {"CATALOG_PROMPT_PIPELINE_B64": "eA=="})


def test_a_new_mentioned_limit_is_accepted() -> None:
    data = _shipped("catalog")
    data["limits"]["max_cells"] = 40
    data["instructions"] += "Use at most `max_cells` calls of execute_python.\n"
    prompt = load_prompt("catalog", PROMPTS, {CATALOG_VAR: _b64(_dump(data))})
    assert "- max_cells: 40" in prompt.system_prompt


# --- the command line ------------------------------------------------------------------------


def test_encode_round_trips_to_identical_prompts(tmp_path: Path) -> None:
    done = _cli("encode", "--dir", str(PROMPTS))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert list(env)[-1] == "CATALOG_PIPELINE_B64"
    assert {CATALOG_VAR, SUMMARY_VAR} <= set(env)
    from_env = load_prompts(tmp_path, env)  # an empty directory: only the variables count
    from_files = load_prompts(PROMPTS, {})
    for agent in AGENTS:
        assert from_env[agent].source == f"env:{env_var(agent)}"
        assert from_env[agent].system_prompt == from_files[agent].system_prompt
        assert from_env[agent].digest == from_files[agent].digest
        assert from_env[agent].limits == from_files[agent].limits


def test_encode_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    _write_prompts(tmp_path, summary=_mutated("summary", _delete("instructions")))
    done = _cli("encode", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == f"{tmp_path / 'summary.yaml'}: key 'instructions' is missing"


def test_encode_exits_2_on_a_missing_directory(tmp_path: Path) -> None:
    done = _cli("encode", "--dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "nowhere: no prompt files" in done.stderr


def test_check_prints_digests_and_sources_from_the_environment() -> None:
    catalog = load_prompt("catalog", PROMPTS, {})
    env = {SUMMARY_VAR: _b64((PROMPTS / "summary.yaml").read_bytes())}
    done = _cli("check", "--dir", "prompts", env=env)
    assert done.returncode == 0, done.stderr
    lines = {line.split("\t")[0]: line for line in done.stdout.splitlines()}
    assert lines["catalog"].startswith(
        f"catalog\tdigest={catalog.digest}\tsource=prompts/catalog.yaml"
    )
    assert f"source=env:{SUMMARY_VAR}" in lines["summary"]


def test_check_exits_2_on_a_bad_variable() -> None:
    done = _cli("check", env={CATALOG_VAR: "not base64!"})
    assert done.returncode == 2
    assert done.stderr.startswith(f"{CATALOG_VAR}: not valid base64")


def test_main_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "encode" in capsys.readouterr().err


def test_the_shipped_page_limits_fit_under_the_runners_ceiling() -> None:
    """The prompt's max_page_bytes is sent with every run; a runner refuses one above its own
    CATALOG_AGENT_MAX_HTML_BYTES, so the shipped prompts must fit the default."""
    from services.agent_runner.config import Settings as RunnerSettings

    ceiling = RunnerSettings().max_html_bytes
    for prompt in load_prompts(PROMPTS, {}).values():
        assert 0 < int(prompt.limits.get("max_page_bytes", 1)) <= ceiling, prompt.agent_name
