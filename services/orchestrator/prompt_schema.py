"""The schema of a prompt file, as pydantic models that refuse unknown keys (extra="forbid").

`parse_prompt(label, data, agent_name)` checks a loaded YAML mapping and returns the model, or
raises PromptError with one message that names the file or variable, the key at fault and what
to write instead: pydantic's first error, in our words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from services.orchestrator.errors import PromptError
from services.orchestrator.object_names import AGENT_NAME

SCHEMA_VERSION = 1
_LimitKind = Literal["integer", "fraction", "number"]
# The limits an agent must have, and the kinds of the ones the shipped files use. Any other
# limit is allowed as a positive number, as long as the text mentions it by name.
REQUIRED_LIMITS: Mapping[str, tuple[str, ...]] = {
    "catalog": ("max_tables", "sample_rows", "row_budget"),
    "summary": ("baseline_runs", "stale_after_runs"),
}
_INTEGER_LIMITS = (
    "max_tables",
    "sample_rows",
    "row_budget",
    "profile_sample_rows",
    "max_columns",
    "top_values",
    "query_timeout_s",
    "max_output_chars",
    "max_page_bytes",
    "stale_after_days",
    "baseline_runs",
    "max_runs_read",
    "stale_after_runs",
)
_FRACTION_LIMITS = (
    "high_null_rate",
    "null_rate_jump",
    "distinct_tolerance",
    "row_count_change",
    "rename_overlap",
)
_LIMIT_KINDS: Mapping[str, _LimitKind] = {
    **dict.fromkeys(_INTEGER_LIMITS, "integer"),
    **dict.fromkeys(_FRACTION_LIMITS, "fraction"),
}
_KIND_TEXT: Mapping[_LimitKind, str] = {
    "integer": "a positive integer",
    "fraction": "a fraction, 0 < x <= 1",
    "number": "a positive number",
}
# the json_schema_extra entry saying what a key must hold ("key 'x' must be ...")
_MUST = "must"


def _one_line(value: str) -> str:
    if "\n" in value.strip():
        raise PydanticCustomError("one_line", "must be one line")
    return value


_Text = Annotated[
    str, Field(min_length=1, pattern=r"\S", json_schema_extra={_MUST: "a non-empty string"})
]
_OneLine = Annotated[_Text, AfterValidator(_one_line)]
_Lines = Annotated[
    list[Annotated[str, Field(pattern=r"\S"), AfterValidator(_one_line)]],
    Field(min_length=1, json_schema_extra={_MUST: "a list of one-line strings"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Criteria(_Strict):
    """What the summary agent calls a good, a bad and a neutral change."""

    good: _Lines
    bad: _Lines
    neutral: _Lines | None = None


_AgentName = Annotated[str, Field(pattern=f"^{AGENT_NAME.pattern}$")]
RunWhen = Literal["succeeded", "completed", "always"]
Reads = Literal["database", "history"]


class AgentPromptModel(_Strict):
    """The keys every agent's prompt has (documented at the top of the shipped files); the
    agent's name comes in the validation context, for its required limits."""

    version: Annotated[Literal[1], Field(json_schema_extra={_MUST: str(SCHEMA_VERSION)})]
    agent: str
    description: _OneLine
    instructions: _Text
    limits: Annotated[
        dict[str, Any],
        Field(min_length=1, json_schema_extra={_MUST: "a mapping of names to numbers"}),
    ]
    html_format: _Text
    needs: Annotated[
        list[_AgentName],
        Field(json_schema_extra={_MUST: "a list of agent names, e.g. [catalog]"}),
    ] = []
    run_when: Annotated[
        RunWhen, Field(json_schema_extra={_MUST: "one of succeeded, completed, always"})
    ] = "succeeded"
    reads: Annotated[
        list[Reads],
        Field(min_length=1, json_schema_extra={_MUST: "a list of database and/or history"}),
    ] = ["database"]

    @field_validator("limits")
    @classmethod
    def _limit_values(cls, limits: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        agent = (info.context or {}).get("agent", "")
        for name in REQUIRED_LIMITS.get(agent, ()):
            if name not in limits:
                raise PydanticCustomError(
                    "missing_limit", "key 'limits.{name}' is missing", {"name": name}
                )
        for name, value in limits.items():
            kind = _LIMIT_KINDS.get(name) or ("number" if isinstance(value, float) else "integer")
            if not _fits(kind, value):
                raise PydanticCustomError(
                    "bad_limit",
                    "'limits.{name}' must be {kind}, not {value}",
                    {"name": name, "kind": _KIND_TEXT[kind], "value": repr(value)},
                )
        return limits

    @field_validator("needs", "reads")
    @classmethod
    def _no_repeats(cls, values: list[str], info: ValidationInfo) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise PydanticCustomError(
                "repeated",
                "key '{key}' names {names} more than once",
                {"key": info.field_name, "names": ", ".join(repeated)},
            )
        return values

    @model_validator(mode="after")
    def _checked(self) -> AgentPromptModel:
        """A limit the text never names has no effect: most likely a typo in its name. An
        agent that needs itself could never run."""
        text = "\n".join(self.texts())
        for name in self.limits:
            if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text):
                raise PydanticCustomError(
                    "unmentioned_limit",
                    "'limits.{name}' is not mentioned in instructions, html_format or criteria: "
                    "refer to it there by name, or remove it",
                    {"name": name},
                )
        if self.agent in self.needs:
            raise PydanticCustomError(
                "needs_itself",
                "key 'needs': an agent cannot need itself ({agent})",
                {"agent": self.agent},
            )
        return self

    def texts(self) -> list[str]:
        return [self.instructions, self.html_format]

    def criteria_lines(self) -> dict[str, tuple[str, ...]]:
        return {}


class CatalogPrompt(AgentPromptModel):
    """prompts/catalog.yaml: the common keys."""


class CriteriaPrompt(AgentPromptModel):
    """An agent that judges changes may say how in `criteria` (optional)."""

    criteria: Annotated[
        Criteria | None, Field(json_schema_extra={_MUST: "a mapping of good, bad and neutral"})
    ] = None

    def texts(self) -> list[str]:
        return [
            *super().texts(),
            *(line for lines in self.criteria_lines().values() for line in lines),
        ]

    def criteria_lines(self) -> dict[str, tuple[str, ...]]:
        if self.criteria is None:
            return {}
        named = self.criteria.model_dump(exclude_none=True)
        return {key: tuple(line.strip() for line in lines) for key, lines in named.items()}


class SummaryPrompt(CriteriaPrompt):
    """prompts/summary.yaml: `criteria` required; a file from before pipelines (no `needs`,
    `reads`) keeps meaning what it meant: after the catalog, over the history."""

    criteria: Annotated[
        Criteria, Field(json_schema_extra={_MUST: "a mapping of good, bad and neutral"})
    ]
    needs: Annotated[
        list[_AgentName],
        Field(json_schema_extra={_MUST: "a list of agent names, e.g. [catalog]"}),
    ] = ["catalog"]
    reads: Annotated[
        list[Reads],
        Field(min_length=1, json_schema_extra={_MUST: "a list of database and/or history"}),
    ] = ["history"]


# The shipped agents whose files have a model of their own; any other agent: CriteriaPrompt.
MODELS: Mapping[str, type[AgentPromptModel]] = {"catalog": CatalogPrompt, "summary": SummaryPrompt}


def _fits(kind: _LimitKind, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not (math.isfinite(value) and value > 0):
        return False
    if kind == "integer":
        return isinstance(value, int)
    return value <= 1 if kind == "fraction" else True


def parse_prompt(label: str, data: Mapping[str, Any], agent_name: str) -> AgentPromptModel:
    """The checked prompt, or PromptError naming `label`, the key and the fix."""
    model = MODELS.get(agent_name, CriteriaPrompt)
    try:
        return model.model_validate(data, context={"agent": agent_name})
    except ValidationError as exc:
        raise PromptError(f"{label}: {_explain(model, exc.errors()[0], data)}") from None


def _explain(model: type[BaseModel], error: ErrorDetails, data: Mapping[str, Any]) -> str:
    path = [str(part) for part in error["loc"] if not isinstance(part, int)]
    key = ".".join(path)
    kind = error["type"]
    if kind in ("missing_limit", "bad_limit", "unmentioned_limit", "repeated", "needs_itself"):
        return error["msg"]
    if kind == "missing":
        return f"key {key!r} is missing"
    owner = _model_at(model, path[:-1])
    if kind == "extra_forbidden":
        return f"unknown key {key!r} (the keys are {', '.join(owner.model_fields)})"
    if kind == "one_line" and path == ["description"]:
        return "key 'description' must be one line"
    must = _must(owner, path[-1]) if path else "a YAML mapping of keys"
    hint = ""
    if isinstance(error.get("input"), dict) and path[:1] == ["criteria"] and len(path) > 1:
        hint = " (an item holding ': ' is read as a mapping: quote it)"
    shown = f", not {error['input']!r}" if path == ["version"] else ""
    return f"key {key!r} must be {must}{shown}{hint}"


def _model_at(model: type[BaseModel], path: list[str]) -> type[BaseModel]:
    for part in path:
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return model


def _must(model: type[BaseModel], name: str) -> str:
    field = model.model_fields.get(name)
    extra = field.json_schema_extra if field is not None else None
    return str(extra.get(_MUST, "valid")) if isinstance(extra, dict) else "valid"
