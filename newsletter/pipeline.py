"""Where the stages meet: feeds -> store -> countries -> digest -> render.

Every other module does one thing; this one wires them for the CLI, the scheduler and
the web side. Config comes in as a value; the engine is opened by the caller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from newsletter import health, issues, items, subscribers
from newsletter.config import Config
from newsletter.digest import Digest, build_digest
from newsletter.errors import InputError, TokenError
from newsletter.feeds import FeedRequest, FeedResult, FetchSettings, canonical_link, fetch_feeds
from newsletter.mailer import deliveries
from newsletter.mailer.dkim import Signer as DkimSigner
from newsletter.mailer.message import EVERYONE, ListSettings, Variant, build_template
from newsletter.mailer.ratelimit import GlobalLimits
from newsletter.mailer.send import SendOptions, SendSummary, Templates, deliver_issue
from newsletter.mailer.smtp import Connector, RetryPolicy, SenderPool, SmtpSettings
from newsletter.models import Issue, IssueState, SourceState
from newsletter.render import RenderedDigest, fill, render_digest
from newsletter.store import session_scope


@dataclass(frozen=True)
class SourceReport:
    """How one source's fetch went, for the summary table."""

    name: str
    status: str  # ok | not_modified | gone | error | skipped
    new_items: int = 0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "gone")


def fetch_settings(config: Config) -> FetchSettings:
    f = config.fetch
    return FetchSettings(
        timeout=f.timeout, concurrency=f.concurrency, per_host=f.per_host, max_bytes=f.max_bytes
    )


async def fetch_sources(
    config: Config,
    engine: Engine,
    *,
    now: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_report: Callable[[SourceReport], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[SourceReport]:
    """Fetch every due source concurrently and store what is new, feed by feed.

    Each feed is stored as soon as it arrives, in its own transaction, so one broken
    feed never costs the others their items and memory does not grow with the run.
    """
    now = now or datetime.now(UTC)
    country_of = {s.name: s.country for s in config.sources}
    with session_scope(engine) as session:
        states = health.sync_states(session, config.sources)
        requests = [
            FeedRequest(key=s.name, url=s.url, etag=s.etag, last_modified=s.last_modified)
            for s in states.values()
            if s.name in country_of and health.due(s, now)
        ]
    skipped = [
        SourceReport(name, "skipped")
        for name in country_of
        if name not in {r.key for r in requests}
    ]
    reports: list[SourceReport] = []
    if on_start:
        on_start(len(requests))

    # One thread writes, feed after feed: the event loop keeps downloading meanwhile (country
    # detection and the transaction take milliseconds per feed, the first one a second while
    # the gazetteer loads), and the database sees a single writer.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsletter-store")

    async def store(result: FeedResult) -> None:
        country = country_of[result.key]
        report = await asyncio.get_running_loop().run_in_executor(
            writer, _store_result, engine, result, country, now
        )
        reports.append(report)
        if on_report:
            on_report(report)

    try:
        await fetch_feeds(
            requests, fetch_settings(config), transport=transport, on_result=store, keep_feeds=False
        )
    finally:
        writer.shutdown(wait=True)
    order = {s.name: i for i, s in enumerate(config.sources)}
    return sorted(reports + skipped, key=lambda r: order[r.name])


def _store_result(engine: Engine, result: FeedResult, country: str, now: datetime) -> SourceReport:
    with session_scope(engine) as session:
        state = session.get(SourceState, result.key)
        assert state is not None
        if result.moved_to:
            state.url = result.moved_to
        if result.status in ("ok", "not_modified"):
            state.etag = result.etag or state.etag
            state.last_modified = result.last_modified or state.last_modified
        new = 0
        if result.status == "ok" and result.feed is not None:
            entries = result.feed.entries
            canonical = {e.link: canonical_link(e.link) for e in entries if e.link}
            new = items.store_entries(session, result.key, country, entries, now, canonical)
            health.record_success(state, now, new_items=new)
            report = SourceReport(result.key, "ok", new)
        elif result.status == "not_modified":
            health.record_success(state, now, new_items=0)
            report = SourceReport(result.key, "not_modified")
        else:
            error = result.error or f"HTTP {result.http_status}"
            if result.status == "gone":
                state.disabled = True
            if result.retry_after is not None:
                state.retry_after = result.retry_after
            health.record_failure(state, now, error)
            report = SourceReport(result.key, result.status, 0, error)
        session.add(state)
    return report


def preview_digest(
    config: Config, engine: Engine, *, email: str | None = None, now: datetime | None = None
) -> Digest:
    """What `preview` shows: the current draft if there is one, else the next digest.

    With ``email``, exactly what that subscriber would get: their frequency's issue,
    filtered by their countries and sources with the mailer's own variant rule.
    """
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        kind, variant = "weekly", EVERYONE
        if email is not None:
            subscriber = subscribers.show(session, email)
            kind = subscriber.frequency
            variant = Variant.of(subscriber.countries, subscriber.sources)
        draft = issues.current_draft(session, kind)
        if draft is not None:
            assert draft.id is not None
            chosen = variant.select(issues.issue_candidates(session, draft.id))
            return issues.issue_digest(
                session, draft, title=config.title, settings=config.digest, candidates=chosen
            )
        fresh = items.new_items(session, now, config.digest.max_age_days, kind)
        chosen = variant.select(items.to_candidate(i) for i in fresh)
    return build_digest(chosen, title=config.title, now=now, settings=config.digest)


def render(config: Config, digest: Digest) -> RenderedDigest:
    return render_digest(digest, base_url=config.newsletter.base_url, lang=config.newsletter.lang)


def public_links(config: Config) -> dict[str, str]:
    """Links for a copy nobody subscribed with (preview, archive): to the generic pages."""
    base = config.newsletter.base_url.rstrip("/")
    return {"unsubscribe_url": f"{base}/unsubscribe", "preferences_url": f"{base}/subscribe"}


def digest_json(digest: Digest) -> dict[str, Any]:
    """The grouped structure that `preview` writes to digest.json."""
    return {
        "subject": digest.subject,
        "title": digest.title,
        "date": digest.date.isoformat(),
        "item_count": digest.item_count,
        "more_count": digest.more_count,
        "countries": [
            {
                "code": group.code,
                "name": group.name,
                "sources": [
                    {
                        "name": source.name,
                        "more": source.more,
                        "items": [
                            {
                                "id": item.id,
                                "title": item.title,
                                "link": item.link,
                                "published": item.published.isoformat() if item.published else None,
                                "author": item.author,
                                "sources": list(item.sources),
                                "countries": list(item.countries),
                            }
                            for item in source.items
                        ],
                    }
                    for source in group.sources
                ],
            }
            for group in digest.countries
        ],
    }


def write_preview(
    config: Config, digest: Digest, out_dir: Path, *, to: str = ""
) -> dict[str, Path]:
    """Write digest.html, .txt, .json and .eml (the message as mailed) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = render(config, digest)
    rendered = fill(raw, **public_links(config))
    paths = {name: out_dir / f"digest.{name}" for name in ("html", "txt", "json", "eml")}
    paths["eml"].write_bytes(sample_message(config, digest, raw, to=to))
    paths["html"].write_text(rendered.html, "utf-8")
    paths["txt"].write_text(rendered.text, "utf-8")
    paths["json"].write_text(
        json.dumps(digest_json(digest), ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    return paths


# --- sending -----------------------------------------------------------------------------

SAMPLE_RECIPIENT = "subscriber@example.org"


def sample_message(
    config: Config, digest: Digest, rendered: RenderedDigest | None = None, *, to: str = ""
) -> bytes:
    """The message as a subscriber gets it, with generic links: previews and test sends."""
    settings = ListSettings.from_config(config)
    template = build_template(
        rendered or render(config, digest),
        subject=digest.subject,
        settings=settings,
        date=datetime.now(UTC),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    return template.public_copy(to or SAMPLE_RECIPIENT, f"<preview.{stamp}@{settings.domain}>")


def draft_issue(
    config: Config, engine: Engine, kind: str = "weekly", now: datetime | None = None
) -> Issue | None:
    """The draft of this kind holding every new item (the snapshot that is sent); None if none.

    An existing draft is topped up (``issues.create_draft``), keeping the editor's changes.
    """
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        return issues.create_draft(
            session, now=now, max_age_days=config.digest.max_age_days, kind=kind
        )


def issue_to_resume(engine: Engine, kind: str = "weekly") -> Issue | None:
    """An issue whose sending started and did not end (killed, server lost), if any."""
    with session_scope(engine) as session:
        found = issues.list_issues(session, kind=kind, states=(IssueState.SENDING,))
        return found[-1] if found else None


def open_deliveries(engine: Engine, issue_id: int) -> int:
    """Deliveries of the issue that have not ended (pending or claimed)."""
    n = deliveries.counts(engine, issue_id)
    return sum(n.get(s.value, 0) for s in deliveries.OPEN_STATES)


def _issue_templates(config: Config, issue: Issue, candidates: list[Any]) -> Templates:
    assert issue.id is not None
    note = issues.render_note(issue.note)

    def digest_for(chosen: Any) -> Digest:
        return build_digest(
            list(chosen),
            title=config.title,
            now=issue.created_at,
            settings=config.digest,
            subject=issue.subject or None,
            note=note,
        )

    return Templates(
        candidates,
        digest_for,
        lambda d: render(config, d),
        ListSettings.from_config(config),
        datetime.now(UTC),
    )


def _dkim(config: Config) -> DkimSigner | None:
    if config.dkim is None:
        return None
    return DkimSigner.from_config(config.dkim, config.path.parent)


async def send_issue(
    config: Config,
    engine: Engine,
    issue_id: int,
    *,
    on_progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    connector: Connector | None = None,
    retry: RetryPolicy | None = None,
    options: SendOptions | None = None,
) -> SendSummary:
    """Deliver an issue to every active subscriber of its kind; resumable at any point.

    The SMTP pool is opened before anything is written: an unreachable server raises
    SMTPUnavailableError with the issue untouched. Then the issue becomes ``sending``,
    its delivery rows are created (idempotently) and worked through. A draft is sent only
    when ``require_approval`` is off; an issue already sent sends nothing.
    """
    retry = retry or RetryPolicy()
    options = options or SendOptions()
    settings = ListSettings.from_config(config)
    if not settings.secret:
        raise TokenError("no secret configured: set NEWSLETTER_SECRET or [newsletter] secret")
    with session_scope(engine) as session:
        issue = issues.get_issue(session, issue_id)
        if issue.state == IssueState.SENT:
            return SendSummary(issue_sent=True)
        if issue.state == IssueState.DISCARDED:
            raise InputError(f"issue {issue_id} was discarded")
        if issue.state == IssueState.DRAFT and config.newsletter.require_approval:
            raise InputError(f"issue {issue_id} is a draft: it must be approved first")
        candidates = issues.issue_candidates(session, issue_id)
    templates = _issue_templates(config, issue, candidates)
    if issue.state != IssueState.SENDING and (await templates.get(EVERYONE)) is None:
        raise InputError(f"issue {issue_id} is empty: nothing to send")
    dkim = _dkim(config)
    async with SenderPool(
        SmtpSettings.from_config(config),
        connector=connector,
        retry=retry,
        global_limits=GlobalLimits.from_config(config, engine),
    ) as pool:
        now = options.clock()
        with session_scope(engine) as session:
            issue = issues.get_issue(session, issue_id)
            if issue.state in (IssueState.DRAFT, IssueState.APPROVED):
                issue.state = IssueState.SENDING
                session.add(issue)
        deliveries.create(engine, issue_id, issue.kind, now)
        deliveries.release_dead(engine, issue_id)
        if on_start:
            on_start(open_deliveries(engine, issue_id))
        return await deliver_issue(
            engine,
            issue_id,
            pool=pool,
            templates=templates,
            settings=settings,
            dkim=dkim,
            options=options,
            on_progress=on_progress,
        )


async def send_test(
    config: Config, digest: Digest, address: str, *, connector: Connector | None = None
) -> str:
    """Send one copy of ``digest`` to ``address`` with generic links; logs nothing."""
    message = sample_message(config, digest, to=address)
    dkim = _dkim(config)
    if dkim is not None:
        message = dkim.sign(message)
    smtp = SmtpSettings.from_config(config)
    smtp = SmtpSettings(**{**smtp.__dict__, "concurrency": 1})
    settings = ListSettings.from_config(config)
    async with SenderPool(smtp, connector=connector, retry=RetryPolicy(attempts=3)) as pool:
        result = await pool.deliver(settings.sender, address, message)
    if result.outcome.value != "delivered":
        raise InputError(f"the test copy to {address} was not accepted: {result.reply}")
    return result.reply


@dataclass(frozen=True)
class RunReport:
    """What `newsletter run` did: the fetch, and the issue it sent (if any)."""

    sources: list[SourceReport]
    issue_id: int | None = None
    summary: SendSummary | None = None
    note: str = ""


async def run(
    config: Config,
    engine: Engine,
    now: datetime | None = None,
    *,
    kind: str = "weekly",
    on_progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    connector: Connector | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunReport:
    """Fetch, then send when there is something new: what cron and the scheduler call.

    An interrupted send is resumed first. With ``require_approval`` the new items become a
    draft for the editors and nothing is sent.
    """
    now = now or datetime.now(UTC)
    reports = await fetch_sources(config, engine, now=now, transport=transport)
    resume = issue_to_resume(engine, kind)
    if resume is not None:
        assert resume.id is not None
        summary = await send_issue(
            config,
            engine,
            resume.id,
            on_progress=on_progress,
            on_start=on_start,
            connector=connector,
        )
        return RunReport(reports, resume.id, summary, f"resumed issue {resume.id}")
    issue = draft_issue(config, engine, kind, now)
    if issue is None:
        return RunReport(reports, note="nothing new: no digest sent")
    assert issue.id is not None
    if config.newsletter.require_approval:
        return RunReport(reports, issue.id, note=f"issue {issue.id} drafted, awaiting approval")
    with session_scope(engine) as session:
        digest = issues.issue_digest(session, issue, title=config.title, settings=config.digest)
    if digest.is_empty:
        return RunReport(reports, issue.id, note="nothing new: no digest sent")
    summary = await send_issue(
        config, engine, issue.id, on_progress=on_progress, on_start=on_start, connector=connector
    )
    return RunReport(reports, issue.id, summary, f"sent issue {issue.id}")
