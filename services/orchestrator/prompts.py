"""The agents' system prompts: YAML files in `prompts/`, loaded by name and checked at start-up.

Each agent (`catalog`, `summary`) has `prompts/<agent>.yaml`; the environment variable
`CATALOG_PROMPT_<AGENT>_B64`, holding that YAML base64-encoded, replaces the file when set
(an empty value counts as unset). The schema is documented at the top of each shipped file:
`version`, `agent`, `description`, `instructions`, `limits`, `html_format`, and `criteria` for
the summary agent. Unknown keys, duplicate keys and limits the text never mentions are errors,
so a typo fails at start-up instead of being silently ignored.

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
from services.orchestrator.prompt_schema import parse_prompt

AGENTS = ("catalog", "summary")
DIGEST_CHARS = 12
_ENV_PREFIX, _ENV_SUFFIX = "CATALOG_PROMPT_", "_B64"
Limits = Mapping[str, int | float]


@dataclass(frozen=True)
class AgentPrompt:
    agent_name: str  # "catalog" or "summary"
    system_prompt: str  # the rendered text the model gets as `system`
    source: str  # the file's path, or "env:CATALOG_PROMPT_<AGENT>_B64"
    digest: str  # the first 12 hex digits of the system prompt's sha256
    # The limits as written (read only), for code that enforces them too (e.g. max_tables).
    limits: Limits = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class _Origin:
    label: str  # what error messages start with: the path or the variable's name
    source: str  # AgentPrompt.source
    expected: str  # what the `agent` key must match, for its error message


def env_var(agent_name: str) -> str:
    """The variable that overrides an agent's file: CATALOG_PROMPT_CATALOG_B64 and so on."""
    return f"{_ENV_PREFIX}{agent_name.upper()}{_ENV_SUFFIX}"


def load_prompt(agent_name: str, directory: Path, env: Mapping[str, str]) -> AgentPrompt:
    """The agent's prompt from its environment variable if set, else from its file."""
    if agent_name not in AGENTS:
        raise PromptError(f"unknown agent {agent_name!r}: expected one of {', '.join(AGENTS)}")
    var = env_var(agent_name)
    encoded = env.get(var, "")
    if encoded.strip():
        origin = _Origin(var, f"env:{var}", f"the variable {var}")
        return _from_text(agent_name, _decode(var, encoded), origin)
    path = directory / f"{agent_name}.yaml"
    return _from_text(agent_name, _read(path), _file_origin(path))


def load_prompts(directory: Path, env: Mapping[str, str]) -> dict[str, AgentPrompt]:
    """Every agent's prompt; raises PromptError for the first bad one or a misspelled variable."""
    _check_env_names(env)
    return {agent: load_prompt(agent, directory, env) for agent in AGENTS}


def _check_env_names(env: Mapping[str, str]) -> None:
    known = {env_var(agent) for agent in AGENTS}
    for name in sorted(env):
        if name.startswith(_ENV_PREFIX) and name.endswith(_ENV_SUFFIX) and name not in known:
            raise PromptError(
                f"{name}: there is no such agent; the variables are {', '.join(sorted(known))}"
            )


def _file_origin(path: Path) -> _Origin:
    return _Origin(str(path), str(path), f"the file {path.name}")


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PromptError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return _utf8(str(path), raw)


def _decode(var: str, encoded: str) -> str:
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


def _parse(label: str, text: str) -> dict[str, Any]:
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
    data = _parse(label, text)
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
    """`CATALOG_PROMPT_<AGENT>_B64=...` for each agent's file, after checking every file."""
    lines = []
    for agent in AGENTS:
        path = directory / f"{agent}.yaml"
        text = _read(path)
        _from_text(agent, text, _file_origin(path))
        lines.append(f"{env_var(agent)}={base64.b64encode(text.encode('utf-8')).decode('ascii')}")
    return lines


def check_lines(directory: Path, env: Mapping[str, str]) -> list[str]:
    """One line per agent: what this environment would load, and its digest."""
    prompts = load_prompts(directory, env)
    return [
        f"{p.agent_name}\tdigest={p.digest}\tsource={p.source}\tchars={len(p.system_prompt)}"
        for p in prompts.values()
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
