"""``newsletter demo``: the whole pipeline, offline, on the embedded defaults.

A temporary folder gets a newsletter.toml and a SQLite database; the sample feeds bundled
in ``newsletter/samples/`` are served by a local HTTP server (127.0.0.1, a free port) so
the real fetch path runs; a few sample subscribers are added; an in-process aiosmtpd
server (127.0.0.1, a free port) captures the mail into ``mail/*.eml``. The sample items
are dated in the week ending 2026-11-20, so the demo runs "now" as the day after.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from newsletter import issues, pipeline
from newsletter.config import load_config
from newsletter.mailer.send import SendSummary
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.store import migrate, open_engine, session_scope

DEMO_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SUBSCRIBERS = (
    ("ana@example.org", "", ""),  # everything
    ("bruno@example.org", "VE,CU", ""),  # two countries
    ("carla@example.org", "", "Brasil de Fato,Kawsachun News"),  # two outlets
)


@dataclass
class DemoResult:
    directory: Path
    subject: str = ""
    preview: dict[str, Path] = field(default_factory=dict)
    messages: list[Path] = field(default_factory=list)
    summary: SendSummary | None = None
    note: str = ""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(path: Path) -> Iterator[str]:
    """An HTTP server for ``path`` on 127.0.0.1 (a free port); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(path)))
    thread = threading.Thread(target=server.serve_forever, name="demo-feeds", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class MailCatcher:
    """An aiosmtpd handler that writes every message it accepts to ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        for rcpt in envelope.rcpt_tos:
            path = self.folder / f"{len(self.saved) + 1:03d}-{rcpt}.eml"
            path.write_bytes(bytes(data))
            self.saved.append(path)
        return "250 2.0.0 OK: captured by the demo"


def write_config(directory: Path, feeds_url: str, smtp_port: int, samples: Path) -> Path:
    catalogue = tomllib.loads((samples / "sources.toml").read_text("utf-8"))
    lines = [
        "# Written by `newsletter demo`: everything is local and temporary.",
        "[newsletter]",
        'title = "Latin America Weekly"',
        'from = "Latin America Weekly <digest@example.org>"',
        'base_url = "http://localhost:8000"',
        'database = "sqlite:///demo.db"',
        f'secret = "{secrets.token_urlsafe(24)}"',
        "",
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {smtp_port}",
        "concurrency = 2",
        "timeout = 10.0",
        "",
        "[fetch]",
        "timeout = 10.0",
    ]
    for source in catalogue.get("sources", []):
        lines += [
            "",
            "[[sources]]",
            f"name = {_toml_str(source['name'])}",
            f"url = {_toml_str(feeds_url + '/' + source['file'])}",
            f"country = {_toml_str(source['country'])}",
        ]
    path = directory / "newsletter.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def run_demo(directory: Path) -> DemoResult:
    """Run fetch -> digest -> render -> send against local servers; files go to ``directory``."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    result = DemoResult(directory)
    catcher = MailCatcher(directory / "mail")
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(
        lambda: SMTP(catcher, hostname="demo.localhost", data_size_limit=None, loop=loop),
        "127.0.0.1",
        0,
    )
    smtp_port = smtp_server.sockets[0].getsockname()[1]
    try:
        with (
            resources.as_file(resources.files("newsletter") / "samples") as samples,
            serve_directory(samples) as feeds_url,
        ):
            config = load_config(write_config(directory, feeds_url, smtp_port, samples))
            engine = open_engine(config.database_url)
            try:
                migrate(engine)
                with session_scope(engine) as session:
                    for email, countries, sources in SUBSCRIBERS:
                        session.add(
                            Subscriber(
                                email=email,
                                status=SubscriberStatus.ACTIVE,
                                countries=countries,
                                sources=sources,
                                confirmed_at=DEMO_NOW,
                            )
                        )
                report = await pipeline.run(config, engine, DEMO_NOW)
                result.summary, result.note = report.summary, report.note
                if report.issue_id is not None:
                    with session_scope(engine) as session:
                        issue = issues.get_issue(session, report.issue_id)
                        digest = issues.issue_digest(
                            session, issue, title=config.title, settings=config.digest
                        )
                    result.subject = digest.subject
                    result.preview = pipeline.write_preview(config, digest, directory / "preview")
            finally:
                engine.dispose()
    finally:
        smtp_server.close()
        await smtp_server.wait_closed()
    result.messages = list(catcher.saved)
    return result
