"""The editor's pages in a real headless Chromium (Debian's package) against uvicorn.

Log in, drop an item, approve, send a test copy; then the issue is sent through a real
SMTP server and the delivered mail lacks the dropped item.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from playwright.async_api import async_playwright, expect

from newsletter import editors, pipeline
from newsletter import issues as lifecycle
from newsletter.config import parse_config
from newsletter.models import IssueState, Item, Subscriber
from newsletter.store import migrate, open_engine, session_scope
from newsletter.web import create_app
from tests.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS
from tests.smtpserver import SmtpServer

PASSWORD = "correct horse battery"
NOW = datetime.now(UTC).replace(microsecond=0)

pytestmark = BROWSER_MARKS


async def serve(app: object) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=0,
        lifespan="off",
        ws="none",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_log_in_drop_approve_send(tmp_path: Path) -> None:
    async with SmtpServer() as smtp:
        base_url = "http://127.0.0.1:0"  # replaced below once the port is known
        engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
        migrate(engine)
        with session_scope(engine) as session:
            editors.add_editor(session, "ana@example.org", PASSWORD)
            session.add(Subscriber(email="reader@example.org"))
            ids = []
            for n, (title, country) in enumerate(
                [("Bolivia lithium plan", "BO"), ("Cuba harvest report", "CU")]
            ):
                slug = title.lower().replace(" ", "-")
                item = Item(
                    source="teleSUR",
                    identity=slug,
                    link=f"https://example.org/{slug}",
                    title=title,
                    excerpt=f"About {title}.",
                    published=NOW - timedelta(hours=n + 1),
                    fetched_at=NOW - timedelta(hours=n + 1),
                    countries=country,
                    primary_country=country,
                )
                session.add(item)
                session.flush()
                ids.append(item.id)
            draft = lifecycle.create_draft(session, now=NOW, max_age_days=7)
            assert draft is not None
            number = draft.id

        def config_for(url: str):  # type: ignore[no-untyped-def]
            return parse_config(
                {
                    "newsletter": {"title": "LA Weekly", "base_url": url, "secret": "s3cret!"},
                    "smtp": {"host": "127.0.0.1", "port": smtp.port},
                    "sources": [
                        {"name": "teleSUR", "url": "https://telesur.example/rss", "country": "VE"}
                    ],
                },
                tmp_path / "newsletter.toml",
                env={},
            )

        # The app needs its base_url before the port is known: serve a shim that
        # forwards to the real app, made once the port is.
        holder: dict[str, object] = {}

        async def shim(scope, receive, send):  # type: ignore[no-untyped-def]
            await holder["app"](scope, receive, send)  # type: ignore[operator]

        async for url in serve(shim):
            base_url = url
            config = config_for(base_url)
            holder["app"] = create_app(config, engine)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(f"{base_url}/editor/issues/{number}")
                assert "/editor/login" in page.url  # no page without a login
                await page.fill("#email", "ana@example.org")
                await page.fill("#password", PASSWORD)
                await page.click("button[type=submit]")
                await expect(page.locator("#state")).to_have_text("draft")
                assert page.url.endswith(f"/editor/issues/{number}")
                mail = page.frame_locator("#mail")
                await expect(mail.get_by_role("link", name="Bolivia lithium plan")).to_be_visible()

                await page.click(f"#item-{ids[0]} button[value=drop]")
                await expect(page.locator(f"#item-{ids[0]}")).to_have_class("dropped")
                await expect(mail.get_by_role("link", name="Cuba harvest report")).to_be_visible()
                await expect(mail.get_by_role("link", name="Bolivia lithium plan")).to_have_count(0)
                await expect(page.locator("#plaintext")).not_to_contain_text("Bolivia")

                await page.click("text=Send a test copy to ana@example.org")
                await expect(page.get_by_text("A test copy was sent to you.")).to_be_visible()

                await page.click("#approve")
                await expect(page.locator("#state")).to_have_text("approved")
                shot = tmp_path / "editor.png"
                await page.screenshot(path=str(shot), full_page=True)
                if os.environ.get("NEWSLETTER_SCREENSHOT"):
                    shutil.copy(shot, os.environ["NEWSLETTER_SCREENSHOT"])
                await browser.close()

        [test_copy] = smtp.handler.received
        assert test_copy.rcpt_tos == ("ana@example.org",)
        assert b"Bolivia lithium" not in test_copy.data

        summary = await pipeline.send_issue(config, engine, number)
        assert summary.delivered == 1 and summary.issue_sent
        delivered = smtp.handler.received[1]
        assert delivered.rcpt_tos == ("reader@example.org",)
        body = delivered.parse().get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "Cuba harvest report" in body and "Bolivia lithium plan" not in body
        text = delivered.parse().get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Cuba harvest report" in text and "Bolivia" not in text
        with session_scope(engine) as session:
            assert lifecycle.get_issue(session, number).state == IssueState.SENT
        engine.dispose()
