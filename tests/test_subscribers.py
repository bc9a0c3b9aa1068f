"""Subscribers: the library, the admin CLI and CSV import/export, on a real SQLite database."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter import subscribers as subs
from newsletter import subscribers_csv
from newsletter.cli import main
from newsletter.config import Config, load_config
from newsletter.errors import InputError
from newsletter.models import Delivery, Issue, Subscriber
from newsletter.store import migrate, open_engine, session_scope

DATA = Path(__file__).parent / "data"
SOURCES = ["Granma", "Brasil de Fato", "Venezuelanalysis"]

CONFIG_TOML = """\
[newsletter]
title = "Latin America Weekly"
from = "Latin America Weekly <digest@example.org>"
base_url = "http://testserver"
database = "sqlite:///subscribers.db"
secret = "test-secret-not-for-production"

[smtp]
host = "127.0.0.1"
port = {smtp_port}

[[sources]]
name = "Granma"
url = "https://en.granma.cu/feed"
country = "CU"

[[sources]]
name = "Brasil de Fato"
url = "https://www.brasildefato.com.br/rss2.xml"
country = "BR"

[[sources]]
name = "Venezuelanalysis"
url = "https://venezuelanalysis.com/feed"
country = "VE"
"""


def write_config(folder: Path, *, smtp_port: int = 25) -> Path:
    path = folder / "newsletter.toml"
    path.write_text(CONFIG_TOML.format(smtp_port=smtp_port), encoding="utf-8")
    return path


def make_config(folder: Path, *, smtp_port: int = 25) -> tuple[Config, Engine]:
    """A config file in ``folder`` and its migrated SQLite database."""
    config = load_config(write_config(folder, smtp_port=smtp_port), env={})
    engine = open_engine(config.database_url)
    migrate(engine)
    return config, engine


@pytest.fixture
def db(
    tmp_path: Path, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Config, Engine]:
    """The config and a migrated database on each backend (conftest's ``engine``); the CLI
    finds the same database through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return load_config(write_config(tmp_path)), engine


def run(tmp_path: Path, *args: str) -> int:
    return main(["--config", str(tmp_path / "newsletter.toml"), *args])


def all_subscribers(engine: Engine) -> dict[str, Subscriber]:
    with session_scope(engine) as session:
        return {s.email: s for s in session.exec(select(Subscriber))}


# --- the library ---------------------------------------------------------------------------


def test_add_normalises_and_is_unique_case_insensitively(db: tuple[Config, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        sub = subs.add(
            session,
            "  Ana.Perez@EXAMPLE.org ",
            name=" Ana ",
            countries="ve, cu",
            sources="granma",
            known_sources=SOURCES,
        )
        assert sub.email == "ana.perez@example.org"
        assert (sub.name, sub.countries, sub.sources) == ("Ana", "VE,CU", "Granma")
        assert sub.status == "active" and sub.confirmed_at is not None
    with session_scope(engine) as session, pytest.raises(InputError, match="already"):
        subs.add(session, "ANA.PEREZ@example.ORG")
    with session_scope(engine) as session:
        assert subs.show(session, "Ana.Perez@Example.Org").email == "ana.perez@example.org"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "not-an-address"}, "not a valid email address"),
        ({"email": ""}, "required"),
        ({"email": "a@example.org", "countries": "VE,XX"}, "'XX'"),
        ({"email": "a@example.org", "countries": "Venezuela"}, "alpha-2"),
        ({"email": "a@example.org", "sources": "Nowhere"}, "unknown source: 'Nowhere'"),
        ({"email": "a@example.org", "frequency": "monthly"}, "weekly or daily"),
        ({"email": "a@example.org", "name": "two\nlines"}, "one line"),
    ],
)
def test_add_rejects_bad_values(
    db: tuple[Config, Engine], kwargs: dict[str, str], message: str
) -> None:
    _, engine = db
    kwargs = dict(kwargs)  # the parameters are shared by both backends
    email = kwargs.pop("email")
    with session_scope(engine) as session, pytest.raises(InputError, match=message):
        subs.add(session, email, known_sources=SOURCES, **kwargs)  # type: ignore[arg-type]
    assert all_subscribers(engine) == {}


def test_sources_split_by_commas_or_spaces() -> None:
    assert subs.parse_sources("Brasil de Fato, granma", SOURCES) == ["Brasil de Fato", "Granma"]
    assert subs.parse_sources("granma brasil de fato", SOURCES) == ["Granma", "Brasil de Fato"]
    assert subs.parse_sources(["Granma", "Granma"], SOURCES) == ["Granma"]
    assert subs.parse_countries("ve cu;MX,ve") == ["VE", "CU", "MX"]


def test_update_remove_purge_list_count(db: tuple[Config, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        a = subs.add(session, "a@example.org", countries="VE")
        subs.add(session, "b@example.org")
        subs.add(session, "c@example.org", countries="CU")
        issue = Issue(subject="x")
        session.add(issue)
        session.flush()
        assert issue.id is not None and a.id is not None
        session.add(Delivery(issue_id=issue.id, subscriber_id=a.id))
    with session_scope(engine) as session:
        sub = subs.update(
            session, "A@example.org", frequency="daily", countries="", known_sources=SOURCES
        )
        assert (sub.frequency, sub.countries) == ("daily", "")
        with pytest.raises(InputError, match="no subscriber"):
            subs.update(session, "nobody@example.org", name="x")
    with session_scope(engine) as session:
        subs.update(session, "a@example.org", countries="VE")
        subs.remove(session, "b@example.org")
    with session_scope(engine) as session:
        b = subs.show(session, "b@example.org")
        assert b.status == "unsubscribed" and b.unsubscribed_at is not None
        counts = subs.count(session)
        assert counts["active"] == 2 and counts["unsubscribed"] == 1 and counts["bounced"] == 0
        ve = [s.email for s in subs.list_subscribers(session, country="ve")]
        assert ve == ["a@example.org", "b@example.org"]  # b has no filter: gets everything
        active_ve = subs.list_subscribers(session, status="active", country="VE")
        assert [s.email for s in active_ve] == ["a@example.org"]
        with pytest.raises(InputError):
            subs.list_subscribers(session, country="Venezuela")
    with session_scope(engine) as session:
        subs.remove(session, "a@example.org", purge=True)
    with session_scope(engine) as session:
        assert subs.get(session, "a@example.org") is None
        assert list(session.exec(select(Delivery))) == []
        assert len(list(session.exec(select(Issue)))) == 1


def test_status_change_back_to_active_clears_unsubscribed(db: tuple[Config, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        subs.add(session, "a@example.org")
        subs.remove(session, "a@example.org")
        sub = subs.update(session, "a@example.org", status="active")
        assert sub.status == "active" and sub.unsubscribed_at is None
        with pytest.raises(InputError, match="status must be"):
            subs.update(session, "a@example.org", status="gone")


# --- CSV -----------------------------------------------------------------------------------


def test_import_reports_every_bad_row_and_keeps_the_good_ones(
    db: tuple[Config, Engine],
) -> None:
    _, engine = db
    data = (DATA / "subscribers_bad.csv").read_bytes()
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert (report.rows, report.added, report.updated, report.unchanged) == (8, 2, 0, 0)
    assert any("'phone'" in n and "ignored" in n for n in report.notes)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "not a valid email address" in reasons[3]
    assert reasons[4] == "duplicate of line 2"
    assert "'XX'" in reasons[5]
    assert "unknown source: 'Nowhere'" in reasons[6]
    assert "weekly or daily" in reasons[7]
    assert "cells but the header names" in reasons[8]
    rows = all_subscribers(engine)
    assert set(rows) == {"ana@example.org", "joe@example.net"}
    assert rows["ana@example.org"].name == "Ana Pérez"
    assert rows["ana@example.org"].countries == "VE,CU"
    assert rows["joe@example.net"].countries == "MX,BR"
    assert rows["joe@example.net"].sources == "Brasil de Fato,Granma"
    assert rows["joe@example.net"].frequency == "daily"
    # idempotent: the same file again adds nothing and changes nothing
    again = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert [r.line for r in again.rejected] == [3, 4, 5, 6, 7, 8]


def test_import_rejects_only_the_rows_that_are_not_utf8(db: tuple[Config, Engine]) -> None:
    _, engine = db
    data = (DATA / "subscribers_latin1.csv").read_bytes()
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert [(r.line, r.email) for r in report.rejected] == [(3, "latin1@example.org")]
    assert "not UTF-8 (bytes 0xE9 0xFA 0xF1)" in report.rejected[0].reason
    assert set(all_subscribers(engine)) == {"ok1@example.org", "ok2@example.org"}
    assert all_subscribers(engine)["ok2@example.org"].name == "Zoë"


def test_import_bom_and_space_separated_lists(db: tuple[Config, Engine]) -> None:
    _, engine = db
    data = (DATA / "subscribers_bom.csv").read_bytes()
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert report.ok and report.added == 1 and not report.notes
    sub = all_subscribers(engine)["bom@example.org"]
    assert (sub.countries, sub.sources, sub.frequency) == ("VE,CU", "Venezuelanalysis", "daily")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"name,countries\r\nAna,VE\r\n", "no 'email' column"),
        (b"email,Email\r\na@example.org,b@example.org\r\n", "appears twice"),
        (b"email,n\xe9\r\na@example.org,x\r\n", "header is not UTF-8"),
        (b'email,name\r\na@example.org,"unclosed\r\n', "cannot read the CSV"),
    ],
)
def test_unreadable_files_are_rejected_whole(
    db: tuple[Config, Engine], data: bytes, message: str
) -> None:
    _, engine = db
    with pytest.raises(InputError, match=message):
        subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert all_subscribers(engine) == {}


def test_import_never_reactivates_unless_told(db: tuple[Config, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        subs.add(session, "gone@example.org", name="Old")
        subs.remove(session, "gone@example.org")
        subs.add(session, "wait@example.org", status="pending")
    data = b"email,name\r\ngone@example.org,New\r\nwait@example.org,W\r\n"
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert [r.line for r in report.rejected] == [2]
    assert "unsubscribed since" in report.rejected[0].reason
    assert "--reactivate" in report.rejected[0].reason
    rows = all_subscribers(engine)
    assert (rows["gone@example.org"].status, rows["gone@example.org"].name) == (
        "unsubscribed",
        "Old",
    )
    assert rows["wait@example.org"].status == "active"
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES, reactivate=True)
    assert report.ok and report.updated == 1 and report.unchanged == 1
    gone = all_subscribers(engine)["gone@example.org"]
    assert (gone.status, gone.name, gone.unsubscribed_at) == ("active", "New", None)


def test_import_absent_columns_leave_fields_alone(db: tuple[Config, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        subs.add(session, "a@example.org", name="Ana", countries="VE", frequency="daily")
    report = subscribers_csv.import_rows(
        engine, b"email\na@example.org\nb@example.org\n", known_sources=SOURCES
    )
    assert report.ok and (report.added, report.unchanged) == (1, 1)
    a = all_subscribers(engine)["a@example.org"]
    assert (a.name, a.countries, a.frequency) == ("Ana", "VE", "daily")


def test_a_failing_batch_is_retried_row_by_row(
    db: tuple[Config, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row the database refuses (here: a concurrent insert) costs only that row."""
    _, engine = db
    real = subs.get_many

    def stale(session: object, emails: object) -> dict[str, Subscriber]:
        found = real(session, emails)  # type: ignore[arg-type]
        found.pop("b@example.org", None)  # as if b were added after the look-up
        return found

    with session_scope(engine) as session:
        subs.add(session, "b@example.org")
    monkeypatch.setattr(subs, "get_many", stale)
    data = b"email\r\na@example.org\r\nb@example.org\r\nc@example.org\r\n"
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    assert report.added == 2
    assert [r.line for r in report.rejected] == [3]
    assert "unique" in report.rejected[0].reason.lower()
    assert set(all_subscribers(engine)) == {"a@example.org", "b@example.org", "c@example.org"}


def test_export_import_round_trip_is_exact(db: tuple[Config, Engine], tmp_path: Path) -> None:
    _, engine = db
    with session_scope(engine) as session:
        subs.add(
            session,
            "ana@example.org",
            name='Ana "La Flaca" Pérez, hija',
            countries="VE,CU",
            sources="Brasil de Fato,Granma",
            known_sources=SOURCES,
        )
        subs.add(session, "zoe@example.org", name="Zoë 🇨🇺", frequency="daily")
        subs.add(session, "bo@example.org", countries="BO")
        subs.add(session, "gone@example.org")
        subs.remove(session, "gone@example.org")
    with session_scope(engine) as session:
        first = subscribers_csv.export_status(session, "active")
    assert first.splitlines()[0] == "email,name,countries,sources,frequency"
    assert "gone@example.org" not in first
    assert list(csv.reader(io.StringIO(first)))[1][2] == "VE,CU"

    (tmp_path / "other").mkdir()
    _, other = make_config(tmp_path / "other")
    report = subscribers_csv.import_rows(other, first.encode(), known_sources=SOURCES)
    assert report.ok and report.added == 3
    with session_scope(other) as session:
        second = subscribers_csv.export_status(session, "active")
    assert second == first
    before = {
        e: subs.as_dict(s) for e, s in all_subscribers(engine).items() if e != "gone@example.org"
    }
    after = {e: subs.as_dict(s) for e, s in all_subscribers(other).items()}
    keys = ("email", "name", "countries", "sources", "frequency", "status")
    assert {e: [d[k] for k in keys] for e, d in before.items()} == {
        e: [d[k] for k in keys] for e, d in after.items()
    }
    other.dispose()


def test_ten_thousand_rows_import_in_seconds(db: tuple[Config, Engine]) -> None:
    _, engine = db
    lines = ["email,name,countries,sources,frequency"]
    lines += [f'user{i}@example.org,User {i},"VE,CU",Granma,weekly' for i in range(10_000)]
    data = "\r\n".join(lines).encode()
    start = time.perf_counter()
    report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    first = time.perf_counter() - start
    assert report.ok and report.added == 10_000
    start = time.perf_counter()
    again = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
    second = time.perf_counter() - start
    assert again.unchanged == 10_000
    assert first < 15 and second < 15, (first, second)


# --- the CLI -------------------------------------------------------------------------------


def test_cli_add_show_set_list_count_remove(
    db: tuple[Config, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "subscribers", "add", "Ana@Example.org", "--name", "Ana",
               "--countries", "VE,CU", "--sources", "Granma") == 0  # fmt: skip
    assert "added ana@example.org" in capsys.readouterr().out
    assert run(tmp_path, "subscribers", "add", "ana@example.org") == 1
    assert "already a subscriber" in capsys.readouterr().err
    assert run(tmp_path, "subscribers", "add", "nope") == 1
    assert "not a valid email address" in capsys.readouterr().err
    assert run(tmp_path, "subscribers", "add", "x@example.org", "--countries", "ZZ") == 1
    assert "'ZZ'" in capsys.readouterr().err
    assert run(tmp_path, "subscribers", "add", "x@example.org", "--frequency", "monthly") == 2
    capsys.readouterr()

    assert run(tmp_path, "subscribers", "set", "ana@example.org", "--frequency", "daily",
               "--sources", "", "--json") == 0  # fmt: skip
    row = json.loads(capsys.readouterr().out)
    assert (row["frequency"], row["sources"], row["countries"]) == ("daily", [], ["VE", "CU"])

    assert run(tmp_path, "subscribers", "show", "ANA@example.org") == 0
    assert "VE,CU" in capsys.readouterr().out
    assert run(tmp_path, "subscribers", "show", "who@example.org") == 1
    assert "no subscriber" in capsys.readouterr().err

    assert run(tmp_path, "subscribers", "list", "--country", "VE", "--json") == 0
    assert [r["email"] for r in json.loads(capsys.readouterr().out)] == ["ana@example.org"]
    assert run(tmp_path, "subscribers", "list", "--status", "nonsense") == 2
    capsys.readouterr()

    assert run(tmp_path, "subscribers", "remove", "ana@example.org") == 0
    assert run(tmp_path, "subscribers", "count", "--json") == 0
    counts = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert counts["unsubscribed"] == 1 and counts["total"] == 1
    assert run(tmp_path, "subscribers", "remove", "ana@example.org", "--purge") == 0
    assert run(tmp_path, "subscribers", "count") == 0
    assert "total         0" in capsys.readouterr().out


def test_cli_import_export(
    db: tuple[Config, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "subscribers", "import", str(DATA / "subscribers_bad.csv")) == 1
    captured = capsys.readouterr()
    assert "8 rows: 2 added, 0 updated, 0 unchanged, 6 rejected" in captured.out
    assert "rejected: line 4 (ANA@Example.org): duplicate of line 2" in captured.err
    assert "ignored column(s) 'phone'" in captured.err

    out = tmp_path / "out.csv"
    assert run(tmp_path, "subscribers", "export", str(out)) == 0
    assert "wrote 2 subscribers" in capsys.readouterr().err
    assert out.read_bytes().startswith(b"email,name,countries,sources,frequency\r\n")
    assert run(tmp_path, "subscribers", "import", str(out), "--json") == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 2

    assert run(tmp_path, "subscribers", "import", str(tmp_path / "missing.csv")) == 1
    assert "cannot read" in capsys.readouterr().err
    assert run(tmp_path, "subscribers", "export", str(out), "--status", "gone") == 2
