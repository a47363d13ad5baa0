"""The two tools the model gets, described so a model can act on them."""

from __future__ import annotations

from typing import Any

EXECUTE_PYTHON = "execute_python"
SUBMIT_HTML = "submit_html"

TOOLS: list[dict[str, Any]] = [
    {
        "name": EXECUTE_PYTHON,
        "description": (
            "Run Python code in your sandbox, a persistent interpreter like a notebook: names "
            "you define stay defined for the next call. `con` is a read-only ibis connection "
            "to the database (writes fail); ibis, pandas as pd and polars as pl are imported. "
            "You get back what the code printed, the value of its last expression, and any "
            "traceback. Long output is cut in the middle, so print summaries, not whole tables. "
            "A cell that runs too long is interrupted."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Python source to run."},
            },
            "required": ["code"],
        },
    },
    {
        "name": SUBMIT_HTML,
        "description": (
            "Submit the finished page as HTML and end your work. Use tables, headings, inline "
            "CSS and images as data:image/png;base64 URIs. Scripts, event handlers, external "
            "images and iframes are removed. Call this exactly once, when the page is complete."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The page's HTML."},
            },
            "required": ["content"],
        },
    },
]


def cached_tools() -> list[dict[str, Any]]:
    """The tools with a cache breakpoint on the last, so the whole tool block is cached."""
    tools = [dict(tool) for tool in TOOLS]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools
