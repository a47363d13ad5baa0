"""`catalog-agents`: start, follow and inspect catalog runs, and schedule them, from a shell
(docs/cli.md; the schedule commands are cli_schedules.py's).

A thin shell over `CatalogClient`: flags and environment (CATALOG_ADDRESS, CATALOG_API_KEY,
CATALOG_TLS, CATALOG_TLS_CA_FILE) build the client, each command is one or two client calls,
and cli_render prints the outcome and picks the exit code. It lives in services/common beside
the client because it is that client's command line: one installable package, and the same
no-DBOS, no-docker import rule (tests/contracts/test_imports.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.common.cli_render import (
    Exit,
    emit_json,
    error_exit,
    event_line,
    note,
    run_exit,
    run_text,
    to_json,
)
from services.common.cli_schedules import (
    add_schedule_commands,
    add_webhook_flag,
    run_schedule_command,
)
from services.common.cli_sources import SourceFlagError, add_database_flags, database_request
from services.common.clients import (
    CatalogClient,
    CatalogClientError,
    CatalogEvent,
    CatalogStatus,
    Finished,
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="catalog-agents", description="Start, follow and inspect catalog runs."
    )
    top.add_argument(
        "--address",
        help="the orchestrator's gRPC address (CATALOG_ADDRESS; default localhost:50053)",
    )
    top.add_argument("--api-key", help="sent as `authorization: Bearer` (CATALOG_API_KEY)")
    top.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="dial TLS, verified against the system's roots (CATALOG_TLS=1)",
    )
    top.add_argument("--ca-file", help="dial TLS, verified against this CA (CATALOG_TLS_CA_FILE)")
    top.add_argument("--timeout", type=float, default=30.0, help="each call's deadline, seconds")
    top.add_argument("--json", action="store_true", help="JSON on stdout, for scripts")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="start a catalog run")
    add_database_flags(start)
    start.add_argument("--prefix", required=True, help="s3://bucket/path or file:///abs/path")
    start.add_argument("--key", default="", help="idempotency key: a rerun finds the same run")
    start.add_argument(
        "--allow-writable", action="store_true", help="accept a database user that can write"
    )
    start.add_argument(
        "--agents",
        default="",
        help="comma-separated agents to run, e.g. pii (their needs are added; default: the "
        "pipeline's)",
    )
    start.add_argument(
        "--max-cost-usd",
        type=float,
        default=0.0,
        help="the most the run's model calls may cost, US dollars (default 0: no limit)",
    )
    add_webhook_flag(start)
    start.add_argument("--wait", action="store_true", help="follow the run until it ends")
    start.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds (--wait)")

    for name, what in (
        ("get", "show a run"),
        ("watch", "follow a run until it ends"),
        ("cancel", "cancel a queued or running run"),
    ):
        commands.add_parser(name, help=what).add_argument("catalog_id")
    listing = commands.add_parser("list", help="list runs, newest first")
    listing.add_argument(
        "--status", choices=[s.value for s in CatalogStatus if s.value != "UNSPECIFIED"]
    )
    listing.add_argument("--limit", type=int, default=20, help="at most this many (max 200)")
    listing.add_argument("--page-token", default="", help="next_page_token of a previous list")
    opening = commands.add_parser("open", help="print a run's page path or URI")
    opening.add_argument("catalog_id")
    opening.add_argument("--agent", default="catalog", help="whose page: catalog or summary")
    opening.add_argument("--browser", action="store_true", help="open a file:// page in a browser")
    add_schedule_commands(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = CatalogClient.from_env(
        address=args.address,
        api_key=args.api_key,
        tls=args.tls,
        ca_file=args.ca_file,
        timeout_s=args.timeout,
    )
    try:
        return int(asyncio.run(_run(client, args)))
    except KeyboardInterrupt:
        note("catalog-agents: interrupted; the run goes on (cancel it with `cancel ID`)")
        return 130


async def _run(client: CatalogClient, args: argparse.Namespace) -> Exit:
    command = _COMMANDS[args.command]
    async with client:
        try:
            return await command(client, args)
        except CatalogClientError as error:
            return error_exit(error, args.json)


async def _start(client: CatalogClient, args: argparse.Namespace) -> Exit:
    try:
        db, tables, sources = database_request(args)
    except SourceFlagError as error:
        note(f"catalog-agents: {error}")
        return Exit.USAGE
    catalog_id = await client.start(
        db,
        tables,
        args.prefix,
        sources=sources,
        idempotency_key=args.key,
        allow_writable=args.allow_writable,
        agents=_listed(args.agents),
        max_cost_usd=args.max_cost_usd,
        webhooks=args.webhook,
    )
    if not args.wait:
        if args.json:
            emit_json({"catalog_id": catalog_id})
        else:
            print(catalog_id)
            note(f"started; follow it with: catalog-agents watch {catalog_id}")
        return Exit.OK
    note(f"catalog {catalog_id} started; following it (Ctrl-C leaves it running)")
    return await _follow(client, catalog_id, args, timeout_s=args.wait_timeout)


def _listed(flag: str) -> list[str]:
    return [item.strip() for item in flag.split(",") if item.strip()]


async def _watch(client: CatalogClient, args: argparse.Namespace) -> Exit:
    return await _follow(client, args.catalog_id, args, timeout_s=None)


async def _follow(
    client: CatalogClient, catalog_id: str, args: argparse.Namespace, timeout_s: float | None
) -> Exit:
    """Show each event as it comes; the exit code is the run's outcome."""
    began = time.monotonic()

    async def show(event: CatalogEvent) -> None:
        if args.json:
            emit_json({"event": type(event).__name__, **_fields(event)})
        elif not isinstance(event, Finished):
            note(event_line(event, time.monotonic() - began))

    run = await client.wait(catalog_id, timeout_s, on_event=show)
    if not args.json:
        print(run_text(run))
    return run_exit(run)


def _fields(event: CatalogEvent) -> dict[str, object]:
    value = to_json(event)
    assert isinstance(value, dict)
    return value


async def _get(client: CatalogClient, args: argparse.Namespace) -> Exit:
    run = await client.get(args.catalog_id)
    emit_json(run) if args.json else print(run_text(run))
    return Exit.OK


async def _cancel(client: CatalogClient, args: argparse.Namespace) -> Exit:
    run = await client.cancel(args.catalog_id)
    emit_json(run) if args.json else print(run_text(run))
    if not args.json:
        note("cancelled: the run stops at its next step boundary")
    return Exit.OK


async def _list(client: CatalogClient, args: argparse.Namespace) -> Exit:
    status = CatalogStatus(args.status) if args.status else None
    page = await client.list(status=status, page_size=args.limit, page_token=args.page_token)
    if args.json:
        emit_json(page)
        return Exit.OK
    for run in page.catalogs:
        created = run.create_time.strftime("%Y-%m-%d %H:%M:%S") if run.create_time else "-"
        print(f"{run.catalog_id}  {run.status.value:<9}  {created}  {','.join(run.tables)}")
    if page.next_page_token:
        note(f"more: catalog-agents list --page-token {page.next_page_token}")
    return Exit.OK


async def _open(client: CatalogClient, args: argparse.Namespace) -> Exit:
    run = await client.get(args.catalog_id)
    uri = run.page(args.agent)
    if not uri:
        later = "" if run.finished else f"; wait for it: catalog-agents watch {run.catalog_id}"
        note(
            f"catalog-agents: {run.catalog_id} ({run.status.value}) has no {args.agent} page{later}"
        )
        return Exit.NO_PAGE
    parts = urlsplit(uri)
    path = unquote(parts.path) if parts.scheme == "file" else ""
    if args.json:
        emit_json(
            {"catalog_id": run.catalog_id, "agent_name": args.agent, "uri": uri, "path": path}
        )
    else:
        print(path or uri)
    if args.browser:
        if not path:
            note("catalog-agents: only file:// pages open in a browser; fetch the s3:// one first")
            return Exit.NO_PAGE
        webbrowser.open(Path(path).as_uri())
    return Exit.OK


_COMMANDS = {
    "start": _start,
    "watch": _watch,
    "get": _get,
    "cancel": _cancel,
    "list": _list,
    "open": _open,
    "schedule": run_schedule_command,
}

if __name__ == "__main__":
    sys.exit(main())
