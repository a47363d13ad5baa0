"""Short digests of a profile and a comparison, for the built-in offline agent.

The toolkit records the full result (its figures reach the page through REPORT_MARKER); the
offline agent reads only these digests to write its few sentences.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.compare import compare_runs
from catalog_toolkit.profile import profile_table

MAX_BAD_FINDINGS = 10


def profile_digest(con: Any, table: str) -> dict[str, Any]:
    """Profile `table` (recording it) and say what stands out: size, warnings, failed passes."""
    profile = profile_table(con, table)
    return {
        "table": profile["table"],
        "rows": profile["rows"],
        "columns": len(profile["columns"]),
        "warnings": [
            f"{flag['column'] or ''}: {flag['message']}"
            for flag in profile["flags"]
            if flag["severity"] == "warning"
        ],
        "errors": [f"{error['pass']}: {error['error']}" for error in profile["errors"]],
    }


def compare_digest(history_dir: str, current_timestamp: str) -> dict[str, Any]:
    """Compare the runs (recording it): how many, findings by severity, the first bad ones."""
    comparison = compare_runs(history_dir, current_timestamp)
    findings = comparison["findings"]
    return {
        "runs": len(comparison["runs"]),
        "counts": {
            severity: sum(f["severity"] == severity for f in findings)
            for severity in ("good", "bad", "neutral")
        },
        "bad": [
            ".".join(x for x in (f["table"], f["column"]) if x) + ": " + f["message"]
            for f in findings
            if f["severity"] == "bad"
        ][:MAX_BAD_FINDINGS],
    }
