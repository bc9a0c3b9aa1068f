"""``newsletter send`` and ``newsletter run``: deliver the digest (and fetch first, for run)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import eventloop, pipeline
from newsletter.cli.context import app_context, console
from newsletter.cli.fetch import print_summary
from newsletter.config import Config
from newsletter.errors import EXIT_FAILURE, InputError
from newsletter.mailer.send import SendOptions, SendSummary
from newsletter.models import Issue, IssueState, Subscriber, SubscriberStatus

KIND = "weekly"
T = TypeVar("T")


class RateColumn(ProgressColumn):
    """Messages per second, as Rich measures the task's speed."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.0f} msg/s" if speed else "… msg/s", style="progress.data.speed")


def send(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="EMAIL", help="Send one test copy here; logs nothing."),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="Only help send the issue being sent (or the approved one due); "
            "never start a new one. Any number may run at once.",
        ),
    ] = False,
) -> None:
    """Send the next digest (what `preview` shows) to every active subscriber.

    On a terminal it shows the subject and the number of recipients and asks first
    (--yes skips that). An interrupted send is resumed. Exit 0 when every message was
    delivered, 1 when some failed or were deferred (run it again to retry those).

    Example:

        newsletter send --to me@example.org && newsletter send --yes
    """
    app = app_context(ctx)
    config, engine = app.config, app.engine()
    if worker:
        _work(config, engine)
        return
    if to:
        digest = pipeline.preview_digest(config, engine)
        if digest.is_empty:
            console.print("nothing new: no digest to send")
            return
        reply = eventloop.run(pipeline.send_test(config, digest, to))
        console.print(f"test copy of “{digest.subject}” sent to {to}: {reply}")
        return

    resume = pipeline.issue_to_resume(engine, KIND)
    if resume is not None:
        assert resume.id is not None
        issue_id = resume.id
        subject = resume.subject or f"issue {issue_id}"
        recipients = pipeline.open_deliveries(engine, issue_id)
        question = f"resume issue {issue_id} ({subject}): {recipients} recipients left. Send?"
    else:
        if config.newsletter.require_approval:
            raise InputError(
                "require_approval is on: approve a draft (newsletter issues approve N), "
                "then send it with `newsletter issues send N`"
            )
        digest = pipeline.preview_digest(config, engine)
        if digest.is_empty:
            console.print("nothing new: no digest sent")
            return
        recipients = _active_subscribers(engine)
        question = f"send “{digest.subject}” to {recipients} subscribers?"
    if not yes and sys.stdin.isatty() and not typer.confirm(question):
        console.print("nothing sent")
        raise typer.Exit(EXIT_FAILURE)
    if resume is None:
        issue = pipeline.draft_issue(config, engine, KIND, datetime.now(UTC))
        if issue is None or issue.id is None:
            console.print("nothing new: no digest sent")
            return
        issue_id = issue.id
    summary = _with_progress(
        lambda advance, start: pipeline.send_issue(
            config, engine, issue_id, on_progress=advance, on_start=start
        )
    )
    print_send_summary(issue_id, summary)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILURE)


def _work(config: Config, engine: Engine) -> None:
    """``send --worker``: share the current issue's deliveries with the other workers."""
    issue = issue_for_workers(engine, datetime.now(UTC))
    if issue is None or issue.id is None:
        console.print("worker: no issue is being sent or due: nothing to do")
        return
    issue_id = issue.id
    summary = _with_progress(
        lambda advance, start: pipeline.send_issue(
            config,
            engine,
            issue_id,
            on_progress=advance,
            on_start=start,
            options=SendOptions(linger=True),
        )
    )
    print_send_summary(issue_id, summary)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILURE)


def issue_for_workers(engine: Engine, now: datetime) -> Issue | None:
    """The oldest issue being sent, else the oldest approved one whose time has come."""
    with Session(engine) as session:
        sending = select(Issue).where(Issue.state == IssueState.SENDING)
        found = session.exec(sending.order_by(col(Issue.id))).first()
        if found is not None:
            return found
        approved = select(Issue).where(
            Issue.state == IssueState.APPROVED,
            or_(col(Issue.send_after).is_(None), col(Issue.send_after) <= now),
        )
        return session.exec(approved.order_by(col(Issue.id))).first()


def run(ctx: typer.Context) -> None:
    """Fetch every source, then send the digest when there is something new.

    What cron and the scheduler call. With require_approval the new items become a draft
    for the editors instead. Exit 1 when a feed or a delivery failed.

    Example:

        newsletter run
    """
    app = app_context(ctx)
    config, engine = app.config, app.engine()
    report = _with_progress(
        lambda advance, start: pipeline.run(config, engine, on_progress=advance, on_start=start)
    )
    print_summary(report.sources)
    console.print(report.note)
    if report.summary is not None and report.issue_id is not None:
        print_send_summary(report.issue_id, report.summary)
    failed_feeds = any(r.failed for r in report.sources)
    if failed_feeds or (report.summary is not None and not report.summary.ok):
        raise typer.Exit(EXIT_FAILURE)


def _with_progress(
    make: Callable[[Callable[[str], None], Callable[[int], None]], Coroutine[Any, Any, T]],
) -> T:
    """Run ``make(advance, start)`` under a progress bar with a rate (terminals only)."""
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("send", total=None)

        def advance(_state: str) -> None:
            progress.advance(task)

        def start(total: int) -> None:
            progress.update(task, total=total)

        return eventloop.run(make(advance, start))


def print_send_summary(issue_id: int, summary: SendSummary) -> None:
    parts = [
        f"[green]{summary.delivered} delivered[/]",
        f"[{'red' if summary.failed else 'dim'}]{summary.failed} failed[/]",
        f"{summary.skipped} skipped",
    ]
    if summary.deferred:
        parts.append(f"[yellow]{summary.deferred} deferred (run `newsletter send` again)[/]")
    state = "sent" if summary.issue_sent else "still sending"
    console.print(f"issue {issue_id}: " + ", ".join(parts) + f"; the issue is {state}")


def _active_subscribers(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(
            Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.frequency == KIND
        )
        return int(session.exec(query).one())


def register(app: typer.Typer) -> None:
    app.command()(send)
    app.command()(run)
