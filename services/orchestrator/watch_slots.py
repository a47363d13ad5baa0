"""A cap on the WatchCatalog streams each API key holds open at once.

Each open watch holds a server task and a reader of the run's DBOS stream until the run ends,
which may be hours; without a cap one client could open them until the replica runs out of
memory or database connections. Past CATALOG_MAX_WATCHES_PER_KEY the call is refused with
RESOURCE_EXHAUSTED, and the key's other calls go on. With authentication off every caller is
the one key `anonymous`, so the cap is the replica's.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from services.orchestrator.errors import TooManyWatches


class WatchSlots:
    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._open: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, key_id: str) -> Iterator[None]:
        """One slot of `key_id` for the body's duration; TooManyWatches when none is free."""
        if self._open[key_id] >= self._per_key:
            raise TooManyWatches(
                f"key {key_id} already has {self._per_key} WatchCatalog streams open, the most "
                "allowed (CATALOG_MAX_WATCHES_PER_KEY): close one, or poll GetCatalog"
            )
        self._open[key_id] += 1
        try:
            yield
        finally:
            self._open[key_id] -= 1
            if not self._open[key_id]:
                del self._open[key_id]
