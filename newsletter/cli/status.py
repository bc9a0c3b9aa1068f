"""``newsletter status``: the last and next slot, the last issue and its deliveries,
failing sources."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import lease
from newsletter.cli.context import app_context, console
from newsletter.config import Config
from newsletter.errors import EXIT_FAILURE
from newsletter.models import Delivery, DeliveryState, Issue, ScheduleRun, SourceState
from newsletter.schedule import LEASE_NAME, last_run, schedules


def now() -> datetime:
    """The clock the command reads (tests replace it)."""
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _run(run: ScheduleRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "slot": run.slot,
        "due_at": _iso(run.due_at),
        "status": run.status,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "issue_id": run.issue_id,
        "detail": run.detail,
    }


def collect(config: Config, engine: Engine, at: datetime) -> dict[str, Any]:
    """Everything `status` shows, as plain data (what `--json` prints)."""
    holder = lease.holder(engine, LEASE_NAME, at)
    names = {s.name for s in config.sources}
    with Session(engine) as session:
        kinds = []
        for sched in schedules(config.schedule):
            upcoming = sched.next(at)
            kinds.append(
                {
                    "kind": sched.kind,
                    "cron": sched.cron,
                    "last_run": _run(last_run(session, sched.kind)),
                    "next_slot": None
                    if upcoming is None
                    else {
                        "slot": upcoming.key,
                        "local": upcoming.local.isoformat(),
                        "utc": upcoming.at.isoformat(),
                    },
                }
            )
        issue = session.exec(select(Issue).order_by(col(Issue.id).desc()).limit(1)).first()
        last_issue: dict[str, Any] | None = None
        if issue is not None:
            counts = {state.value: 0 for state in DeliveryState}
            rows = session.exec(
                select(Delivery.state, func.count())
                .where(Delivery.issue_id == issue.id)
                .group_by(col(Delivery.state))
            )
            for state, n in rows:
                counts[state] = n
            last_issue = {
                "id": issue.id,
                "kind": issue.kind,
                "state": issue.state,
                "subject": issue.subject,
                "slot": issue.slot,
                "created_at": _iso(issue.created_at),
                "sent_at": _iso(issue.sent_at),
                "deliveries": counts,
            }
        failing = [
            {
                "name": s.name,
                "consecutive_failures": s.consecutive_failures,
                "disabled": s.disabled,
                "last_error": s.last_error,
                "last_error_at": _iso(s.last_error_at),
                "last_success": _iso(s.last_success),
            }
            for s in session.exec(select(SourceState).order_by(col(SourceState.name)))
            if s.name in names and (s.consecutive_failures > 0 or s.disabled)
        ]
    return {
        "now": at.isoformat(),
        "timezone": config.schedule.timezone,
        "schedule": kinds,
        "running": None
        if holder is None
        else {"owner": holder.owner, "until": holder.expires_at.isoformat()},
        "last_issue": last_issue,
        "failing_sources": failing,
    }


def problems(data: dict[str, Any]) -> list[str]:
    """What `--check` fails on: a slot whose last run failed, or one left running with
    nobody holding the lease."""
    found = []
    for kind in data["schedule"]:
        run = kind["last_run"]
        if run is None:
            continue
        if run["status"] == "failed":
            found.append(f"{kind['kind']} slot {run['slot']} failed: {run['detail']}")
        elif run["status"] == "running" and data["running"] is None:
            found.append(f"{kind['kind']} slot {run['slot']} was left running")
    return found


def _local(value: str | None, tz: str) -> str:
    if value is None:
        return "-"
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(value).astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %Z")


def _print(data: dict[str, Any]) -> None:
    tz = data["timezone"]
    table = Table(
        "kind", "last slot", "status", "next slot", title="schedule", title_justify="left"
    )
    for kind in data["schedule"]:
        run, upcoming = kind["last_run"], kind["next_slot"]
        table.add_row(
            kind["kind"],
            _local(run["due_at"], tz) if run else "never",
            escape(f"{run['status']}: {run['detail']}".rstrip(": ")) if run else "",
            _local(upcoming["utc"], tz) if upcoming else "none",
        )
    console.print(table)
    if data["running"]:
        console.print(f"running now: {escape(data['running']['owner'])}", soft_wrap=True)
    issue = data["last_issue"]
    if issue is None:
        console.print("no issue yet")
    else:
        counts = ", ".join(f"{n} {state}" for state, n in issue["deliveries"].items() if n)
        console.print(
            f"last issue: #{issue['id']} ({issue['kind']}, {issue['state']}) "
            f"{escape(issue['subject'] or '')!s} — deliveries: {counts or 'none'}",
            soft_wrap=True,
        )
    failing = data["failing_sources"]
    if not failing:
        console.print("sources: none failing")
        return
    sources = Table("source", "failures", "last error", "last success", title="failing sources")
    for s in failing:
        error = "gone (410): disabled" if s["disabled"] else s["last_error"] or ""
        sources.add_row(
            escape(s["name"]),
            str(s["consecutive_failures"]),
            escape(error),
            _local(s["last_success"], tz),
        )
    console.print(sources)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 when the last run of a slot failed or was left running "
            "(for health checks).",
        ),
    ] = False,
) -> None:
    """Show the last and next slot of each schedule, the last issue with its delivery
    counts, and the sources that are failing.

    Example:

        newsletter status --json | jq .last_issue.deliveries
    """
    app = app_context(ctx)
    data = collect(app.config, app.engine(), now())
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print(data)
    if check and (found := problems(data)):
        for line in found:
            typer.echo(f"unhealthy: {line}", err=True)
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    app.command()(status)
