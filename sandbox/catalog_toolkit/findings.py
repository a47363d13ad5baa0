"""One shape for every finding, so the summary page and the digests read them all alike."""

from __future__ import annotations

from typing import Any


def add(
    result: dict[str, Any],
    severity: str,
    table: str | None,
    column: str | None,
    kind: str,
    message: str,
    reason: str,
) -> None:
    """Append a finding (`severity` is good, bad or neutral) with the reason a reader needs."""
    result["findings"].append(
        {
            "severity": severity,
            "table": table,
            "column": column,
            "kind": kind,
            "message": message,
            "reason": reason,
        }
    )
