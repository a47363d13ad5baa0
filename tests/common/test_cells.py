"""The one cell builder: a toolkit call with JSON arguments, its result after one marker."""

from __future__ import annotations

import ast
import contextlib
import io
import sys
import types
from typing import Any

import pytest

from services.common.cells import RESULT_MARKER, NoResult, call_cell, read_result, result_text

HOSTILE = "x')); import os; os.system('boom'); print(('\u2028\"\\"


@pytest.fixture
def toolkit(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in catalog_toolkit that records its calls."""
    calls: dict[str, Any] = {}
    fake = types.ModuleType("catalog_toolkit")

    def echo(**kwargs: Any) -> Any:
        calls.update(kwargs)
        return kwargs

    fake.echo = echo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "catalog_toolkit", fake)
    return calls


def run(code: str, namespace: dict[str, Any]) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<cell>", "exec"), namespace)  # what the kernel does
    return printed.getvalue()


def test_hostile_arguments_arrive_as_data_and_the_result_round_trips(
    toolkit: dict[str, Any],
) -> None:
    code = call_cell("echo", text=HOSTILE, tables=["a.b", "c"], n=3)
    assert len(ast.parse(code).body) == 1  # one statement: a call, nothing else
    output = run(code, {})
    assert toolkit == {"text": HOSTILE, "tables": ["a.b", "c"], "n": 3}
    assert read_result(output) == toolkit  # U+2028 inside the JSON does not split the line


def test_every_database_goes_in_by_name_and_the_namespace_is_left_alone(
    toolkit: dict[str, Any],
) -> None:
    cons = {"app": "the app's connection", "billing": "billing's"}
    namespace: dict[str, Any] = {"con": cons["app"], "cons": cons}
    run(call_cell("echo", with_con=True, table="billing/invoices"), namespace)
    assert toolkit == {"con": cons, "table": "billing/invoices"}
    assert set(namespace) == {"con", "cons", "__builtins__"}


def test_only_public_function_names_make_a_cell() -> None:
    for name in ("_private", "os.system", "x; y", ""):
        with pytest.raises(ValueError, match="not a public toolkit function"):
            call_cell(name)


def test_the_last_result_line_counts_and_none_is_an_error() -> None:
    output = f"noise\n{RESULT_MARKER}[1]\nmore\n{RESULT_MARKER}[2]\n"
    assert result_text(output) == "[2]" and read_result(output) == [2]
    with pytest.raises(NoResult):
        read_result("Traceback ...\nValueError: boom\n")
