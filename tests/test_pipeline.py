"""The stages together: a real HTTP server serving fixture feeds, a real SQLite database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from newsletter import items as item_store
from newsletter.config import Config, parse_config
from newsletter.models import Item, SourceState
from newsletter.pipeline import SourceReport, fetch_sources, preview_digest, write_preview
from newsletter.store import session_scope
from tests.feedserver import FeedServer, feed_server_fixture  # noqa: F401 - the fixture

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEEDS = {
    "Orinoco Tribune": ("/feeds/orinoco_tribune.rss", "VE"),
    "Venezuelanalysis": ("/feeds/venezuelanalysis.atom", "VE"),
    "Mexico Solidarity Media": ("/feeds/mexico_solidarity.rdf", "MX"),
    "teleSUR": ("/feeds/telesur_es.rss", "VE"),
    "Brasil de Fato": ("/feeds/brasil_de_fato_pt.rss", "BR"),
}


def make_config(tmp_path: Path, server: FeedServer, extra: dict[str, str] | None = None) -> Config:
    paths = {name: path for name, (path, _) in FEEDS.items()} | (extra or {})
    sources = [
        {"name": name, "url": server.url(path), "country": FEEDS.get(name, ("", "VE"))[1]}
        for name, path in paths.items()
    ]
    doc = {
        "newsletter": {"database": "sqlite:///subscribers.db", "secret": "s"},
        "fetch": {"timeout": 0.5},
        "sources": sources,
    }
    return parse_config(doc, tmp_path / "newsletter.toml", env={})


def fetch(config: Config, engine: Engine) -> dict[str, SourceReport]:
    reports = asyncio.run(fetch_sources(config, engine, now=NOW))
    return {r.name: r for r in reports}


def stored(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Item)).one()


def test_fetch_stores_each_item_once(
    tmp_path: Path, feed_server: FeedServer, engine: Engine
) -> None:
    config = make_config(tmp_path, feed_server)
    first = fetch(config, engine)
    assert {r.status for r in first.values()} == {"ok"}, [r.error for r in first.values()]
    assert first["Orinoco Tribune"].new_items == 4
    assert first["Mexico Solidarity Media"].new_items == 3  # RSS 1.0 (RDF)
    total = stored(engine)
    assert total == sum(r.new_items for r in first.values())

    second = fetch(config, engine)
    assert {r.status for r in second.values()} == {"not_modified"}, "ETags were sent back"
    assert stored(engine) == total
    conditional = feed_server.requests_for("/feeds/orinoco_tribune.rss")[-1]
    assert conditional.status == 304 and "if-none-match" in conditional.headers

    # A changed document (new ETag) with the same entries stores nothing new.
    feed_server.add(
        "/feeds/orinoco_tribune.rss",
        (Path(__file__).parent / "feeds/orinoco_tribune.rss").read_bytes() + b"\n",
    )
    third = fetch(config, engine)
    assert third["Orinoco Tribune"].status == "ok"
    assert third["Orinoco Tribune"].new_items == 0
    assert stored(engine) == total


def test_broken_feeds_never_stop_the_others(
    tmp_path: Path, feed_server: FeedServer, engine: Engine
) -> None:
    broken = {
        "Not a feed": "/feeds/not_a_feed.html",
        "Server error": "/status/500",
        "Gone": "/status/410",
        "Too slow": "/slow/2/feeds/orinoco_tribune.rss",
        "Busy": "/status/429",
    }
    config = make_config(tmp_path, feed_server, broken)
    reports = fetch(config, engine)
    assert all(reports[name].status == "ok" for name in FEEDS)
    assert reports["Gone"].status == "gone"
    for name in ("Not a feed", "Server error", "Too slow", "Busy"):
        assert reports[name].status == "error", name
        assert reports[name].error
    with Session(engine) as session:
        states = {s.name: s for s in session.exec(select(SourceState))}
    assert states["Gone"].disabled
    assert states["Server error"].consecutive_failures == 1
    assert states["Busy"].retry_after is not None and states["Busy"].retry_after > NOW
    assert states["Orinoco Tribune"].last_success == NOW

    again = fetch(config, engine)
    assert again["Gone"].status == "skipped", "a 410 source is not fetched again"
    assert again["Busy"].status == "skipped", "Retry-After is honoured"
    assert again["Server error"].status == "error"
    with Session(engine) as session:
        assert session.get(SourceState, "Server error").consecutive_failures == 2  # type: ignore[union-attr]


def test_permanent_redirect_updates_the_stored_url(
    tmp_path: Path, feed_server: FeedServer, engine: Engine
) -> None:
    config = make_config(
        tmp_path, feed_server, {"Moved": "/redirect/301/feeds/venezuelanalysis.atom"}
    )
    fetch(config, engine)
    with Session(engine) as session:
        state = session.get(SourceState, "Moved")
    assert state is not None
    assert state.url == feed_server.url("/feeds/venezuelanalysis.atom")
    feed_server.clear_log()
    fetch(config, engine)
    assert not feed_server.requests_for("/redirect/301/feeds/venezuelanalysis.atom")


def test_preview_groups_by_country_and_override_survives_refetch(
    tmp_path: Path, feed_server: FeedServer, engine: Engine
) -> None:
    config = make_config(tmp_path, feed_server)
    fetch(config, engine)
    digest = preview_digest(config, engine, now=NOW)
    assert not digest.is_empty
    paths = write_preview(config, digest, tmp_path / "preview")
    data = json.loads(paths["json"].read_text())
    assert data["subject"] == digest.subject
    codes = [g["code"] for g in data["countries"]]
    assert all(c is None or len(c) == 2 for c in codes)
    first_item = data["countries"][0]["sources"][0]["items"][0]
    assert set(first_item) >= {"title", "link", "published", "countries"}
    html = paths["html"].read_text()
    assert data["countries"][0]["name"] in html
    assert "<script" not in html.lower()

    with session_scope(engine) as session:
        target = session.exec(select(Item).where(Item.source == "Orinoco Tribune")).first()
        assert target is not None and target.id is not None
        item_store.set_country(session, target.id, "ps")
        target_id = target.id
    feed_server.add(
        "/feeds/orinoco_tribune.rss",
        (Path(__file__).parent / "feeds/orinoco_tribune.rss").read_bytes() + b" ",
    )
    fetch(config, engine)
    with session_scope(engine) as session:
        listed = item_store.list_items(session, country="PS")
    assert target_id in [i.id for i in listed]
    assert all(item_store.placement(i)[0] == "PS" for i in listed)
    regrouped = preview_digest(config, engine, now=NOW)
    palestine = next(g for g in regrouped.countries if g.code == "PS")
    assert target_id in [i.id for s in palestine.sources for i in s.items]


def test_preview_as_a_subscriber_shows_only_their_choices(
    tmp_path: Path, feed_server: FeedServer, engine: Engine
) -> None:
    from newsletter import subscribers
    from newsletter.errors import InputError

    config = make_config(tmp_path, feed_server)
    fetch(config, engine)
    with session_scope(engine) as session:
        subscribers.add(session, "ana@example.org", countries="BR")
        subscribers.add(
            session, "bruno@example.org", sources="Venezuelanalysis", known_sources=list(FEEDS)
        )
    everyone = preview_digest(config, engine, now=NOW)
    ana = preview_digest(config, engine, email="ANA@example.org", now=NOW)
    bruno = preview_digest(config, engine, email="bruno@example.org", now=NOW)

    assert 0 < ana.item_count < everyone.item_count
    assert all(
        g.code == "BR" or "BR" in i.countries
        for g in ana.countries
        for s in g.sources
        for i in s.items
    ), "filed under Brazil, or naming it"
    assert {s.name for g in bruno.countries for s in g.sources} == {"Venezuelanalysis"}
    paths = write_preview(config, ana, tmp_path / "ana", to="ana@example.org")
    assert b"To: ana@example.org" in paths["eml"].read_bytes()
    with pytest.raises(InputError):
        preview_digest(config, engine, email="nobody@example.org", now=NOW)
