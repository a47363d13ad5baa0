"""The built-in offline agent: a fixed policy that drives the same tools, without a model.

It runs when no API key is configured, so the demo and the tests work offline. The catalog agent
profiles each table in one aggregate query inside the sandbox; the summary agent lists the
earlier runs under the prefix. Its pages say they were written without a language model; it is
no stand-in for Claude in anything said about catalog quality.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from services.agent_runner.budget import Spending, Usage
from services.agent_runner.html import sanitize
from services.agent_runner.loop import (
    AgentOutcome,
    AgentRequest,
    CodeRunner,
    Emit,
    StopReason,
    ToolAnswered,
    ToolCalled,
    TurnStarted,
)
from services.agent_runner.tools import EXECUTE_PYTHON, SUBMIT_HTML

MARKER = "OFFLINE_AGENT_JSON "
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")

# Runs in the sandbox: one aggregate pass over the table (rows, nulls, distinct, min, max).
PROFILE_CELL = """
import json
name = {name!r}
database, _, table_name = name.rpartition(".")
t = con.table(table_name, database=database) if database else con.table(table_name)
schema = t.schema()
aggs = {{"__rows": t.count()}}
for column, dtype in schema.items():
    c = t[column]
    aggs[f"{{column}}.nulls"] = c.isnull().sum()
    aggs[f"{{column}}.distinct"] = c.nunique()
    if dtype.is_numeric() or dtype.is_temporal():
        aggs[f"{{column}}.min"] = c.min()
        aggs[f"{{column}}.max"] = c.max()
row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
profile = {{"table": name, "rows": row["__rows"], "columns": [
    {{"name": column, "type": str(dtype), "nullable": dtype.nullable,
      "nulls": row[f"{{column}}.nulls"], "distinct": row[f"{{column}}.distinct"],
      "min": row.get(f"{{column}}.min"), "max": row.get(f"{{column}}.max")}}
    for column, dtype in schema.items()]}}
print({marker!r} + json.dumps(profile, default=str))
"""

# Earlier runs: the copies the orchestrator put in `history_dir`, else the prefix itself.
LIST_RUNS_CELL = """
import json, os
from urllib.parse import urlsplit
history, prefix = {history_dir!r}, {prefix!r}
parts = urlsplit(prefix)
if history or parts.scheme == "file":
    root = history or parts.path
    runs = sorted(os.listdir(root)) if os.path.isdir(root) else []
else:
    import boto3
    listed = boto3.client("s3").list_objects_v2(
        Bucket=parts.netloc, Prefix=parts.path.lstrip("/").rstrip("/") + "/", Delimiter="/")
    runs = sorted(p["Prefix"].rstrip("/").rsplit("/", 1)[-1]
                  for p in listed.get("CommonPrefixes", []))
print({marker!r} + json.dumps({{"runs": runs}}))
"""


class OfflineAgent:
    def __init__(
        self,
        request: AgentRequest,
        runner: CodeRunner,
        emit: Emit,
        *,
        max_html_bytes: int,
        cell_timeout_s: float,
    ) -> None:
        self._request = request
        self._runner = runner
        self._emit = emit
        self._max_html_bytes = max_html_bytes
        self._cell_timeout_s = cell_timeout_s
        self._spending = Spending(request.budget)
        self._context: dict[str, Any] = json.loads(request.context_json or "{}")

    async def run(self) -> AgentOutcome:
        if "tables" in self._context:
            profiles = [await self._profile(str(name)) for name in self._context["tables"]]
            body = catalog_page(profiles)
        else:
            found = await self._cell(
                LIST_RUNS_CELL.format(
                    prefix=str(self._context.get("s3_prefix", "")),
                    history_dir=str(self._context.get("history_dir", "")),
                    marker=MARKER,
                )
            )
            body = summary_page(self._context, found)
        await self._submit(body)
        return AgentOutcome(
            sanitize(body, max_bytes=self._max_html_bytes),
            Usage(),
            StopReason.SUBMITTED,
            True,
            self._spending.turns,
        )

    async def _profile(self, name: str) -> dict[str, Any]:
        profile = await self._cell(PROFILE_CELL.format(name=name, marker=MARKER))
        return profile if "error" not in profile else {"table": name, **profile}

    async def _cell(self, code: str) -> dict[str, Any]:
        """One turn: a cell in the sandbox, its JSON answer, or the error it reported."""
        turn = await self._next_turn()
        tool_use_id = f"offline_{turn}"
        await self._emit(ToolCalled(turn, tool_use_id, EXECUTE_PYTHON, code, 0))
        report = await self._runner.run(code, self._cell_timeout_s)
        await self._emit(ToolAnswered(turn, tool_use_id, report.text, report.is_error))
        for line in report.text.splitlines():
            if line.startswith(MARKER):
                parsed: dict[str, Any] = json.loads(line[len(MARKER) :])
                return parsed
        return {"error": report.text[-2000:]}

    async def _submit(self, body: str) -> None:
        turn = await self._next_turn()
        await self._emit(ToolCalled(turn, f"offline_{turn}", SUBMIT_HTML, "", len(body.encode())))

    async def _next_turn(self) -> int:
        self._spending.turns += 1
        await self._emit(TurnStarted(self._spending.turns))
        return self._spending.turns


def catalog_page(profiles: list[dict[str, Any]]) -> str:
    toc = "".join(
        f'<li><a href="#t{i}">{escape(str(p["table"]))}</a></li>' for i, p in enumerate(profiles)
    )
    sections = "".join(_table_section(i, p) for i, p in enumerate(profiles))
    return f"<h1>Data catalog</h1><nav><ul>{toc}</ul></nav>{sections}"


def _table_section(index: int, profile: dict[str, Any]) -> str:
    title = f'<h2 id="t{index}">{escape(str(profile["table"]))}</h2>'
    if "error" in profile:
        return f"{title}<p>Could not profile this table:</p><pre>{escape(profile['error'])}</pre>"
    rows = int(profile["rows"])
    header = "".join(
        f"<th>{h}</th>" for h in ("column", "type", "nulls", "null rate", "distinct", "min", "max")
    )
    body = "".join(_column_row(column, rows) for column in profile["columns"])
    return (
        f"{title}<p>{rows:,} rows, {len(profile['columns'])} columns (exact, full scan).</p>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    )


def _column_row(column: dict[str, Any], rows: int) -> str:
    nulls = int(column["nulls"] or 0)
    rate = f"{nulls / rows:.1%}" if rows else "-"
    cells = (
        column["name"],
        column["type"],
        nulls,
        rate,
        column["distinct"],
        _number(column.get("min")),
        _number(column.get("max")),
    )
    return (
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in cells) + "</tr>"
    )


def _number(value: Any) -> Any:
    """1.500000000 (a NUMERIC column) reads better as 1.5; other values stay as they are."""
    if isinstance(value, str) and _DECIMAL.match(value) and "." in value:
        return value.rstrip("0").rstrip(".")
    return value


def summary_page(context: dict[str, Any], found: dict[str, Any]) -> str:
    prefix = escape(str(context.get("s3_prefix", "")))
    current = escape(str(context.get("current_timestamp", "")))
    if "error" in found:
        return (
            f"<h1>Summary of {prefix}</h1><p>The earlier runs could not be listed:</p>"
            f"<pre>{escape(found['error'])}</pre>"
        )
    earlier = [r for r in found.get("runs", []) if r != context.get("current_timestamp")]
    items = "".join(f"<li>{escape(str(r))}</li>" for r in earlier) or "<li>none</li>"
    return (
        f"<h1>Summary of {prefix}</h1><p>This run: {current}. Earlier runs found: "
        f"{len(earlier)}.</p><ul>{items}</ul>"
        "<p>The offline agent lists runs; it does not compare their contents.</p>"
    )
