"""Shared fixtures. Stage-specific helpers live in their own modules under tests/.

Async tests run on both event loops: uvloop's and asyncio's. ``engine`` runs a test on every
database backend: a fresh SQLite file, and a fresh schema on the PostgreSQL server named by
``NEWSLETTER_TEST_POSTGRES_URL``. Without that server the PostgreSQL runs skip with the
reason; under CI (``CI=true``) they fail instead, so a missing server can never pass silently.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy
import trustme
import uvloop
from sqlalchemy.engine import Engine, make_url

from newsletter.store import migrate, open_engine

POSTGRES_ENV = "NEWSLETTER_TEST_POSTGRES_URL"
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
EVENT_LOOPS: dict[str, LoopFactory] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """Every async test runs on both loops: uvloop, which the commands run on where it is
    installed (newsletter.eventloop), and asyncio's own, which they fall back to."""
    return EVENT_LOOPS


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    """A throwaway CA for TLS against the local servers (https feeds, SMTP)."""
    return trustme.CA()


@pytest.fixture
def server_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    """A local server's side of TLS: a certificate for 127.0.0.1 from the throwaway CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def client_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the throwaway CA (and nothing else)."""
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    return context


@pytest.fixture
def ca_in_environment(
    certificate_authority: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The throwaway CA trusted through SSL_CERT_FILE, the way an admin trusts a private CA."""
    with certificate_authority.cert_pem.tempfile() as path:
        monkeypatch.setenv("SSL_CERT_FILE", path)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        yield


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    reason = None
    if not url:
        reason = f"{POSTGRES_ENV} is not set"
    else:
        try:
            admin = sqlalchemy.create_engine(url)
            with admin.connect():
                pass
            admin.dispose()
        except sqlalchemy.exc.OperationalError as exc:
            reason = f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {exc.orig}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires PostgreSQL: {reason}")
        pytest.skip(reason)
    assert url is not None
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'subscribers.db'}"
        return
    admin_url = _postgres_admin_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database on each backend."""
    engine = open_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_url(database_url: str) -> str:
    """A migrated database on each backend, by URL, for tests that open one engine per
    racer (threads or processes competing for a lease or a slot)."""
    engine = open_engine(database_url)
    migrate(engine)
    engine.dispose()
    return database_url
