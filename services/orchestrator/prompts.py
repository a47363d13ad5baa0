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
import math
import os
import re
import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from services.orchestrator.errors import PromptError

AGENTS = ("catalog", "summary")
SCHEMA_VERSION = 1
DIGEST_CHARS = 12
_ENV_PREFIX, _ENV_SUFFIX = "CATALOG_PROMPT_", "_B64"
_COMMON_KEYS = ("version", "agent", "description", "instructions", "limits", "html_format")
_KEYS: Mapping[str, tuple[str, ...]] = {
    "catalog": _COMMON_KEYS,
    "summary": (*_COMMON_KEYS, "criteria"),
}
_CRITERIA_KEYS = ("good", "bad", "neutral")
_REQUIRED_CRITERIA = ("good", "bad")

_LimitKind = Literal["integer", "fraction", "number"]
# The limits an agent must have, and the kinds of the ones the shipped files use. Any other
# limit is allowed as a positive number, as long as the text mentions it by name.
_REQUIRED_LIMITS: Mapping[str, tuple[str, ...]] = {
    "catalog": ("max_tables", "sample_rows", "row_budget"),
    "summary": ("baseline_runs", "stale_after_runs"),
}
_LIMIT_KINDS: Mapping[str, _LimitKind] = {
    "max_tables": "integer",
    "sample_rows": "integer",
    "row_budget": "integer",
    "profile_sample_rows": "integer",
    "max_columns": "integer",
    "top_values": "integer",
    "query_timeout_s": "integer",
    "max_output_chars": "integer",
    "max_page_bytes": "integer",
    "stale_after_days": "integer",
    "baseline_runs": "integer",
    "max_runs_read": "integer",
    "stale_after_runs": "integer",
    "high_null_rate": "fraction",
    "null_rate_jump": "fraction",
    "distinct_tolerance": "fraction",
    "row_count_change": "fraction",
    "rename_overlap": "fraction",
}
_KIND_TEXT: Mapping[_LimitKind, str] = {
    "integer": "a positive integer",
    "fraction": "a fraction, 0 < x <= 1",
    "number": "a positive number",
}

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
    _check_keys(label, data, _KEYS[agent_name])
    _check_header(label, data)
    texts = [_text(label, data, "instructions"), _text(label, data, "html_format")]
    criteria = _criteria(label, data["criteria"]) if "criteria" in data else {}
    texts += [line for lines in criteria.values() for line in lines]
    limits = _limits(label, data["limits"], agent_name)
    _check_mentioned(label, limits, "\n".join(texts))
    system_prompt = _render(data["instructions"], limits, data["html_format"], criteria)
    return AgentPrompt(
        agent_name=agent_name,
        system_prompt=system_prompt,
        source=origin.source,
        digest=hashlib.sha256(system_prompt.encode("utf-8")).hexdigest()[:DIGEST_CHARS],
        limits=MappingProxyType(limits),
    )


def _check_keys(label: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            raise PromptError(f"{label}: unknown key {key!r} (the keys are {', '.join(allowed)})")
    for key in allowed:
        if key not in data:
            raise PromptError(f"{label}: key {key!r} is missing")


def _check_header(label: str, data: Mapping[str, Any]) -> None:
    version = data["version"]
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise PromptError(f"{label}: key 'version' must be {SCHEMA_VERSION}, not {version!r}")
    description = _text(label, data, "description")
    if "\n" in description.strip():
        raise PromptError(f"{label}: key 'description' must be one line")


def _text(label: str, data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise PromptError(f"{label}: key {key!r} must be a non-empty string")
    return value


def _limits(label: str, value: Any, agent_name: str) -> dict[str, int | float]:
    if not isinstance(value, dict) or not value:
        raise PromptError(f"{label}: key 'limits' must be a mapping of names to numbers")
    for name in _REQUIRED_LIMITS[agent_name]:
        if name not in value:
            raise PromptError(f"{label}: key 'limits.{name}' is missing")
    return {str(name): _limit(label, str(name), number) for name, number in value.items()}


def _limit(label: str, name: str, value: Any) -> int | float:
    kind = _LIMIT_KINDS.get(name) or ("number" if isinstance(value, float) else "integer")
    if isinstance(value, int | float) and not isinstance(value, bool) and _fits(kind, value):
        return value
    raise PromptError(f"{label}: 'limits.{name}' must be {_KIND_TEXT[kind]}, not {value!r}")


def _fits(kind: _LimitKind, value: float) -> bool:
    if not (math.isfinite(value) and value > 0):
        return False
    if kind == "integer":
        return isinstance(value, int)
    return value <= 1 if kind == "fraction" else True


def _criteria(label: str, value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise PromptError(f"{label}: key 'criteria' must be a mapping of good, bad and neutral")
    for key in value:
        if key not in _CRITERIA_KEYS:
            raise PromptError(
                f"{label}: unknown key 'criteria.{key}' (the keys are {', '.join(_CRITERIA_KEYS)})"
            )
    criteria: dict[str, tuple[str, ...]] = {}
    for key in _CRITERIA_KEYS:
        if key in value:
            criteria[key] = _lines(label, f"criteria.{key}", value[key])
        elif key in _REQUIRED_CRITERIA:
            raise PromptError(f"{label}: key 'criteria.{key}' is missing")
    return criteria


def _lines(label: str, key: str, value: Any) -> tuple[str, ...]:
    fine = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    if not fine or any(not v.strip() or "\n" in v.strip() for v in value):
        hint = ""
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            hint = " (an item holding ': ' is read as a mapping: quote it)"
        raise PromptError(f"{label}: key {key!r} must be a list of one-line strings{hint}")
    return tuple(v.strip() for v in value)


def _check_mentioned(label: str, limits: Limits, text: str) -> None:
    """A limit the text never names has no effect: most likely a typo in its name."""
    for name in limits:
        if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text):
            raise PromptError(
                f"{label}: 'limits.{name}' is not mentioned in instructions, html_format or "
                "criteria: refer to it there by name, or remove it"
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
