"""The data behind a page (`{agent}.json`), read out of the sandbox the agent ran in.

The toolkit in the sandbox recorded what the agent computed; `export_data(agent, **context)`
completes it through the agent's kit (catalog_toolkit/kits.py: a catalog gets a profile of
every requested table, a summary its comparison) and prints it. The JSON is stored beside the
page so later agents and runs read numbers, not HTML.
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
    """The export call with the agent's whole context; the connection goes in when the agent
    reads the database (its context has "tables"), since only then is one open."""
    arguments = {key: value for key, value in context.items() if key != "agent"}
    return call_cell("export_data", with_con="tables" in context, agent=agent_name, **arguments)


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


def summary_counts(body: bytes) -> dict[str, int]:
    """The summary's findings by verdict (bad, good, neutral), from its `summary.json`: the
    counts the toolkit wrote beside the findings; {} when the data is not a summary's."""
    try:
        counts = json.loads(body).get("counts", {})
    except (ValueError, AttributeError):
        return {}
    keys = ("bad", "good", "neutral")
    return {k: int(counts[k]) for k in keys if isinstance(counts, dict) and k in counts}
