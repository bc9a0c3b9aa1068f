"""``newsletter draft`` and ``newsletter issues …``: the editor's pages, from a terminal.

An issue is a numbered digest: draft -> approved -> sending -> sent (or discarded).
Only a draft can be edited; what is sent is exactly the approved snapshot.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session

from newsletter import eventloop
from newsletter import issues as lifecycle
from newsletter.cli.context import AppContext, app_context, console
from newsletter.errors import EXIT_FAILURE, InputError
from newsletter.models import Issue, IssueState
from newsletter.store import session_scope

if TYPE_CHECKING:  # the mailer is loaded only when something is sent
    from newsletter.mailer.send import SendSummary

app = typer.Typer(help="Review, edit, approve and send numbered issues.", no_args_is_help=True)

IssueNumber = Annotated[int, typer.Argument(help="The issue number (see `issues list`).", min=1)]
Kind = Annotated[str, typer.Option("--kind", help="weekly or daily.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _kind(kind: str) -> str:
    if kind not in ("weekly", "daily"):
        raise InputError(f"--kind must be weekly or daily, not {kind!r}")
    return kind


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def issue_summary(session: Session, issue: Issue, app: AppContext) -> dict[str, Any]:
    assert issue.id is not None
    digest = lifecycle.issue_digest(
        session, issue, title=app.config.title, settings=app.config.digest
    )
    entries = lifecycle.issue_items(session, issue.id)
    return {
        "number": issue.id,
        "kind": issue.kind,
        "state": issue.state,
        "subject": digest.subject,
        "subject_set": bool(issue.subject),
        "note": issue.note,
        "items": len(entries),
        "dropped": sum(entry.dropped for entry, _ in entries),
        "in_digest": digest.item_count,
        "created_at": _iso(issue.created_at),
        "approved_at": _iso(issue.approved_at),
        "send_after": _iso(issue.send_after),
        "sent_at": _iso(issue.sent_at),
    }


def draft(
    ctx: typer.Context,
    kind: Kind = "weekly",
    as_json: AsJson = False,
) -> None:
    """Make the next issue's draft from the new items, or top up the current draft.

    Items that arrived since the draft was made are added; the editor's changes to the
    items already in it are kept.

    Example:

        newsletter draft && newsletter issues show 7
    """
    app = app_context(ctx)
    with session_scope(app.engine()) as session:
        issue = lifecycle.create_draft(
            session,
            now=datetime.now(UTC),
            max_age_days=app.config.digest.max_age_days,
            kind=_kind(kind),
        )
        summary = issue_summary(session, issue, app) if issue else None
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    if summary is None:
        console.print(f"nothing new: no {kind} draft was made")
        return
    console.print(
        f"issue {summary['number']} (draft, {summary['kind']}): {summary['items']} items, "
        f"{summary['in_digest']} in the digest"
    )
    console.print(escape(summary["subject"]))


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only issues in this state.")] = None,
    as_json: AsJson = False,
) -> None:
    """List the issues, newest first.

    Example:

        newsletter issues list --state draft
    """
    app = app_context(ctx)
    if state and state not in {s.value for s in IssueState}:
        raise InputError(f"--state must be one of {', '.join(s.value for s in IssueState)}")
    with session_scope(app.engine()) as session:
        rows = [
            issue_summary(session, issue, app)
            for issue in lifecycle.list_issues(session, states=(state,) if state else None)
        ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("#", "kind", "state", "items", "when", "subject")
    for r in rows:
        when = r["sent_at"] or r["send_after"] or r["approved_at"] or r["created_at"]
        table.add_row(
            str(r["number"]),
            r["kind"],
            r["state"],
            f"{r['in_digest']}/{r['items']}",
            (when or "")[:16].replace("T", " "),
            escape(r["subject"]),
        )
    console.print(table)


@app.command()
def show(ctx: typer.Context, number: IssueNumber, as_json: AsJson = False) -> None:
    """Show an issue and its items, with ids for `drop`, `move` and `pin`.

    Example:

        newsletter issues show 7 --json
    """
    app = app_context(ctx)
    with session_scope(app.engine()) as session:
        issue = lifecycle.get_issue(session, number)
        summary = issue_summary(session, issue, app)
        summary["entries"] = [
            {
                "id": item.id,
                "title": item.title,
                "source": item.source,
                "country": lifecycle.filed_under(entry, item),
                "moved": bool(entry.country),
                "state": "dropped" if entry.dropped else ("pinned" if entry.pinned else "in"),
                "dropped": entry.dropped,
                "pinned": entry.pinned,
                "published": _iso(item.published),
                "link": item.link,
            }
            for entry, item in lifecycle.issue_items(session, number)
        ]
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    console.print(
        f"issue {summary['number']} ({summary['state']}, {summary['kind']}): "
        f"{escape(summary['subject'])}"
    )
    if summary["send_after"]:
        console.print(f"send after {summary['send_after']}")
    if summary["note"]:
        console.print("note: " + escape(summary["note"]))
    table = Table("id", "state", "country", "source", "title")
    for e in summary["entries"]:
        style = {"dropped": "dim strike", "pinned": "bold"}.get(e["state"], "")
        country = (e["country"] or "-") + (" (moved)" if e["moved"] else "")
        table.add_row(
            str(e["id"]),
            e["state"],
            country,
            escape(e["source"]),
            f"[{style}]{escape(e['title'])}[/]" if style else escape(e["title"]),
        )
    console.print(table)


def _edit(ctx: typer.Context, message: str, change: Any) -> None:
    with session_scope(app_context(ctx).engine()) as session:
        result = change(session)
    console.print(escape(message.format(result)))


@app.command()
def drop(
    ctx: typer.Context,
    number: IssueNumber,
    item: Annotated[int | None, typer.Option("--item", help="The item's id.")] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Part of the item's title (must match one).")
    ] = None,
    undo: Annotated[bool, typer.Option("--undo", help="Put a dropped item back.")] = False,
) -> None:
    """Leave an item out of a draft (or put it back with --undo).

    Example:

        newsletter issues drop 7 --title "lithium plan"
    """
    if (item is None) == (title is None):
        raise InputError("give exactly one of --item ID or --title TEXT")

    def change(session: Session) -> str:
        if title is not None:
            found = lifecycle.drop_by_title(session, number, title, dropped=not undo)
            return f"{found.id}: {found.title}"
        assert item is not None
        lifecycle.drop_item(session, number, item, dropped=not undo)
        return str(item)

    _edit(ctx, ("restored " if undo else "dropped ") + "{}", change)


@app.command()
def move(
    ctx: typer.Context,
    number: IssueNumber,
    item: Annotated[int, typer.Option("--item", help="The item's id.")],
    country: Annotated[
        str, typer.Option("--country", help="ISO alpha-2 code, or a region such as caribbean.")
    ],
) -> None:
    """File an item under another country or region, in this issue only.

    Example:

        newsletter issues move 7 --item 42 --country CU
    """

    def change(session: Session) -> str:
        lifecycle.move_item(session, number, item, country)
        return country

    _edit(ctx, f"item {item} now under " + "{}", change)


@app.command()
def pin(
    ctx: typer.Context,
    number: IssueNumber,
    item: Annotated[int, typer.Option("--item", help="The item's id.")],
    undo: Annotated[bool, typer.Option("--undo", help="Unpin.")] = False,
) -> None:
    """Pin an item to the top of its source's stories (or unpin it with --undo).

    Example:

        newsletter issues pin 7 --item 42
    """

    def change(session: Session) -> int:
        lifecycle.pin_item(session, number, item, pinned=not undo)
        return item

    _edit(ctx, ("unpinned" if undo else "pinned") + " item {}", change)


@app.command()
def note(
    ctx: typer.Context,
    number: IssueNumber,
    text: Annotated[str, typer.Argument(help="Markdown; an empty string removes the note.")],
) -> None:
    """Set the editor's note at the top of the issue (Markdown; raw HTML is escaped).

    Example:

        newsletter issues note 7 "A **special** week in Bolivia."
    """

    def change(session: Session) -> int:
        lifecycle.set_note(session, number, text)
        return number

    _edit(ctx, "note of issue {} set", change)


@app.command()
def subject(
    ctx: typer.Context,
    number: IssueNumber,
    text: Annotated[str, typer.Argument(help="One line; an empty string restores the default.")],
) -> None:
    """Set the subject line of the issue.

    Example:

        newsletter issues subject 7 "Bolivia votes; Cuba's harvest"
    """

    def change(session: Session) -> int:
        lifecycle.set_subject(session, number, text)
        return number

    _edit(ctx, "subject of issue {} set", change)


@app.command()
def approve(
    ctx: typer.Context,
    number: IssueNumber,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Send no earlier than this ISO 8601 time; without an offset it is in "
            "[schedule] timezone.",
        ),
    ] = None,
) -> None:
    """Approve a draft: its items and text are frozen and it may be sent.

    Example:

        newsletter issues approve 7 --at "2026-11-23 07:00"
    """
    app = app_context(ctx)
    send_after = lifecycle.parse_when(at, app.config.schedule.timezone) if at else None
    with session_scope(app.engine()) as session:
        lifecycle.approve(session, number, datetime.now(UTC), send_after)
    when = f", to be sent after {send_after.isoformat()}" if send_after else ""
    console.print(f"issue {number} approved{when}")


@app.command()
def discard(ctx: typer.Context, number: IssueNumber) -> None:
    """Discard a draft or an approved issue; its items go back to the next draft.

    Example:

        newsletter issues discard 7
    """
    with session_scope(app_context(ctx).engine()) as session:
        lifecycle.discard(session, number)
    console.print(f"issue {number} discarded")


@app.command()
def send(
    ctx: typer.Context,
    number: IssueNumber,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Send an approved issue to its subscribers now (a draft is refused).

    Example:

        newsletter issues send 7 --yes
    """
    app = app_context(ctx)
    engine = app.engine()
    with session_scope(engine) as session:
        issue = lifecycle.get_issue(session, number)
        if issue.state not in (IssueState.APPROVED, IssueState.SENDING):
            raise InputError(
                f"issue {number} is {issue.state}: only an approved issue can be sent "
                f"(newsletter issues approve {number})"
            )
        summary = issue_summary(session, issue, app)
    if not yes and not typer.confirm(
        f"send issue {number} ({summary['subject']}) to its {summary['kind']} subscribers?"
    ):
        raise typer.Exit(1)
    summary_ = send_issue(app, number)
    console.print(
        f"issue {number}: {summary_.delivered} delivered, {summary_.failed} failed, "
        f"{summary_.skipped} skipped, {summary_.deferred} deferred"
        + (" (the issue is sent)" if summary_.issue_sent else "")
    )
    if not summary_.ok:
        raise typer.Exit(EXIT_FAILURE)


def send_issue(app: AppContext, number: int) -> SendSummary:
    """The mailer's send of one issue (``pipeline.send_issue``), resumable."""
    from newsletter import pipeline  # the pipeline imports the lifecycle library

    return eventloop.run(pipeline.send_issue(app.config, app.engine(), number))


def register(root: typer.Typer) -> None:
    root.command()(draft)
    root.add_typer(app, name="issues")
