"""The /editor pages over real HTTP (httpx on the ASGI app) and a real SQLite database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.routing import Mount, Route

from newsletter import editors
from newsletter import issues as lifecycle
from newsletter.config import Config, parse_config
from newsletter.models import Issue, IssueItem, IssueState, Item, Subscriber
from newsletter.store import migrate, open_engine, session_scope
from newsletter.web import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_config(tmp_path: Path, base_url: str = "http://testserver") -> Config:
    return parse_config(
        {
            "newsletter": {"title": "LA Weekly", "base_url": base_url, "secret": "s3cret-s3cret"},
            "sources": [
                {"name": "teleSUR", "url": "https://telesur.example/rss", "country": "VE"},
                {"name": "Granma", "url": "https://granma.example/rss", "country": "CU"},
            ],
        },
        tmp_path / "newsletter.toml",
        env={},
    )


def add_item(session: object, title: str, country: str, hours: int, source: str = "teleSUR") -> int:
    slug = title.lower().replace(" ", "-")
    item = Item(
        source=source,
        identity=slug,
        link=f"https://example.org/{slug}",
        canonical=f"https://example.org/{slug}",
        title=title,
        excerpt=f"About {title}.",
        published=NOW - timedelta(hours=hours),
        fetched_at=NOW - timedelta(hours=hours),
        countries=country,
        primary_country=country,
    )
    session.add(item)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    assert item.id is not None
    return item.id


@dataclass
class Site:
    config: Config
    engine: Engine
    client: httpx.AsyncClient
    issue: int
    items: list[int]

    async def login(self, email: str = "ana@example.org", password: str = PASSWORD) -> None:
        page = await self.client.get("/editor/login")
        token = CSRF.search(page.text)
        assert token, page.text
        response = await self.client.post(
            "/editor/login",
            data={"email": email, "password": password, "csrf": token[1], "next": "/editor/"},
        )
        assert response.status_code == 303, response.text

    async def token(self, path: str) -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found
        return found[1]

    def entry(self, item_id: int) -> IssueItem:
        with session_scope(self.engine) as session:
            entry = session.get(IssueItem, (self.issue, item_id))
            assert entry is not None
            return entry

    def state(self) -> Issue:
        with session_scope(self.engine) as session:
            issue = session.get(Issue, self.issue)
            assert issue is not None
            return issue


async def open_site(tmp_path: Path, base_url: str = "http://testserver") -> AsyncIterator[Site]:
    config = make_config(tmp_path, base_url)
    engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        editors.add_editor(session, "ana@example.org", PASSWORD)
        ids = [
            add_item(session, "Bolivia lithium plan", "BO", 1),
            add_item(session, "Cuba harvest report", "CU", 2, source="Granma"),
            add_item(session, "Maduro speaks in Caracas", "VE", 3),
        ]
        session.add(Subscriber(email="cu@example.org", countries="CU"))
        draft = lifecycle.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        number = draft.id
    transport = httpx.ASGITransport(app=create_app(config, engine))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield Site(config, engine, client, number, ids)
    engine.dispose()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in open_site(tmp_path):
        yield s


def editor_paths(site: Site) -> set[tuple[str, str]]:
    """Every (method, path) under /editor, from the application's own routing table."""
    app = site.client._transport.app  # type: ignore[attr-defined]
    found = set()
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/editor":
            for sub in route.routes:
                assert isinstance(sub, Route)
                for method in sub.methods or ():
                    if method != "HEAD":
                        found.add((method, "/editor" + sub.path))
        elif isinstance(route, Route) and route.path.startswith("/editor"):
            found.add(("GET", route.path))
    return found


PUBLIC = {("GET", "/editor/login"), ("POST", "/editor/login"), ("GET", "/editor/editor.css")}


async def test_every_editor_route_needs_a_login(site: Site) -> None:
    paths = editor_paths(site)
    assert len(paths) >= 12
    await site.client.get("/editor/login")  # a CSRF cookie, so only the login is missing
    for method, path in sorted(paths - PUBLIC):
        url = path.replace("{number:int}", str(site.issue)).replace(
            "{item:int}", str(site.items[0])
        )
        if method == "GET":
            response = await site.client.get(url)
            if path == "/editor":
                assert response.status_code == 307
                response = await site.client.get("/editor/")
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/editor/login?next=%2Feditor%2F")
            assert "Lithium" not in response.text
        else:
            response = await site.client.post(url, data={"action": "drop"})
            assert response.status_code == 403, (method, path)
    assert not site.entry(site.items[0]).dropped
    assert site.state().state == IssueState.DRAFT


async def test_login_wrong_password_open_redirect_and_cookie_flags(site: Site) -> None:
    token = await site.token("/editor/login")
    bad = await site.client.post(
        "/editor/login", data={"email": "ana@example.org", "password": "nope", "csrf": token}
    )
    assert bad.status_code == 401 and "Wrong email or password" in bad.text
    assert "newsletter_editor" not in bad.headers.get("set-cookie", "")
    no_csrf = await site.client.post(
        "/editor/login", data={"email": "ana@example.org", "password": PASSWORD}
    )
    assert no_csrf.status_code == 403
    good = await site.client.post(
        "/editor/login",
        data={
            "email": "ana@example.org",
            "password": PASSWORD,
            "csrf": token,
            "next": "//evil.example/editor/",
        },
    )
    assert good.status_code == 303 and good.headers["location"] == "/editor/"
    cookie = good.headers["set-cookie"]
    assert "newsletter_editor=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/editor" in cookie and "Secure" not in cookie
    index = await site.client.get("/editor/")
    assert index.status_code == 200 and "Bolivia lithium plan" not in index.text
    assert f'href="/editor/issues/{site.issue}"' in index.text


async def test_session_cookie_is_secure_on_https(tmp_path: Path) -> None:
    async for site in open_site(tmp_path, "https://news.example.org"):
        token = await site.token("/editor/login")
        good = await site.client.post(
            "/editor/login", data={"email": "ana@example.org", "password": PASSWORD, "csrf": token}
        )
        assert "Secure" in good.headers["set-cookie"]
        assert (await site.client.get("/editor/")).status_code == 200


async def test_csrf_is_required_on_every_form(site: Site) -> None:
    login_token = await site.token("/editor/login")  # good, but for another form
    await site.login()
    url = f"/editor/issues/{site.issue}/items/{site.items[0]}"
    assert (await site.client.post(url, data={"action": "drop"})).status_code == 403
    for forged in (login_token, "x" + login_token, ""):
        response = await site.client.post(url, data={"action": "drop", "csrf": forged})
        assert response.status_code == 403
    assert not site.entry(site.items[0]).dropped
    for action in ("text", "approve", "discard", "test"):
        response = await site.client.post(f"/editor/issues/{site.issue}/{action}", data={})
        assert response.status_code == 403, action
    assert (await site.client.post("/editor/draft")).status_code == 403
    assert (await site.client.post("/editor/logout")).status_code == 403
    assert site.state().state == IssueState.DRAFT


async def test_shape_approve_and_the_snapshot_is_what_was_approved(site: Site) -> None:
    await site.login()
    page_url = f"/editor/issues/{site.issue}"
    page = await site.client.get(page_url)
    assert page.status_code == 200
    for title in ("Bolivia lithium plan", "Cuba harvest report", "Maduro speaks in Caracas"):
        assert title in page.text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text
    assert "Granma" in page.text and "sent nothing" not in page.text.split('id="health"')[0]
    token = CSRF.search(page.text)[1]  # type: ignore[index]

    async def post(path: str, **data: str) -> httpx.Response:
        response = await site.client.post(page_url + path, data={"csrf": token, **data})
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith(page_url)
        return response

    lithium, harvest, maduro = site.items
    await post(f"/items/{lithium}", action="drop", anchor="item-1")
    await post(f"/items/{maduro}", action="move", country="caribbean")
    await post(f"/items/{harvest}", action="pin")
    await post("/text", subject="Harvests and speeches", note="A **big** week <script>x</script>")
    assert site.entry(lithium).dropped and site.entry(harvest).pinned
    assert site.entry(maduro).country == "region:caribbean"

    page = await site.client.get(page_url + "?done=saved")
    assert "Saved." in page.text and "Harvests and speeches" in page.text
    assert "The Caribbean" in page.text
    mail = await site.client.get(page_url + "/mail.html")
    assert mail.status_code == 200
    assert "sandbox" in mail.headers["content-security-policy"]
    assert "script-src" not in mail.headers["content-security-policy"]
    assert "Cuba harvest report" in mail.text and "Bolivia lithium plan" not in mail.text
    assert "<strong>big</strong>" in mail.text and "<script>" not in mail.text
    assert "http://testserver/unsubscribe" in mail.text
    # the plaintext sits beside the HTML
    assert "Harvests and speeches" not in page.text.split('id="plaintext"')[1][:40]
    assert "* Cuba harvest report" in page.text.split('id="plaintext"')[1]

    # "as subscriber X": only Cuba
    as_cuba = await site.client.get(page_url + "/mail.html?as=cu@example.org")
    assert "Cuba harvest report" in as_cuba.text and "Maduro" not in as_cuba.text
    variant_page = await site.client.get(page_url + "?countries=CU")
    assert "mail.html?countries=CU" in variant_page.text
    assert "No subscriber" in (await site.client.get(page_url + "?as=who@example.org")).text

    bad = await site.client.post(
        page_url + f"/items/{maduro}", data={"csrf": token, "action": "move", "country": "XX"}
    )
    assert bad.status_code == 409 and "neither" in bad.text

    await post("/approve", send_after="2030-01-02T07:00")
    issue = site.state()
    assert issue.state == IssueState.APPROVED
    assert issue.send_after == datetime(2030, 1, 2, 7, 0, tzinfo=UTC)
    refused = await site.client.post(
        page_url + f"/items/{harvest}", data={"csrf": token, "action": "drop"}
    )
    assert refused.status_code == 409 and "only a draft can be edited" in refused.text
    assert not site.entry(harvest).dropped
    page = await site.client.get(page_url)
    assert 'id="approve"' not in page.text and "to be sent after 2030-01-02 07:00" in page.text

    with session_scope(site.engine) as session:
        approved = lifecycle.get_issue(session, site.issue)
        _, rendered = lifecycle.render_issue(session, approved, site.config)
    assert "Bolivia lithium plan" not in rendered.html + rendered.text
    assert "Cuba harvest report" in rendered.text

    await post("/discard")
    assert site.state().state == IssueState.DISCARDED


async def test_make_draft_logout_and_removed_editor(site: Site) -> None:
    await site.login()
    token = await site.token("/editor/")
    made = await site.client.post("/editor/draft", data={"csrf": token})
    assert made.headers["location"] == f"/editor/issues/{site.issue}?done=draft"
    daily = await site.client.post("/editor/draft", data={"csrf": token, "kind": "daily"})
    assert daily.status_code == 303 and daily.headers["location"] != made.headers["location"]
    assert (await site.client.get("/editor/issues/999")).status_code == 404

    out = await site.client.post("/editor/logout", data={"csrf": token})
    assert out.status_code == 303
    assert (await site.client.get("/editor/")).status_code == 303

    await site.login()
    assert (await site.client.get("/editor/")).status_code == 200
    with session_scope(site.engine) as session:
        editors.remove_editor(session, "ana@example.org")
    assert (await site.client.get("/editor/")).status_code == 303


async def test_failed_logins_are_throttled_per_account_then_per_client(site: Site) -> None:
    token = await site.token("/editor/login")

    async def attempt(email: str, password: str) -> httpx.Response:
        data = {"email": email, "password": password, "csrf": token}
        return await site.client.post("/editor/login", data=data)

    for _ in range(5):
        assert (await attempt("ana@example.org", "guess")).status_code == 401
    # the right password is refused too now, without being checked
    locked = await attempt("ANA@example.org ", PASSWORD)
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "newsletter_editor" not in locked.headers.get("set-cookie", "")
    # the same client trying other accounts: 20 failures in all, then every account is refused
    for n in range(15):
        assert (await attempt(f"x{n}@example.org", "guess")).status_code == 401
    assert (await attempt("nobody@example.org", "guess")).status_code == 429
