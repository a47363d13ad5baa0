"""The pipeline as data: the shipped file, the checks at start-up, the order and run_when."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from services.orchestrator.errors import PromptError
from services.orchestrator.pipeline import FAILED, SKIPPED, SUCCEEDED, load_pipeline

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"


def agent_yaml(name: str, needs: tuple[str, ...] = (), run_when: str = "", reads: str = "") -> str:
    lines = [
        "version: 1",
        f"agent: {name}",
        f"description: The {name} agent of a test.",
        "instructions: Write one page; at most `max_page_bytes` bytes.",
        "limits: {max_page_bytes: 100000}",
        "html_format: One page.",
        f"needs: [{', '.join(needs)}]",
    ]
    lines += [f"run_when: {run_when}"] if run_when else []
    lines += [f"reads: [{reads}]"] if reads else []
    return "\n".join(lines) + "\n"


def write(directory: Path, pipeline: list[str], **agents: str) -> Path:
    for name, text in agents.items():
        (directory / f"{name}.yaml").write_text(text)
    (directory / "pipeline.yaml").write_text(f"version: 1\nagents: [{', '.join(pipeline)}]\n")
    return directory


def test_the_shipped_pipeline_runs_the_catalog_then_the_summary() -> None:
    pipeline = load_pipeline(PROMPTS, {})
    assert pipeline.agents[0] == "catalog" and pipeline.agents[-1] == "summary"
    assert pipeline.plan() == pipeline.agents
    assert pipeline.plan(["summary"]) == ("catalog", "summary")  # its need comes along
    summary = pipeline.prompts["summary"]
    assert (summary.needs, summary.run_when, summary.reads) == (
        ("catalog",),
        "completed",
        ("history",),
    )
    assert pipeline.prompts["catalog"].reads == ("database",)


def test_the_order_follows_the_needs_and_breaks_ties_by_preference(tmp_path: Path) -> None:
    write(
        tmp_path,
        ["d", "c", "b", "a"],
        a=agent_yaml("a"),
        b=agent_yaml("b", ("a",)),
        c=agent_yaml("c", ("a",)),
        d=agent_yaml("d", ("b", "c")),
        e=agent_yaml("e", ("a",)),
    )
    pipeline = load_pipeline(tmp_path, {})
    # a first (all need it); then c before b, as the pipeline prefers c; d last.
    assert pipeline.plan() == ("a", "c", "b", "d")
    # e is not in the pipeline: requested, it runs after the listed agents it could tie with.
    assert pipeline.plan(["e", "b"]) == ("a", "b", "e")
    assert pipeline.unknown(["a", "zz", "e", "y"]) == ["zz", "y"]


def test_run_when_decides_from_the_needs_outcomes(tmp_path: Path) -> None:
    write(
        tmp_path,
        ["a"],
        a=agent_yaml("a"),
        s=agent_yaml("s", ("a",)),
        c=agent_yaml("c", ("a",), "completed"),
        w=agent_yaml("w", ("a",), "always"),
    )
    pipeline = load_pipeline(tmp_path, {})
    ok, failed, skipped = {"a": SUCCEEDED}, {"a": FAILED}, {"a": SKIPPED}
    assert [pipeline.blocked(n, ok) for n in "scw"] == [None, None, None]
    blocked = pipeline.blocked("s", failed)
    assert blocked is not None and blocked.need == "a"
    assert blocked.reason("s") == "s needs a, which failed (run_when: succeeded)"
    assert pipeline.blocked("c", failed) is None
    blocked = pipeline.blocked("c", skipped)
    assert blocked is not None and "which was skipped (run_when: completed)" in blocked.reason("c")
    assert pipeline.blocked("w", skipped) is None


def test_a_pipeline_agent_without_a_prompt_names_the_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, ["a", "ghost"], a=agent_yaml("a"))
    with pytest.raises(PromptError) as caught:
        load_pipeline(tmp_path, {})
    assert str(caught.value) == (
        f"{tmp_path / 'pipeline.yaml'}: key 'agents': 'ghost' has no prompt "
        "(write prompts/ghost.yaml or set CATALOG_PROMPT_GHOST_B64)"
    )


def test_a_need_without_a_prompt_names_the_agents_file(tmp_path: Path) -> None:
    write(tmp_path, ["a"], a=agent_yaml("a", ("nobody",)))
    with pytest.raises(PromptError) as caught:
        load_pipeline(tmp_path, {})
    assert str(caught.value).startswith(f"{tmp_path / 'a.yaml'}: key 'needs': 'nobody' has no")


def test_a_cycle_is_refused_naming_the_agents(tmp_path: Path) -> None:
    write(
        tmp_path,
        ["a"],
        a=agent_yaml("a", ("c",)),
        b=agent_yaml("b", ("a",)),
        c=agent_yaml("c", ("b",)),
        d=agent_yaml("d", ("a",)),
    )
    with pytest.raises(PromptError) as caught:
        load_pipeline(tmp_path, {})
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'a.yaml'}: key 'needs': ")
    assert "(a -> c -> b -> a)" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nagents: []\n", "key 'agents' must be a non-empty list of agent names"),
        ("version: 1\nagents: [a, a]\n", "key 'agents' names a more than once"),
        ("version: 2\nagents: [a]\n", "key 'version' must be 1, not 2"),
        ("version: 1\nagent: [a]\n", "unknown key 'agent'"),
        ("version: 1\n", "key 'agents' is missing"),
    ],
)
def test_a_bad_pipeline_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, ["a"], a=agent_yaml("a"))
    (tmp_path / "pipeline.yaml").write_text(text)
    with pytest.raises(PromptError) as caught:
        load_pipeline(tmp_path, {})
    assert str(caught.value).startswith(f"{tmp_path / 'pipeline.yaml'}: {message}")


def test_variables_add_an_agent_and_replace_the_pipeline(tmp_path: Path) -> None:
    """A test-only agent needs no file: its variable is enough, and so is the pipeline's."""
    write(tmp_path, ["a"], a=agent_yaml("a"))
    env = {
        "CATALOG_PROMPT_PROBE_B64": base64.b64encode(agent_yaml("probe", ("a",)).encode()).decode(),
        "CATALOG_PIPELINE_B64": base64.b64encode(b"version: 1\nagents: [probe]\n").decode(),
    }
    pipeline = load_pipeline(tmp_path, env)
    assert pipeline.source == "env:CATALOG_PIPELINE_B64"
    assert pipeline.prompts["probe"].source == "env:CATALOG_PROMPT_PROBE_B64"
    assert pipeline.plan() == ("a", "probe")
