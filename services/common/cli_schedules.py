"""`catalog-agents schedule create|get|list|pause|resume|trigger|delete` (docs/cli.md), and
the `--webhook URL[,event...]` flag that `start` and `schedule create` share."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.common.cli_render import Exit, emit_json, note
from services.common.cli_sources import SourceFlagError, add_database_flags, database_request
from services.common.clients import (
    CatalogClient,
    CatchUp,
    Overlap,
    Schedule,
    Webhook,
)


def add_webhook_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--webhook",
        action="append",
        default=[],
        type=_webhook,
        metavar="URL[,EVENT...]",
        help="POST the outcome there when a run ends, signed; repeatable. Events among "
        f"{', '.join(Webhook.EVENTS)} (default: all)",
    )


def _webhook(text: str) -> Webhook:
    hook = Webhook.parse(text)
    unknown = [e for e in hook.events if e not in Webhook.EVENTS]
    if not hook.url or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give URL[,event...], events among {', '.join(Webhook.EVENTS)}"
        )
    return hook


def add_schedule_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = commands.add_parser("schedule", help="run a catalog request on a cron schedule")
    verbs = schedule.add_subparsers(dest="verb", required=True, metavar="VERB")
    create = verbs.add_parser("create", help="create a schedule")
    create.add_argument("--cron", required=True, help="e.g. '0 3 * * *' (6 fields: seconds first)")
    create.add_argument("--time-zone", default="", help="IANA name, e.g. Europe/Paris (UTC)")
    add_database_flags(create)
    create.add_argument("--prefix", required=True, help="s3://bucket/path or file:///abs/path")
    create.add_argument("--agents", default="", help="comma-separated agents to run")
    create.add_argument("--max-cost-usd", type=float, default=0.0, help="per run; 0: no limit")
    create.add_argument(
        "--overlap", choices=["SKIP", "ALLOW"], default="SKIP", help="a tick while a run runs"
    )
    create.add_argument(
        "--catch-up", choices=["LATEST", "SKIP"], default="LATEST", help="ticks missed while down"
    )
    add_webhook_flag(create)
    listing = verbs.add_parser("list", help="list your schedules")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (max 200)")
    listing.add_argument("--page-token", default="", help="next_page_token of a previous list")
    for verb, what in (
        ("get", "show a schedule: next fire times, last runs, skipped ticks"),
        ("pause", "stop its ticks until resumed"),
        ("resume", "fire again from the next tick"),
        ("trigger", "start a run now (the overlap policy applies)"),
        ("delete", "delete a schedule; its runs stay"),
    ):
        verbs.add_parser(verb, help=what).add_argument("schedule_id")


async def run_schedule_command(client: CatalogClient, args: argparse.Namespace) -> Exit:
    return await _VERBS[args.verb](client, args)


def schedule_text(schedule: Schedule) -> str:
    state = "paused" if schedule.paused else "active"
    lines = [
        f"{schedule.schedule_id}  {state}  {schedule.cron!r} {schedule.time_zone or 'UTC'}",
        f"  tables: {', '.join(schedule.tables)}  ->  {schedule.s3_prefix}",
        f"  overlap {schedule.overlap.value}, catch-up {schedule.catch_up.value}",
    ]
    lines += [f"  webhook: {w.url} {','.join(w.events) or 'all events'}" for w in schedule.webhooks]
    lines += [f"  next: {_when(t)}" for t in schedule.next_fire_times[:3]]
    lines += [f"  run: {r.catalog_id}  {r.status.value}" for r in schedule.recent_runs]
    lines += [f"  skipped {_when(t.tick_time)}: {t.reason}" for t in schedule.skipped_ticks]
    return "\n".join(lines)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "-"


def _listed(flag: str) -> list[str]:
    return [item.strip() for item in flag.split(",") if item.strip()]


async def _create(client: CatalogClient, args: argparse.Namespace) -> Exit:
    try:
        db, tables, sources = database_request(args)
    except SourceFlagError as error:
        note(f"catalog-agents: {error}")
        return Exit.USAGE
    made = await client.create_schedule(
        args.cron,
        db,
        tables,
        args.prefix,
        sources=sources,
        time_zone=args.time_zone,
        agents=_listed(args.agents),
        max_cost_usd=args.max_cost_usd,
        webhooks=args.webhook,
        overlap=Overlap(args.overlap),
        catch_up=CatchUp(args.catch_up),
    )
    return _show(made, args, f"created; show it: catalog-agents schedule get {made.schedule_id}")


def _show(schedule: Schedule, args: argparse.Namespace, said: str = "") -> Exit:
    emit_json(schedule) if args.json else print(schedule_text(schedule))
    if said and not args.json:
        note(said)
    return Exit.OK


async def _list(client: CatalogClient, args: argparse.Namespace) -> Exit:
    page = await client.list_schedules(page_size=args.limit, page_token=args.page_token)
    if args.json:
        emit_json(page)
        return Exit.OK
    for s in page.schedules:
        state = "paused" if s.paused else "active"
        zone = s.time_zone or "UTC"
        print(f"{s.schedule_id}  {state:<6}  {s.cron!r} {zone}  {','.join(s.tables)}")
    if page.next_page_token:
        note(f"more: catalog-agents schedule list --page-token {page.next_page_token}")
    return Exit.OK


async def _get(client: CatalogClient, args: argparse.Namespace) -> Exit:
    return _show(await client.get_schedule(args.schedule_id), args)


async def _pause(client: CatalogClient, args: argparse.Namespace) -> Exit:
    return _show(await client.pause_schedule(args.schedule_id), args)


async def _resume(client: CatalogClient, args: argparse.Namespace) -> Exit:
    return _show(await client.resume_schedule(args.schedule_id), args)


async def _trigger(client: CatalogClient, args: argparse.Namespace) -> Exit:
    catalog_id = await client.trigger_schedule(args.schedule_id)
    if args.json:
        emit_json({"catalog_id": catalog_id})
    elif catalog_id:
        print(catalog_id)
        note(f"started; follow it with: catalog-agents watch {catalog_id}")
    else:
        note("skipped: the schedule's last run still runs (overlap SKIP)")
    return Exit.OK


async def _delete(client: CatalogClient, args: argparse.Namespace) -> Exit:
    await client.delete_schedule(args.schedule_id)
    if args.json:
        emit_json({"deleted": args.schedule_id})
    else:
        note(f"deleted {args.schedule_id}; its runs stay")
    return Exit.OK


_VERBS: dict[str, Callable[[CatalogClient, argparse.Namespace], Awaitable[Exit]]] = {
    "create": _create,
    "list": _list,
    "get": _get,
    "pause": _pause,
    "resume": _resume,
    "trigger": _trigger,
    "delete": _delete,
}
