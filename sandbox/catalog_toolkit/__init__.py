"""The catalog toolkit: profiles tables in the database and compares runs, for the agents.

In the sandbox it is imported before any cell runs:

    from catalog_toolkit import profile_table, compare_runs
    p = profile_table(con, "shop.orders")      # a dict: rows, columns, keys, samples, flags
    ps = profile_tables(con, tables)           # each of them, 4 at a time, in order
    c = compare_runs(history_dir, current_timestamp)   # findings, each good / bad / neutral
    s = find_pii(con, ["shop.customers"])       # sensitive columns, masked examples only
    a = find_anomalies(history_dir, current_timestamp) # this run against a robust baseline
    r = find_relations(con, tables)            # declared, inferred keys, coverage, a diagram
    x = find_cross_source(cons, tables)        # several sources: the same table, keys across

Each call records its result, and `REPORT_MARKER` in a submitted page is replaced with the
rendered tables of everything recorded, so an agent writes the prose and not the figures.

The services call the rest (`probe_read_only`, `stage_file`, `export_data`, ...) through one
cell each, built by services/common/cells.py: a call with JSON arguments, its result printed
as JSON after one marker. Each agent's part is its kit (kits.py), found by the agent's name.
"""

from catalog_toolkit.anomalies import find_anomalies
from catalog_toolkit.compare import compare_runs
from catalog_toolkit.cross_source import cross_source_digest, find_cross_source
from catalog_toolkit.digests import compare_digest, profile_digest, profile_digests
from catalog_toolkit.files import make_folder, stage_file
from catalog_toolkit.kits import agent_digest, export_data, recorded_fragment
from catalog_toolkit.pages import REPORT_MARKER, render_catalog, render_summary
from catalog_toolkit.pii import find_pii
from catalog_toolkit.profile import profile_table
from catalog_toolkit.profile_many import profile_tables
from catalog_toolkit.read_only import probe_read_only
from catalog_toolkit.relations import find_relations
from catalog_toolkit.run_report import run_agents

__all__ = [
    "REPORT_MARKER",
    "agent_digest",
    "compare_digest",
    "compare_runs",
    "cross_source_digest",
    "export_data",
    "find_anomalies",
    "find_cross_source",
    "find_pii",
    "find_relations",
    "make_folder",
    "probe_read_only",
    "profile_digest",
    "profile_digests",
    "profile_table",
    "profile_tables",
    "recorded_fragment",
    "render_catalog",
    "render_summary",
    "run_agents",
    "stage_file",
]
