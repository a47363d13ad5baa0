"""Staging history: what is copied into a summary's sandbox, within CATALOG_HISTORY_MAX_BYTES."""

from __future__ import annotations

from pathlib import Path

from services.orchestrator.object_names import parse_prefix
from services.orchestrator.steps.history import history_files
from services.orchestrator.storage import FileStore

OLD, NEW = "2026-11-23T22:51:11.123Z", "2026-12-31T23:59:59.999Z"
HTML = "text/html; charset=utf-8"


class ReadsSeen(FileStore):
    """The real folder store, noting each object read."""

    def __init__(self, folder: Path) -> None:
        super().__init__(parse_prefix(f"file://{folder}"))
        self.reads: list[str] = []

    async def read(self, timestamp: str, name: str) -> bytes:
        self.reads.append(f"{timestamp}/{name}")
        return await super().read(timestamp, name)


async def test_an_object_over_the_budget_left_is_never_read(tmp_path: Path) -> None:
    runs = ReadsSeen(tmp_path)
    await runs.write_once(NEW, "catalog.json", b"{}" * 10, "application/json")  # 20 bytes
    await runs.write_once(NEW, "catalog.html", b"x" * 5000, HTML)  # over the budget
    await runs.write_once(OLD, "catalog.json", b"{}" * 20, "application/json")  # 40 bytes
    await runs.write_once(OLD, "catalog.html", b"y" * 50, HTML)  # over what is left

    copied = [(path, len(body)) async for path, body in history_files(runs, [NEW, OLD], 100)]

    assert copied == [(f"{NEW}/catalog.json", 20), (f"{OLD}/catalog.json", 40)]
    assert runs.reads == [f"{NEW}/catalog.json", f"{OLD}/catalog.json"]
