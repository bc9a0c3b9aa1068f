"""The web side over real HTTP (httpx's ASGI transport), a real SQLite database and a real
SMTP server (aiosmtpd on 127.0.0.1, port 0) for the confirmation mails."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from newsletter import lists
from newsletter import subscribers as subs
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import Subscriber
from newsletter.store import session_scope
from newsletter.tokens import Signer
from newsletter.web import create_app
from tests.smtpserver import SmtpServer
from tests.test_subscribers import make_config

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    config: Config
    engine: Engine
    app: Starlette
    client: httpx.AsyncClient
    smtp: SmtpServer

    def add(self, email: str, **fields: str) -> Subscriber:
        with session_scope(self.engine) as session:
            return subs.add(session, email, known_sources=["Granma", "Brasil de Fato"], **fields)

    def get(self, email: str) -> Subscriber | None:
        with session_scope(self.engine) as session:
            return subs.get(session, email)

    def token(self, purpose: str, sub: Subscriber) -> str:
        assert sub.id is not None
        return lists.signer(self.config).sign(purpose, sub.id, sub.email)  # type: ignore[arg-type]

    async def csrf(self, path: str) -> str:
        page = await self.client.get(path)
        assert page.status_code == 200
        match = CSRF.search(page.text)
        assert match, page.text
        return match.group(1)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with SmtpServer() as smtp:
        config, engine = make_config(tmp_path, smtp_port=smtp.port)
        app = create_app(config, engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Site(config, engine, app, client, smtp)
        engine.dispose()


# --- pages and headers ---------------------------------------------------------------------


async def test_pages_have_security_headers_and_lang(site: Site) -> None:
    for path in ("/", "/subscribe", "/unsubscribe", "/nowhere"):
        r = await site.client.get(path)
        assert r.status_code == (404 if path == "/nowhere" else 200), path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert '<html lang="en">' in r.text
        assert 'name="viewport"' in r.text
    css = await site.client.get("/site.css")
    assert css.headers["content-type"].startswith("text/css") and ":focus-visible" in css.text


async def test_unsubscribe_info_page_names_the_mailto(site: Site) -> None:
    r = await site.client.get("/unsubscribe")
    assert "mailto:unsubscribe@example.org?subject=unsubscribe" in r.text


def test_create_app_needs_a_secret(tmp_path: Path) -> None:
    config, engine = make_config(tmp_path)
    with pytest.raises(ConfigError, match="secret"):
        create_app(replace(config, secret=""), engine)
    engine.dispose()


def test_list_id_is_title_and_from_domain(tmp_path: Path) -> None:
    config, engine = make_config(tmp_path)
    engine.dispose()
    assert lists.list_id(config) == "latin-america-weekly.example.org"
    assert lists.list_id_header(config) == "Latin America Weekly <latin-america-weekly.example.org>"
    url = lists.unsubscribe_url(config, 7, "a@example.org")
    assert url.startswith("http://testserver/unsubscribe/")


# --- one-click unsubscribe -----------------------------------------------------------------


async def test_get_shows_a_button_and_changes_nothing(site: Site) -> None:
    sub = site.add("ana@example.org")
    r = await site.client.get(f"/unsubscribe/{site.token('unsubscribe', sub)}")
    assert r.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in r.text
    assert "<button" in r.text and "ana@example.org" in r.text
    after = site.get("ana@example.org")
    assert after is not None and after.status == "active"


async def test_one_click_post_unsubscribes_at_once(site: Site) -> None:
    sub = site.add("ana@example.org")
    path = f"/unsubscribe/{site.token('unsubscribe', sub)}"
    r = await site.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    assert "set-cookie" not in r.headers and "location" not in r.headers
    assert "You are unsubscribed" in r.text
    after = site.get("ana@example.org")
    assert after is not None and after.status == "unsubscribed" and after.unsubscribed_at
    # again: still 200, nothing else changes
    again = await site.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert site.get("ana@example.org").unsubscribed_at == after.unsubscribed_at  # type: ignore[union-attr]


async def test_one_click_multipart_body_as_some_providers_send(site: Site) -> None:
    sub = site.add("ana@example.org")
    r = await site.client.post(
        f"/unsubscribe/{site.token('unsubscribe', sub)}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert r.status_code == 200
    assert site.get("ana@example.org").status == "unsubscribed"  # type: ignore[union-attr]


async def test_bad_tokens_get_4xx_and_change_nothing(site: Site) -> None:
    sub = site.add("ana@example.org")
    assert sub.id is not None
    good = site.token("unsubscribe", sub)
    other_list = Signer(site.config.secret, "another-list.example.org").sign(
        "unsubscribe", sub.id, sub.email
    )
    other_secret = Signer("not-the-secret", lists.list_id(site.config)).sign(
        "unsubscribe", sub.id, sub.email
    )
    wrong_purpose = site.token("preferences", sub)
    other_address = lists.signer(site.config).sign("unsubscribe", sub.id, "eve@example.org")
    body = {"List-Unsubscribe": "One-Click"}
    for token in (good[:-4], good[:20], other_list, other_secret, wrong_purpose, "x", good + "A"):
        r = await site.client.post(f"/unsubscribe/{token}", data=body)
        assert r.status_code == 400, token
        assert "This link does not work" in r.text
    r = await site.client.post(f"/unsubscribe/{other_address}", data=body)
    assert r.status_code == 404
    r = await site.client.post(f"/unsubscribe/{good}", data={"List-Unsubscribe": "yes"})
    assert r.status_code == 400
    r = await site.client.post(f"/unsubscribe/{good}")
    assert r.status_code == 400
    assert site.get("ana@example.org").status == "active"  # type: ignore[union-attr]


async def test_token_dies_with_the_row(site: Site) -> None:
    sub = site.add("ana@example.org")
    token = site.token("unsubscribe", sub)
    with session_scope(site.engine) as session:
        subs.remove(session, "ana@example.org", purge=True)
    r = await site.client.get(f"/unsubscribe/{token}")
    assert r.status_code == 404


# --- subscribe and confirm -----------------------------------------------------------------


def confirm_link(site: Site, n: int = -1) -> str:
    msg = site.smtp.handler.received[n].parse()
    body = msg.get_content()
    match = re.search(r"http://testserver(/confirm/\S+)", body)
    assert match, body
    return match.group(1)


async def test_double_opt_in(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    r = await site.client.post(
        "/subscribe",
        data={"csrf": csrf, "email": " Nueva@Example.ORG ", "countries": ["ve", "CU"]},
    )
    assert r.status_code == 200 and "Check your email" in r.text
    sub = site.get("nueva@example.org")
    assert sub is not None and sub.status == "pending" and sub.countries == "VE,CU"
    assert sub.confirmation_sent_at is not None and sub.confirmed_at is None

    assert len(site.smtp.handler.received) == 1
    mail = site.smtp.handler.received[0]
    assert mail.rcpt_tos == ("nueva@example.org",)
    msg = mail.parse()
    assert msg["Subject"] == "Confirm your subscription to Latin America Weekly"
    assert msg["From"] == "Latin America Weekly <digest@example.org>"

    # opening the link (or a mail scanner following it) only shows the button
    r = await site.client.get(confirm_link(site))
    assert r.status_code == 200 and "Yes, subscribe me" in r.text
    assert f'<form method="post" action="{confirm_link(site)}">' in r.text
    assert site.get("nueva@example.org").status == "pending"  # type: ignore[union-attr]
    r = await site.client.post(confirm_link(site))
    assert r.status_code == 200 and "You are subscribed" in r.text
    assert "/preferences/" in r.text
    sub = site.get("nueva@example.org")
    assert sub is not None and sub.status == "active" and sub.confirmed_at is not None
    r = await site.client.get(confirm_link(site))
    assert "already subscribed" in r.text


async def test_resubmitting_does_not_spam(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    for _ in range(5):
        r = await site.client.post("/subscribe", data={"csrf": csrf, "email": "a@example.org"})
        assert r.status_code == 200
    assert len(site.smtp.handler.received) == 1
    with session_scope(site.engine) as session:
        sub = subs.show(session, "a@example.org")
        assert sub.confirmation_sent_at is not None
        sub.confirmation_sent_at -= timedelta(minutes=16)
        session.add(sub)
    r = await site.client.post("/subscribe", data={"csrf": csrf, "email": "A@example.org"})
    assert len(site.smtp.handler.received) == 2
    # an active subscriber gets the same answer and no mail, and their choices stay
    site.add("on@example.org", countries="MX")
    r = await site.client.post(
        "/subscribe", data={"csrf": csrf, "email": "on@example.org", "countries": "VE"}
    )
    assert r.status_code == 200 and "Check your email" in r.text
    assert len(site.smtp.handler.received) == 2
    assert site.get("on@example.org").countries == "MX"  # type: ignore[union-attr]


async def test_subscribe_rejects_bad_input_and_missing_csrf(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    r = await site.client.post("/subscribe", data={"csrf": csrf, "email": "not an address"})
    assert r.status_code == 400
    assert 'role="alert"' in r.text and 'aria-invalid="true"' in r.text
    assert 'value="not an address"' in r.text
    r = await site.client.post(
        "/subscribe", data={"csrf": csrf, "email": "a@example.org", "countries": "XX"}
    )
    assert r.status_code == 400 and "&#39;XX&#39;" in r.text
    r = await site.client.post("/subscribe", data={"email": "a@example.org"})
    assert r.status_code == 403
    r = await site.client.post("/subscribe", data={"csrf": "forged", "email": "a@example.org"})
    assert r.status_code == 403
    # a token from another browser (another cookie) does not work here
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app), base_url="http://testserver"
    ) as other:
        r = await other.post("/subscribe", data={"csrf": csrf, "email": "a@example.org"})
        assert r.status_code == 403
    assert site.get("a@example.org") is None
    assert site.smtp.handler.received == []


async def test_confirm_link_older_than_the_unsubscription_is_refused(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    await site.client.post("/subscribe", data={"csrf": csrf, "email": "a@example.org"})
    link = confirm_link(site)
    assert (await site.client.post(link)).status_code == 200
    with session_scope(site.engine) as session:
        subs.remove(session, "a@example.org")
    for method in ("GET", "POST"):
        r = await site.client.request(method, link)
        assert r.status_code == 410
    assert site.get("a@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    # subscribing again sends a new link, which works
    with session_scope(site.engine) as session:
        sub = subs.show(session, "a@example.org")
        sub.confirmation_sent_at -= timedelta(hours=1)  # type: ignore[operator]
        session.add(sub)
    await site.client.post("/subscribe", data={"csrf": csrf, "email": "a@example.org"})
    assert (await site.client.post(confirm_link(site))).status_code == 200
    assert site.get("a@example.org").status == "active"  # type: ignore[union-attr]


async def test_smtp_down_is_503_and_can_be_retried(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    await site.smtp.close()
    r = await site.client.post("/subscribe", data={"csrf": csrf, "email": "a@example.org"})
    assert r.status_code == 503
    sub = site.get("a@example.org")
    assert sub is not None and sub.status == "pending" and sub.confirmation_sent_at is None


async def test_forged_confirm_token_is_refused(site: Site) -> None:
    sub = site.add("p@example.org", status="pending")
    forged = Signer(site.config.secret, "other.example.org").sign("confirm", sub.id or 0, sub.email)
    unsub_token = site.token("unsubscribe", sub)
    for method in ("GET", "POST"):
        assert (await site.client.request(method, f"/confirm/{forged}")).status_code == 400
        assert (await site.client.request(method, f"/confirm/{unsub_token}")).status_code == 400
    assert site.get("p@example.org").status == "pending"  # type: ignore[union-attr]


# --- preferences ---------------------------------------------------------------------------


async def test_preferences_change_countries_sources_frequency(site: Site) -> None:
    sub = site.add("ana@example.org", countries="VE")
    path = f"/preferences/{site.token('preferences', sub)}"
    page = await site.client.get(path)
    assert page.status_code == 200
    assert 'value="VE" checked' in page.text and 'value="weekly" checked' in page.text
    assert 'value="Brasil de Fato"' in page.text
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = await site.client.post(
        path,
        data={
            "csrf": csrf,
            "countries": ["CU", "BR"],
            "sources": ["Brasil de Fato"],
            "frequency": "daily",
        },
    )
    assert r.status_code == 200 and "Saved" in r.text
    after = site.get("ana@example.org")
    assert after is not None
    assert (after.countries, after.sources, after.frequency) == ("CU,BR", "Brasil de Fato", "daily")
    assert after.status == "active"

    r = await site.client.post(path, data={"csrf": csrf, "sources": "Nowhere"})
    assert r.status_code == 400 and "unknown source" in r.text
    r = await site.client.post(path, data={"csrf": csrf, "frequency": "hourly"})
    assert r.status_code == 400
    r = await site.client.post(path, data={"frequency": "weekly"})
    assert r.status_code == 403
    bad = await site.client.get(f"/preferences/{site.token('unsubscribe', sub)}")
    assert bad.status_code == 400
    after = site.get("ana@example.org")
    assert after is not None and after.frequency == "daily"


async def test_simultaneous_submissions_make_one_row_and_one_mail(site: Site) -> None:
    csrf = await site.csrf("/subscribe")
    replies = await asyncio.gather(
        *(
            site.client.post("/subscribe", data={"csrf": csrf, "email": "same@example.org"})
            for _ in range(6)
        )
    )
    assert [r.status_code for r in replies] == [200] * 6
    assert len(site.smtp.handler.received) == 1
    assert site.get("same@example.org") is not None


async def test_favicon_is_no_content(site: Site) -> None:
    r = await site.client.get("/favicon.ico")
    assert r.status_code == 204
