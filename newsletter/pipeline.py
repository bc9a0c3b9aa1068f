"""Where the stages meet: feeds -> store -> countries -> digest -> render.

Every other module does one thing; this one wires them for the CLI, the scheduler and
the web side. Config comes in as a value; the engine is opened by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from newsletter import health, items
from newsletter.config import Config
from newsletter.digest import Digest, build_digest
from newsletter.feeds import FeedRequest, FeedResult, FetchSettings, canonical_link, fetch_feeds
from newsletter.models import SourceState
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

    def store(result: FeedResult) -> None:
        report = _store_result(engine, result, country_of[result.key], now)
        reports.append(report)
        if on_report:
            on_report(report)

    await fetch_feeds(requests, fetch_settings(config), transport=transport, on_result=store)
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


def next_digest(config: Config, engine: Engine, *, now: datetime | None = None) -> Digest:
    """The digest that `send` would send now, built from the new items; marks nothing."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        fresh = items.new_items(session, now, config.digest.max_age_days)
        candidates = [items.to_candidate(i) for i in fresh]
    return build_digest(candidates, title=config.title, now=now, settings=config.digest)


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


def write_preview(config: Config, digest: Digest, out_dir: Path) -> dict[str, Path]:
    """Write digest.html, digest.txt and digest.json for ``digest`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = fill(render(config, digest), **public_links(config))
    paths = {name: out_dir / f"digest.{name}" for name in ("html", "txt", "json")}
    paths["html"].write_text(rendered.html, "utf-8")
    paths["txt"].write_text(rendered.text, "utf-8")
    paths["json"].write_text(
        json.dumps(digest_json(digest), ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    return paths
