"""The catalog toolkit: profiles tables in the database and compares runs, for the agents.

In the sandbox it is imported before any cell runs:

    from catalog_toolkit import profile_table, compare_runs
    p = profile_table(con, "shop.orders")      # a dict: rows, columns, keys, samples, flags
    c = compare_runs(history_dir, current_timestamp)   # findings, each good / bad / neutral

Each call records its result, and `REPORT_MARKER` in a submitted page is replaced with the
rendered tables of everything recorded, so an agent writes the prose and not the figures.
"""

from catalog_toolkit.compare import compare_runs
from catalog_toolkit.pages import REPORT_MARKER, render_catalog, render_summary
from catalog_toolkit.profile import profile_table
from catalog_toolkit.session import export_json, recorded_fragment

__all__ = [
    "REPORT_MARKER",
    "compare_runs",
    "export_json",
    "profile_table",
    "recorded_fragment",
    "render_catalog",
    "render_summary",
]
