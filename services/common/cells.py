"""The one way a service runs code in the sandbox: a call of a toolkit function, JSON in and out.

The services never build Python programs: everything that runs in the sandbox on their behalf
is a typed, tested function of `catalog_toolkit` (sandbox/catalog_toolkit). A cell is one call
of such a function with JSON arguments, and prints the result as JSON after RESULT_MARKER on a
line of its own; `read_result` finds it. The cell binds no name, so nothing lands in the
namespace an agent works in.
"""

from __future__ import annotations

import json
from typing import Any

RESULT_MARKER = "CATALOG_CELL_RESULT "


class NoResult(ValueError):
    """The cell printed no result line: it failed before its call returned, or was cut."""


def call_cell(function: str, /, *, with_con: bool = False, **arguments: Any) -> str:
    """The code of a cell calling `catalog_toolkit.<function>(**arguments)`; with `with_con`
    every database of the session goes in as `con=cons` (source name -> connection), and the
    toolkit finds each table's by its name (`billing/invoices`; bare for the first)."""
    if not function.isidentifier() or function.startswith("_"):
        raise ValueError(f"{function!r} is not a public toolkit function name")
    encoded = json.dumps(arguments, ensure_ascii=False, allow_nan=False)
    con = "con=cons, " if with_con else ""
    # One expression that binds no name, so the agent's namespace stays as it was.
    return (
        f"print({RESULT_MARKER!r} + __import__('json').dumps("
        f"__import__('catalog_toolkit').{function}({con}**__import__('json').loads({encoded!r})),"
        " ensure_ascii=False, separators=(',', ':'), allow_nan=False, default=str))\n"
    )


def result_text(output: str) -> str:
    """The raw JSON text of the result in a cell's output (the last result line): for a
    caller that scrubs the text before parsing it. NoResult when there is none."""
    # split, not splitlines: the JSON may hold U+2028 and the like, which splitlines breaks on
    for line in reversed(output.split("\n")):
        if line.startswith(RESULT_MARKER):
            return line.removeprefix(RESULT_MARKER)
    raise NoResult("the cell printed no result")


def read_result(output: str) -> Any:
    """The result in a cell's output, parsed; NoResult when there is none."""
    return json.loads(result_text(output))
