"""The pipeline: which agents a run has, in which order, and which may run after which.

`prompts/pipeline.yaml` lists the default agents in order of preference::

    version: 1
    agents: [catalog, summary]

(`CATALOG_PIPELINE_B64`, that YAML base64-encoded, replaces the file.) Each agent's prompt may
say what it `needs` (agents that run first) and `run_when` (what they must have done). At
start-up `load_pipeline` checks it all: every agent listed has a prompt, every `needs` names an
agent with a prompt, and no `needs` go round in a cycle; each message names the file or
variable and the key.

`Pipeline.plan(requested)` is a run's agents: the requested ones (or the defaults) with
everything they need, transitively, in a dependency order with ties broken by preference (the
pipeline's order, then agents it does not list, by name). `may_run` says whether an agent's
needs' outcomes let it run. Neither names an agent: the order is all data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.orchestrator.errors import PromptError
from services.orchestrator.object_names import AGENT_NAME
from services.orchestrator.prompts import (
    PIPELINE_STEM,
    AgentPrompt,
    decode_var,
    env_var,
    load_prompts,
    parse_yaml,
    read_file,
)

PIPELINE_VAR = "CATALOG_PIPELINE_B64"
# How an agent of a run ended, as the workflow records it (run_state.AgentStatus's names).
SUCCEEDED, FAILED, SKIPPED = "SUCCEEDED", "FAILED", "SKIPPED"


class _PipelineFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1]
    agents: Annotated[
        list[Annotated[str, Field(pattern=f"^{AGENT_NAME.pattern}$")]], Field(min_length=1)
    ]


@dataclass(frozen=True)
class Blocked:
    """Why an agent may not run: the need at fault and what happened to it."""

    need: str
    outcome: str  # SUCCEEDED, FAILED or SKIPPED (what the need did)
    run_when: str

    def reason(self, agent: str) -> str:
        did = {FAILED: "failed", SKIPPED: "was skipped"}.get(self.outcome, "did not run")
        return f"{agent} needs {self.need}, which {did} (run_when: {self.run_when})"


@dataclass(frozen=True)
class Pipeline:
    agents: tuple[str, ...]  # the default agents, in order of preference
    prompts: Mapping[str, AgentPrompt] = field(repr=False)  # every agent with a prompt
    source: str = ""  # the pipeline file's path, or env:CATALOG_PIPELINE_B64

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names that are not agents (no prompt), in the order given."""
        return [name for name in names if name not in self.prompts]

    def plan(self, requested: Sequence[str] = ()) -> tuple[str, ...]:
        """The run's agents in the order they run: `requested` (the defaults if empty) and
        everything they need. Every name must be known (see `unknown`)."""
        wanted: set[str] = set()
        pending = list(requested or self.agents)
        while pending:
            name = pending.pop()
            if name not in wanted:
                wanted.add(name)
                pending.extend(self.prompts[name].needs)
        return tuple(_ordered(wanted, self.prompts, self._rank))

    def _rank(self, name: str) -> tuple[int, str]:
        listed = self.agents.index(name) if name in self.agents else len(self.agents)
        return listed, name

    def blocked(self, agent: str, outcomes: Mapping[str, str]) -> Blocked | None:
        """Why `agent` may not run given its needs' outcomes so far, or None if it may:
        succeeded wants every need SUCCEEDED, completed every need run (not SKIPPED), always
        nothing."""
        prompt = self.prompts[agent]
        for need in prompt.needs:
            outcome = outcomes.get(need, SKIPPED)
            if prompt.run_when == "succeeded" and outcome != SUCCEEDED:
                return Blocked(need, outcome, prompt.run_when)
            if prompt.run_when == "completed" and outcome == SKIPPED:
                return Blocked(need, outcome, prompt.run_when)
        return None


def _ordered(
    wanted: set[str], prompts: Mapping[str, AgentPrompt], rank: Callable[[str], tuple[int, str]]
) -> list[str]:
    """Kahn's algorithm, always taking the ready agent that ranks first."""
    order: list[str] = []
    left = set(wanted)
    while left:
        ready = [a for a in left if not set(prompts[a].needs) & left]
        chosen = min(ready, key=rank)
        order.append(chosen)
        left.remove(chosen)
    return order


def load_pipeline(directory: Path, env: Mapping[str, str]) -> Pipeline:
    """Every prompt and the pipeline, checked together; PromptError names the file and key."""
    prompts = load_prompts(directory, env)
    label, source, text = _pipeline_text(directory, env)
    data = parse_yaml(label, text)
    try:
        parsed = _PipelineFile.model_validate(data)
    except ValidationError as exc:
        raise PromptError(f"{label}: {_explain(exc)}") from None
    _check_agents(label, parsed.agents, prompts)
    for prompt in prompts.values():
        _check_needs(prompt, prompts)
    _check_cycles(prompts)
    return Pipeline(tuple(parsed.agents), MappingProxyType(dict(prompts)), source)


def _pipeline_text(directory: Path, env: Mapping[str, str]) -> tuple[str, str, str]:
    encoded = env.get(PIPELINE_VAR, "")
    if encoded.strip():
        return PIPELINE_VAR, f"env:{PIPELINE_VAR}", decode_var(PIPELINE_VAR, encoded)
    path = directory / f"{PIPELINE_STEM}.yaml"
    return str(path), str(path), read_file(path)


def _explain(exc: ValidationError) -> str:
    errors = exc.errors()  # an unknown key first: it often explains a missing one
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) or "the file"
    if error["type"] == "missing":
        return f"key {key!r} is missing"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r} (the keys are version, agents)"
    if key == "version":
        return f"key 'version' must be 1, not {error['input']!r}"
    if key == "agents":
        return "key 'agents' must be a non-empty list of agent names, e.g. [catalog, summary]"
    return f"must be a YAML mapping of version and agents ({error['msg']})"


def _no_prompt(name: str) -> str:
    return f"{name!r} has no prompt (write prompts/{name}.yaml or set {env_var(name)})"


def _check_agents(label: str, agents: list[str], prompts: Mapping[str, AgentPrompt]) -> None:
    repeated = sorted({a for a in agents if agents.count(a) > 1})
    if repeated:
        raise PromptError(f"{label}: key 'agents' names {', '.join(repeated)} more than once")
    for name in agents:
        if name not in prompts:
            raise PromptError(f"{label}: key 'agents': {_no_prompt(name)}")


def _check_needs(prompt: AgentPrompt, prompts: Mapping[str, AgentPrompt]) -> None:
    for need in prompt.needs:
        if need not in prompts:
            raise PromptError(f"{_label(prompt)}: key 'needs': {_no_prompt(need)}")


def _check_cycles(prompts: Mapping[str, AgentPrompt]) -> None:
    """Depth-first search; a need met again on the current path closes a cycle."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            first = prompts[cycle[0]]
            raise PromptError(
                f"{_label(first)}: key 'needs': the agents need each other in a cycle "
                f"({' -> '.join(cycle)}); remove one of these needs"
            )
        if name in done:
            return
        for need in prompts[name].needs:
            visit(need, [*path, name])
        done.add(name)

    for name in sorted(prompts):
        visit(name, [])


def _label(prompt: AgentPrompt) -> str:
    return prompt.source.removeprefix("env:")
