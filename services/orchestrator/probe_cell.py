"""The cell that proves, inside the sandbox, that the agent's database connection is read only.

The proof itself is ``read_only_probe`` (what counts as writable is described there); this
module ships its source to the sandbox as one cell, run in a scope of its own so nothing it
defines lands in the namespace the agents get, and reads back the one JSON line it prints.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field

from services.orchestrator import read_only_probe

MARKER = "CATALOG_PROBE_JSON "


def probe_code(tables: list[str]) -> str:
    source = inspect.getsource(read_only_probe)
    return (
        "import json as _probe_json\n"
        "_probe_scope = {'__name__': 'catalog_read_only_probe'}\n"
        f"exec(compile({source!r}, '<read-only probe>', 'exec'), _probe_scope)\n"
        f"print({MARKER!r} + _probe_json.dumps(_probe_scope['run'](con, {list(tables)!r})))\n"
        "del _probe_scope, _probe_json\n"
    )


@dataclass(frozen=True)
class ProbeReport:
    writable: bool
    why: str  # the first reason found, e.g. "may change the rows of view shop.v"
    warnings: list[str] = field(default_factory=list)  # risks that do not make it writable
    missing: list[str] = field(default_factory=list)  # requested tables that cannot be read

    @classmethod
    def from_stdout(cls, stdout: str) -> ProbeReport | None:
        """The report the cell printed; None when it printed none."""
        line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), "")
        if not line:
            return None
        data = json.loads(line.removeprefix(MARKER))
        return cls(
            writable=bool(data["writable"]),
            why=str(data["why"]),
            warnings=[str(w) for w in data.get("warnings", [])],
            missing=[str(t) for t in data["missing"]],
        )
