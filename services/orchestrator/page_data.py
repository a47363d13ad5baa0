"""The data behind a page (`{agent}.json`), read out of the sandbox the agent ran in.

The toolkit in the sandbox recorded what the agent computed; `export_data` completes it (a
catalog gets a profile of every requested table, a summary its comparison) and prints it. The
JSON is stored beside the page so the next summary compares numbers, not HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.common.cells import call_cell, result_text
from services.common.clients import SandboxClient
from services.common.redaction import Redactor

MAX_DATA_BYTES = 64 * 1024 * 1024
EXPORT_TIMEOUT_S = 900.0


def export_cell(agent_name: str, context: dict[str, Any]) -> str:
    if agent_name == "catalog":
        tables = [str(t) for t in context.get("tables", [])]
        return call_cell("export_data", with_con=True, agent=agent_name, tables=tables)
    return call_cell(
        "export_data",
        agent=agent_name,
        history_dir=str(context.get("history_dir", "")),
        current_timestamp=str(context.get("current_timestamp", "")),
    )


async def read_page_data(
    client: SandboxClient,
    lease_id: str,
    agent_name: str,
    context: dict[str, Any],
    secrets: Iterable[str],
) -> bytes:
    """The page's data as JSON bytes, with every secret replaced; raises ValueError if the
    sandbox could not produce it."""
    execution = await client.execute(
        lease_id,
        export_cell(agent_name, context),
        timeout_s=EXPORT_TIMEOUT_S,
        max_output_bytes=MAX_DATA_BYTES,
    )
    redact = Redactor(secrets)
    try:
        text = redact(result_text(execution.whole_stdout()))
    except ValueError as exc:
        why = redact(str(exc))
        raise ValueError(f"the sandbox could not export the {agent_name} data: {why}") from None
    json.loads(text)  # still valid after redaction, or ValueError
    return text.encode()
