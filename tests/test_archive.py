"""The public archive: pages, the Atom feed (parsed by feedparser) and the static export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlalchemy.engine import Engine

from newsletter import archive
from newsletter import issues as lifecycle
from newsletter.cli import main
from newsletter.config import Config, parse_config
from newsletter.models import Issue, IssueState, Item
from newsletter.store import migrate, open_engine, session_scope
from newsletter.web import create_app

NOW = datetime.now(UTC).replace(microsecond=0)


def make_config(tmp_path: Path) -> Config:
    return parse_config(
        {
            "newsletter": {
                "title": "LA Weekly & Friends",
                "base_url": "https://news.example.org",
                "secret": "s3cret-s3cret",
                "database": "sqlite:///subscribers.db",
            }
        },
        tmp_path / "newsletter.toml",
        env={},
    )


def make_issue(engine: Engine, titles: list[str], state: str, sent: datetime | None) -> int:
    with session_scope(engine) as session:
        for n, title in enumerate(titles):
            slug = title.lower().replace(" ", "-")
            session.add(
                Item(
                    source="Granma",
                    identity=slug,
                    link=f"https://example.org/{slug}",
                    title=title,
                    published=NOW - timedelta(hours=n + 1),
                    fetched_at=NOW - timedelta(hours=n + 1),
                    countries="CU",
                    primary_country="CU",
                )
            )
        session.flush()
        draft = lifecycle.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        lifecycle.approve(session, draft.id, NOW)
        issue = session.get(Issue, draft.id)
        assert issue is not None
        issue.state = state
        issue.sent_at = sent
        session.add(issue)
        return draft.id


@pytest.fixture
def db(tmp_path: Path) -> tuple[Config, Engine, int, int, int]:
    config = make_config(tmp_path)
    engine = open_engine(config.database_url)
    migrate(engine)
    first = make_issue(
        engine, ["Havana <harvest> & rain"], IssueState.SENT, NOW - timedelta(days=7)
    )
    second = make_issue(engine, ["Cuba sugar plan", "Cuba school year"], IssueState.SENT, NOW)
    pending = make_issue(engine, ["Not yet sent story"], IssueState.APPROVED, None)
    return config, engine, first, second, pending


async def test_archive_pages_and_feed(db: tuple[Config, Engine, int, int, int]) -> None:
    config, engine, first, second, pending = db
    transport = httpx.ASGITransport(app=create_app(config, engine))
    async with httpx.AsyncClient(transport=transport, base_url="https://news.example.org") as c:
        index = await c.get("/archive")
        assert index.status_code == 200
        assert index.text.index(f'href="/archive/{second}"') < index.text.index(
            f'href="/archive/{first}"'
        )
        assert "LA Weekly &amp; Friends" in index.text and "Not yet sent" not in index.text
        assert (await c.get("/archive/")).text == index.text

        page = await c.get(f"/archive/{first}")
        assert page.status_code == 200
        assert "Havana &lt;harvest&gt; &amp; rain" in page.text
        assert 'href="https://news.example.org/unsubscribe"' in page.text
        assert 'href="https://news.example.org/subscribe"' in page.text
        assert "NLX" not in page.text and "/unsubscribe/" not in page.text  # no token link
        assert "style-src 'unsafe-inline'" in page.headers["content-security-policy"]
        assert "script" not in page.headers["content-security-policy"]
        for missing in (pending, 999):
            assert (await c.get(f"/archive/{missing}")).status_code == 404

        feed = await c.get("/archive/feed.xml")
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "LA Weekly & Friends"
    assert [e.link for e in parsed.entries] == [
        f"https://news.example.org/archive/{second}",
        f"https://news.example.org/archive/{first}",
    ]
    assert parsed.entries[1].title.startswith("LA Weekly & Friends: 1 story")
    assert "Havana &lt;harvest&gt; &amp; rain" in parsed.entries[1].content[0].value
    assert parsed.entries[0].published_parsed[:3] == NOW.timetuple()[:3]


def test_export_writes_the_same_as_the_web(
    db: tuple[Config, Engine, int, int, int], tmp_path: Path
) -> None:
    config, engine, first, second, _ = db
    (tmp_path / "newsletter.toml").write_text(
        '[newsletter]\ntitle = "LA Weekly & Friends"\nbase_url = "https://news.example.org"\n'
        'secret = "s3cret-s3cret"\n'
    )
    out = tmp_path / "public" / "archive"
    assert main(["--config", str(tmp_path / "newsletter.toml"), "archive", "export", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        ["index.html", "feed.xml", f"{first}/index.html", f"{second}/index.html"]
    )
    with session_scope(engine) as session:
        entries = lifecycle.archive_entries(session, config)
    site = archive.Site("LA Weekly & Friends", "https://news.example.org")
    assert (out / "index.html").read_text() == archive.index_page(site, entries)
    assert (out / str(first) / "index.html").read_text() == entries[1].html
    assert not feedparser.parse((out / "feed.xml").read_bytes()).bozo


def test_empty_feed_is_valid() -> None:
    site = archive.Site("T", "http://localhost:8000")
    parsed = feedparser.parse(archive.atom_feed(site, [], now=NOW).encode())
    assert not parsed.bozo and parsed.entries == []
    assert "No issue has been sent yet" in archive.index_page(site, [])
