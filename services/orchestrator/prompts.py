"""The agents' system prompts: YAML files in `prompts/`, loaded by name and checked at start-up.

Every agent has `prompts/<agent>.yaml` (each YAML file there but pipeline.yaml is an agent);
the environment variable `CATALOG_PROMPT_<AGENT>_B64`, holding that YAML base64-encoded,
replaces the file when set (an empty value counts as unset), or adds the agent when there is
no file. The schema is documented at the top of each shipped file: `version`, `agent`,
`description`, `instructions`, `limits`, `html_format`, the pipeline keys `needs`, `run_when`
and `reads`, and `criteria` (required for the summary agent). Unknown keys, duplicate keys and
limits the text never mentions are errors, so a typo fails at start-up instead of being
silently ignored. How the agents form a pipeline is pipeline.py's business.

The system prompt is rendered deterministically from the file (instructions, limits, HTML
format, criteria); its digest is recorded with each run so a page can be traced to its prompt.

`python -m services.orchestrator.prompts encode [--dir prompts]` prints the environment lines
that deploy the files; `... check [--dir prompts]` prints what this environment would load.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import os
import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from services.orchestrator.errors import PromptError
from services.orchestrator.object_names import AGENT_NAME, AGENT_NAME_RULE
from services.orchestrator.prompt_schema import parse_prompt

PIPELINE_STEM = "pipeline"  # prompts/pipeline.yaml is the pipeline, not an agent
DIGEST_CHARS = 12
_ENV_PREFIX, _ENV_SUFFIX = "CATALOG_PROMPT_", "_B64"
Limits = Mapping[str, int | float]


@dataclass(frozen=True)
class AgentPrompt:
    agent_name: str  # "catalog", "summary", ...
    system_prompt: str  # the rendered text the model gets as `system`
    source: str  # the file's path, or "env:CATALOG_PROMPT_<AGENT>_B64"
    digest: str  # the first 12 hex digits of the system prompt's sha256
    # The limits as written (read only), for code that enforces them too (e.g. max_tables).
    limits: Limits = field(default_factory=lambda: MappingProxyType({}), hash=False)
    needs: tuple[str, ...] = ()  # agents that run first (pipeline.py)
    run_when: str = "succeeded"  # succeeded | completed | always: what the needs must have done
    reads: tuple[str, ...] = ("database",)  # database and/or history: what the agent is given


@dataclass(frozen=True)
class _Origin:
    label: str  # what error messages start with: the path or the variable's name
    source: str  # AgentPrompt.source
    expected: str  # what the `agent` key must match, for its error message


def env_var(agent_name: str) -> str:
    """The variable that overrides an agent's file: CATALOG_PROMPT_CATALOG_B64 and so on."""
    return f"{_ENV_PREFIX}{agent_name.upper()}{_ENV_SUFFIX}"


def agent_names(directory: Path, env: Mapping[str, str]) -> list[str]:
    """Every agent with a file in `directory` or a variable set, sorted."""
    _check_env_names(env)
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    named = {path.stem for path in files if path.stem != PIPELINE_STEM}
    for name in named:
        if not AGENT_NAME.fullmatch(name):
            raise PromptError(
                f"{directory / name}.yaml: {name!r} is not an agent name: {AGENT_NAME_RULE}; "
                "rename the file"
            )
    from_env = {_agent_of(var) for var, value in env.items() if _agent_of(var) and value.strip()}
    return sorted(named | from_env)


def _agent_of(var: str) -> str:
    """The agent a CATALOG_PROMPT_<AGENT>_B64 variable names, or "" for another variable."""
    if var.startswith(_ENV_PREFIX) and var.endswith(_ENV_SUFFIX):
        return var[len(_ENV_PREFIX) : -len(_ENV_SUFFIX)].lower()
    return ""


def load_prompt(agent_name: str, directory: Path, env: Mapping[str, str]) -> AgentPrompt:
    """The agent's prompt from its environment variable if set, else from its file."""
    if not AGENT_NAME.fullmatch(agent_name) or agent_name == PIPELINE_STEM:
        raise PromptError(f"{agent_name[:40]!r} is not an agent name: {AGENT_NAME_RULE}")
    var = env_var(agent_name)
    encoded = env.get(var, "")
    if encoded.strip():
        origin = _Origin(var, f"env:{var}", f"the variable {var}")
        return _from_text(agent_name, decode_var(var, encoded), origin)
    path = directory / f"{agent_name}.yaml"
    return _from_text(agent_name, read_file(path), _file_origin(path))


def load_prompts(directory: Path, env: Mapping[str, str]) -> dict[str, AgentPrompt]:
    """Every agent's prompt; raises PromptError for the first bad one or a bad variable name.
    (A misspelled variable names an agent whose YAML says another: that is an error too.)"""
    names = agent_names(directory, env)
    if not names:
        raise PromptError(
            f"{directory}: no prompt files (<agent>.yaml) and no {_ENV_PREFIX}<AGENT>"
            f"{_ENV_SUFFIX} variables; point CATALOG_PROMPTS_DIR at the prompts"
        )
    return {agent: load_prompt(agent, directory, env) for agent in names}


def _check_env_names(env: Mapping[str, str]) -> None:
    for name in sorted(env):
        agent = _agent_of(name)
        if agent and (not AGENT_NAME.fullmatch(agent) or agent == PIPELINE_STEM):
            raise PromptError(
                f"{name}: {agent!r} is not an agent name ({AGENT_NAME_RULE}); the pipeline's "
                "own variable is CATALOG_PIPELINE_B64"
            )


def _file_origin(path: Path) -> _Origin:
    return _Origin(str(path), str(path), f"the file {path.name}")


def read_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PromptError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return _utf8(str(path), raw)


def decode_var(var: str, encoded: str) -> str:
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PromptError(f"{var}: not valid base64 ({exc})") from exc
    return _utf8(var, raw)


def _utf8(label: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"{label}: not valid UTF-8 (byte {exc.start})") from exc


# --- parsing and checking ------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark
                )
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(label: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise PromptError(f"{label}: not valid YAML ({where}: {exc.problem})") from exc
    except yaml.YAMLError as exc:
        raise PromptError(f"{label}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise PromptError(f"{label}: must be a YAML mapping of keys, not {type(data).__name__}")
    return data


def _from_text(agent_name: str, text: str, origin: _Origin) -> AgentPrompt:
    label = origin.label
    data = parse_yaml(label, text)
    if "agent" in data and data["agent"] != agent_name:  # first: the wrong file altogether
        raise PromptError(f"{label}: agent: {data['agent']!r} does not match {origin.expected}")
    prompt = parse_prompt(label, data, agent_name)
    limits = dict(prompt.limits)
    criteria = prompt.criteria_lines()
    system_prompt = _render(prompt.instructions, limits, prompt.html_format, criteria)
    return AgentPrompt(
        agent_name=agent_name,
        system_prompt=system_prompt,
        source=origin.source,
        digest=hashlib.sha256(system_prompt.encode("utf-8")).hexdigest()[:DIGEST_CHARS],
        limits=MappingProxyType(limits),
        needs=tuple(prompt.needs),
        run_when=prompt.run_when,
        reads=tuple(prompt.reads),
    )


# --- rendering -----------------------------------------------------------------------------


def _render(
    instructions: str,
    limits: Limits,
    html_format: str,
    criteria: Mapping[str, Sequence[str]],
) -> str:
    """The system prompt: the sections in a fixed order, each stripped, then one newline."""
    sections = [instructions, _limits_section(limits), "# HTML format\n\n" + html_format.strip()]
    if criteria:
        sections.append(_criteria_section(criteria))
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _limits_section(limits: Limits) -> str:
    return "# Limits\n\n" + "\n".join(f"- {name}: {value!r}" for name, value in limits.items())


def _criteria_section(criteria: Mapping[str, Sequence[str]]) -> str:
    parts = ["# Criteria"]
    for key, lines in criteria.items():
        parts.append(f"## {key.capitalize()}\n" + "\n".join(f"- {line}" for line in lines))
    return "\n\n".join(parts)


# --- the command line ----------------------------------------------------------------------


def encode_lines(directory: Path) -> list[str]:
    """`CATALOG_PROMPT_<AGENT>_B64=...` for each agent's file and `CATALOG_PIPELINE_B64=...`
    for the pipeline, after checking them all together."""
    from services.orchestrator.pipeline import PIPELINE_VAR, load_pipeline  # it imports us

    load_pipeline(directory, {})
    lines = []
    for agent in agent_names(directory, {}):
        text = read_file(directory / f"{agent}.yaml")
        lines.append(f"{env_var(agent)}={base64.b64encode(text.encode('utf-8')).decode('ascii')}")
    text = read_file(directory / f"{PIPELINE_STEM}.yaml")
    lines.append(f"{PIPELINE_VAR}={base64.b64encode(text.encode('utf-8')).decode('ascii')}")
    return lines


def check_lines(directory: Path, env: Mapping[str, str]) -> list[str]:
    """One line per agent: what this environment would load, and its digest; then the
    pipeline's default agents in order."""
    from services.orchestrator.pipeline import load_pipeline  # it imports us

    pipeline = load_pipeline(directory, env)
    return [
        *(
            f"{p.agent_name}\tdigest={p.digest}\tsource={p.source}\tchars={len(p.system_prompt)}"
            for p in pipeline.prompts.values()
        ),
        f"pipeline\tagents={','.join(pipeline.agents)}\tsource={pipeline.source}",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.orchestrator.prompts",
        description="Check the agents' prompts, or encode them for the environment.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("encode", "check the files and print the CATALOG_PROMPT_*_B64 lines that deploy them"),
        ("check", "print each agent's digest and source, environment overrides included"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--dir", type=Path, default=Path("prompts"), help="the prompts")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "encode":
            lines = encode_lines(args.dir)
        else:
            lines = check_lines(args.dir, os.environ)
    except PromptError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
