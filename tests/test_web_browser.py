"""A real headless browser (Debian's chromium, driven by Playwright) against uvicorn on a
free port: open an unsubscribe link, press the button, and the subscriber is unsubscribed.

Nothing downloads a browser: the system's /usr/bin/chromium is used, or the test skips.
Set NEWSLETTER_SCREENSHOTS=DIR to keep phone-width screenshots of the pages.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from newsletter import lists
from newsletter import subscribers as subs
from newsletter.config import Config
from newsletter.store import session_scope
from newsletter.web import create_app
from tests.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS
from tests.test_subscribers import make_config

PHONE = {"width": 390, "height": 844}

pytestmark = BROWSER_MARKS


class Server:
    """uvicorn in a thread, on a socket bound to 127.0.0.1 port 0."""

    def __init__(self, app: object) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Config, object, str]]:
    config, engine = make_config(tmp_path)
    with Server(create_app(config, engine)) as server:
        yield config, engine, f"http://127.0.0.1:{server.port}"
    engine.dispose()


def test_unsubscribe_in_a_real_browser(served: tuple[Config, object, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    config, engine, base = served
    with session_scope(engine) as session:  # type: ignore[arg-type]
        sub = subs.add(session, "ana@example.org", countries="VE")
        assert sub.id is not None
        token = lists.signer(config).sign("unsubscribe", sub.id, sub.email)
    shots = Path(os.environ.get("NEWSLETTER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(f"{base}/subscribe")
            assert page.get_by_label("Your email address").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(shots / "subscribe-phone.png"), full_page=True)

            page.goto(f"{base}/unsubscribe/{token}")
            button = page.get_by_role("button", name="Unsubscribe")
            assert button.is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(shots / "unsubscribe-phone.png"), full_page=True)
            button.click()
            page.wait_for_load_state()
            assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
            page.screenshot(path=str(shots / "unsubscribed-phone.png"), full_page=True)
            assert errors == []  # no CSP violations, no script errors
        finally:
            browser.close()

    with session_scope(engine) as session:  # type: ignore[arg-type]
        after = subs.show(session, "ana@example.org")
        assert after.status == "unsubscribed" and after.unsubscribed_at is not None
