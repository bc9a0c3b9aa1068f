"""``newsletter schedule`` and ``newsletter run-due``: the digest on its own schedule.

Both run each slot of ``[schedule]`` once (see :mod:`newsletter.schedule`); the work for
a slot is :func:`pipeline_job`: fetch, then send what is new, or only draft it when
``[newsletter] require_approval`` is on. Events are logged one per line on stderr, JSON
when stderr is not a terminal.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import Engine

from newsletter import eventloop, pipeline
from newsletter.cli.context import app_context, console
from newsletter.config import Config
from newsletter.errors import EXIT_FAILURE
from newsletter.logs import configure, get_logger
from newsletter.schedule import (
    Job,
    JobOutcome,
    Runner,
    RunResult,
    Scheduler,
    SlotContext,
    schedules,
)

log = get_logger("newsletter.schedule")


def now() -> datetime:
    """The clock the commands read (tests replace it)."""
    return datetime.now(UTC)


def pipeline_job(config: Config, engine: Engine) -> Job:
    """The real work for a slot: ``pipeline.run`` for the slot's kind of subscriber."""

    async def job(ctx: SlotContext) -> JobOutcome:
        report = await pipeline.run(config, engine, ctx.now, kind=ctx.kind)
        failed_sources = [r.name for r in report.sources if r.failed]
        new_items = sum(r.new_items for r in report.sources)
        parts = [report.note or "done", f"{new_items} new items"]
        if failed_sources:
            parts.append(f"{len(failed_sources)} source(s) failed: {', '.join(failed_sources)}")
        summary = report.summary
        retry = False
        if summary is not None:
            parts.append(
                f"{summary.delivered} delivered, {summary.failed} failed, "
                f"{summary.skipped} skipped, {summary.deferred} deferred"
            )
            # Deferred deliveries failed only for now: the slot is retried (and the
            # send resumed) while it is within max_lateness.
            retry = summary.deferred > 0 and not summary.issue_sent
        return JobOutcome(issue_id=report.issue_id, detail="; ".join(parts), failed=retry)

    return job


def make_job(config: Config, engine: Engine) -> Job:
    """The job the commands run (tests replace it)."""
    return pipeline_job(config, engine)


def _runner(ctx: typer.Context) -> Runner:
    app = app_context(ctx)
    config, engine = app.config, app.engine()
    return Runner(
        engine,
        schedules(config.schedule),
        make_job(config, engine),
        timedelta(hours=config.schedule.max_lateness_hours),
        log=log,
    )


def _show(config: Config, count: int) -> None:
    table = Table("kind", "local time", "UTC", title="next slots", title_justify="left")
    at = now()
    # the next N of each kind, in order
    for slot in sorted(slot for s in schedules(config.schedule) for slot in s.upcoming(at, count)):
        table.add_row(
            slot.kind,
            slot.local.strftime("%a %Y-%m-%d %H:%M %Z"),
            slot.at.strftime("%a %Y-%m-%d %H:%M UTC"),
        )
    console.print(table)
    console.print(f"timezone {config.schedule.timezone}; weekly {config.schedule.cron!r}", end="")
    daily = config.schedule.daily
    console.print(f"; daily {daily!r}" if daily else "; no daily slots")


def schedule(
    ctx: typer.Context,
    show: Annotated[
        int | None,
        typer.Option(
            "--show", metavar="N", min=1, help="Print the next N slots of each kind and exit."
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            help="On SIGTERM/SIGINT, seconds to let the current send finish before leaving "
            "it (it is resumable).",
        ),
    ] = 30.0,
) -> None:
    """Run in the foreground: sleep until the next slot, fetch and send, log, repeat.

    Each slot of [schedule] is done once, even with several schedulers or `run-due`
    timers on one database. SIGTERM or SIGINT stops it; a send in progress gets --grace
    seconds to finish and is otherwise left to be resumed by the next run (a second
    signal leaves it at once).

    Example:

        newsletter schedule --show 5
    """
    app = app_context(ctx)
    if show is not None:
        _show(app.config, show)
        return
    configure()
    scheduler = Scheduler(_runner(ctx), grace=grace)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, scheduler.stop)
        try:
            await scheduler.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    eventloop.run(main())


def run_due(ctx: typer.Context) -> None:
    """Do the work of the current slot if it is due and not done yet; else nothing.

    For cron and systemd timers: running it every five minutes is safe. Exit 0 when
    nothing was due or the slot was done, 1 when the slot failed (the next run retries
    it while it is within max_lateness_hours).

    Example:

        */5 * * * * newsletter -c /etc/newsletter/newsletter.toml run-due
    """
    configure()
    runner = _runner(ctx)

    async def main() -> list[RunResult] | None:
        # SIGTERM (systemd stopping the unit) or SIGINT: leave the send where it is,
        # recorded as interrupted, with the lease released; the next run resumes it.
        task = asyncio.create_task(runner.run_due(now()))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            return None
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    results = eventloop.run(main())
    if results is None or any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    app.command()(schedule)
    app.command("run-due")(run_due)
