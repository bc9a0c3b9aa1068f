"""`newsletter status`, `run-due` and `schedule --show` through the real entry point, on a
real SQLite database, with the clock pinned."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter import lease
from newsletter.cli import main
from newsletter.cli import schedule as schedule_cli
from newsletter.cli import status as status_cli
from newsletter.config import Config, load_config
from newsletter.logs import unconfigure
from newsletter.models import (
    Delivery,
    DeliveryState,
    Issue,
    IssueState,
    ScheduleRun,
    SourceState,
    Subscriber,
)
from newsletter.schedule import LEASE_NAME, JobOutcome, SlotContext
from newsletter.store import migrate, open_engine, session_scope

MON = datetime(2024, 3, 11, 11, 0, tzinfo=UTC)  # Monday 07:00 in Caracas

CONFIG = """\
[newsletter]
secret = "a-test-secret-that-is-long-enough"
database = "sqlite:///status.db"

[schedule]
cron = "0 7 * * MON"
timezone = "America/Caracas"
daily = "30 2 * * *"
max_lateness_hours = 12

[[sources]]
name = "Orinoco Tribune"
url = "https://orinocotribune.com/feed/"
country = "VE"

[[sources]]
name = "Kawsachun News"
url = "https://www.kawsachunnews.com/feed"
country = "BO"
"""


@pytest.fixture(autouse=True)
def _no_log_handler() -> Iterator[None]:
    yield
    unconfigure()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "newsletter.toml"
    path.write_text(CONFIG)
    return load_config(path, env={})


@pytest.fixture
def engine(config: Config) -> Iterator[Engine]:
    engine = open_engine(config.database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def at(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(status_cli, "now", lambda: when)
    monkeypatch.setattr(schedule_cli, "now", lambda: when)


def cli(config: Config, *args: str) -> int:
    return main(["--config", str(config.path), *args])


def seed(engine: Engine) -> None:
    with session_scope(engine) as session:
        issue = Issue(kind="weekly", state=IssueState.SENDING, subject="Latin America Weekly")
        session.add(issue)
        session.flush()
        assert issue.id is not None
        states = [DeliveryState.SENT] * 3 + [DeliveryState.FAILED, DeliveryState.PENDING]
        for i, state in enumerate(states):
            sub = Subscriber(email=f"reader{i}@example.org")
            session.add(sub)
            session.flush()
            assert sub.id is not None
            session.add(Delivery(issue_id=issue.id, subscriber_id=sub.id, state=state))
        session.add(
            ScheduleRun(
                slot="weekly:2024-03-04T11:00:00Z",
                kind="weekly",
                due_at=MON - timedelta(days=7),
                started_at=MON - timedelta(days=7),
                finished_at=MON - timedelta(days=7, minutes=-3),
                status="done",
                issue_id=issue.id,
                detail="sent issue 1",
            )
        )
        session.add(
            SourceState(
                name="Kawsachun News",
                config_url="https://www.kawsachunnews.com/feed",
                url="https://www.kawsachunnews.com/feed",
                consecutive_failures=4,
                last_error="HTTP 503",
                last_error_at=MON - timedelta(hours=2),
            )
        )
        session.add(
            SourceState(
                name="Orinoco Tribune",
                config_url="https://orinocotribune.com/feed/",
                url="https://orinocotribune.com/feed/",
                last_success=MON - timedelta(hours=2),
            )
        )
        session.add(SourceState(name="Removed", url="https://x.example/", consecutive_failures=9))


def test_status_json(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(engine)
    at(monkeypatch, MON - timedelta(hours=1))
    assert cli(config, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    weekly, daily = data["schedule"]
    assert weekly["last_run"]["slot"] == "weekly:2024-03-04T11:00:00Z"
    assert weekly["last_run"]["status"] == "done"
    assert weekly["next_slot"] == {
        "slot": "weekly:2024-03-11T11:00:00Z",
        "local": "2024-03-11T07:00:00-04:00",
        "utc": "2024-03-11T11:00:00+00:00",
    }
    assert daily["last_run"] is None and daily["next_slot"]["local"] == "2024-03-12T02:30:00-04:00"
    issue = data["last_issue"]
    assert (issue["id"], issue["state"]) == (1, "sending")
    assert issue["deliveries"] == {"pending": 1, "claimed": 0, "sent": 3, "failed": 1, "skipped": 0}
    assert [s["name"] for s in data["failing_sources"]] == ["Kawsachun News"]
    assert data["failing_sources"][0]["last_error"] == "HTTP 503"
    assert data["running"] is None


def test_status_human(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(engine)
    assert lease.acquire(engine, LEASE_NAME, "host:42:abc", timedelta(minutes=10), MON)
    at(monkeypatch, MON + timedelta(minutes=1))
    assert cli(config, "status") == 0
    out = capsys.readouterr().out
    assert "Mon 2024-03-04 07:00" in out and "Mon 2024-03-18 07:00" in out
    assert "last issue: #1 (weekly, sending)" in out
    assert "deliveries: 1 pending, 3 sent, 1 failed" in out
    assert "Kawsachun News" in out and "HTTP 503" in out and "Removed" not in out
    assert "running now: host:42:abc" in out


def test_status_on_an_empty_database(
    config: Config, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, "status") == 0
    out = capsys.readouterr().out
    assert "never" in out and "no issue yet" in out and "none failing" in out


def test_status_check_fails_on_a_failed_slot(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    at(monkeypatch, MON + timedelta(minutes=10))
    assert cli(config, "status", "--check") == 0
    with session_scope(engine) as session:
        session.add(
            ScheduleRun(
                slot="weekly:2024-03-11T11:00:00Z",
                kind="weekly",
                due_at=MON,
                status="failed",
                detail="SMTPUnavailableError: cannot connect",
            )
        )
    capsys.readouterr()
    assert cli(config, "status", "--check") == 1
    assert "unhealthy: weekly slot weekly:2024-03-11T11:00:00Z failed" in capsys.readouterr().err


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, ctx: SlotContext) -> JobOutcome:
        self.calls.append(ctx.key)
        if ctx.kind == "daily":
            raise RuntimeError("SMTP is down")
        return JobOutcome(detail="sent")


def test_run_due_every_five_minutes_does_each_slot_once(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = Recorder()
    monkeypatch.setattr(schedule_cli, "make_job", lambda config, engine: job)
    at(monkeypatch, MON - timedelta(hours=4))  # 03:00 in Caracas: after the daily 02:30
    assert cli(config, "run-due") == 1  # the daily slot ran and failed
    assert job.calls == ["daily:2024-03-11T06:30:00Z"]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [e["event"] for e in lines] == ["slot.start", "slot.failed"]
    for minutes in range(0, 30, 5):
        at(monkeypatch, MON + timedelta(minutes=minutes))
        cli(config, "run-due")
    assert job.calls.count("weekly:2024-03-11T11:00:00Z") == 1
    assert job.calls.count("daily:2024-03-11T06:30:00Z") == 7  # retried while in time
    at(monkeypatch, MON + timedelta(hours=8))  # the daily slot is now past max_lateness
    capsys.readouterr()
    assert cli(config, "run-due") == 0
    assert len(job.calls) == 8
    assert capsys.readouterr().err == ""  # nothing due: silent, as cron likes it


def test_run_due_with_the_real_pipeline_and_nothing_new(
    config: Config,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config.path.write_text(CONFIG.split("[[sources]]")[0])  # no sources: nothing is fetched
    at(monkeypatch, MON + timedelta(minutes=2))
    assert cli(config, "run-due") == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    done = [e for e in lines if e["event"] == "slot.done"]
    assert {e["slot"] for e in done} == {
        "weekly:2024-03-11T11:00:00Z",
        "daily:2024-03-11T06:30:00Z",
    }
    assert all("nothing new" in e["detail"] for e in done)
    assert cli(config, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schedule"][0]["last_run"]["status"] == "done"


def test_schedule_show(
    config: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, datetime(2024, 3, 8, tzinfo=UTC))
    assert cli(config, "schedule", "--show", "2") == 0
    out = capsys.readouterr().out
    rows = [
        line for line in out.splitlines() if "UTC" in line and ("weekly" in line or "daily" in line)
    ]
    assert len(rows) == 4
    assert "Mon 2024-03-11 07:00 -04" in out and "Mon 2024-03-11 11:00 UTC" in out
    assert "Fri 2024-03-08 02:30 -04" in out and "Fri 2024-03-08 06:30 UTC" in out


def test_run_due_on_sigterm_leaves_the_slot_resumable(tmp_path: Path) -> None:
    """The real command in a child process, stuck fetching from a server that never
    answers: SIGTERM records the slot as interrupted and releases the lease."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing ever answers
    port = silent.getsockname()[1]
    path = tmp_path / "newsletter.toml"
    path.write_text(
        '[newsletter]\nsecret = "a-test-secret"\ndatabase = "sqlite:///status.db"\n'
        '[fetch]\ntimeout = 60\n[schedule]\ncron = "* * * * *"\ndaily = ""\n'
        f'[[sources]]\nname = "Silent"\nurl = "http://127.0.0.1:{port}/feed"\ncountry = "VE"\n'
    )
    config = load_config(path, env={})
    engine = open_engine(config.database_url)
    migrate(engine)
    code = "import sys; from newsletter.cli import main; sys.exit(main())"
    args = [sys.executable, "-c", code, "-c", str(path), "run-due"]
    try:
        with subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=tmp_path) as proc:
            assert proc.stderr is not None
            events = []
            for line in proc.stderr:
                events.append(json.loads(line)["event"])
                if events[-1] == "slot.start":
                    proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 1
        assert events == ["slot.start", "slot.interrupted"]
        with session_scope(engine) as session:
            [run] = session.exec(select(ScheduleRun)).all()
            assert run.status == "failed" and "interrupted" in run.detail
        assert lease.holder(engine, LEASE_NAME, datetime.now(UTC)) is None
    finally:
        silent.close()
        engine.dispose()
