"""Slots, DST, the gap rule, exactly-once runs, the foreground loop and the log lines.

The clock is pinned everywhere: ``now`` is passed in, and the foreground scheduler gets a
fake clock whose ``wait`` advances time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import multiprocessing
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import lease
from newsletter.config import ScheduleSection, parse_config
from newsletter.errors import ConfigError
from newsletter.logs import EventLogger, HumanFormatter, JSONFormatter, configure, get_logger
from newsletter.models import ScheduleRun
from newsletter.schedule import (
    LEASE_NAME,
    JobOutcome,
    Runner,
    Schedule,
    Scheduler,
    SlotContext,
    _claim,
    plan,
    schedules,
)
from newsletter.store import migrate, open_engine

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
CARACAS = ZoneInfo("America/Caracas")
DAY = timedelta(days=1)
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)  # type: ignore[misc]


# -- slots ---------------------------------------------------------------------------------


def test_weekly_slots_in_a_zone_without_dst() -> None:
    weekly = Schedule("weekly", "0 7 * * MON", CARACAS)
    slots = weekly.upcoming(utc(2024, 3, 6, 12), 3)
    assert [s.at for s in slots] == [
        utc(2024, 3, 11, 11),
        utc(2024, 3, 18, 11),
        utc(2024, 3, 25, 11),
    ]
    assert [s.local.strftime("%a %H:%M") for s in slots] == ["Mon 07:00"] * 3
    assert slots[0].key == "weekly:2024-03-11T11:00:00Z"


def test_weekly_slot_keeps_local_time_across_dst() -> None:
    weekly = Schedule("weekly", "0 7 * * MON", NEW_YORK)
    slots = weekly.upcoming(utc(2024, 3, 1), 3)  # US clocks spring forward on Sun 10 March
    assert [s.at for s in slots] == [
        utc(2024, 3, 4, 12),
        utc(2024, 3, 11, 11),
        utc(2024, 3, 18, 11),
    ]
    assert {s.local.hour for s in slots} == {7}


def test_spring_forward_week_madrid_daily_0230() -> None:
    """Madrid skips 02:00-03:00 on Sun 31 March 2024: that day's slot is at 03:00 CEST."""
    daily = Schedule("daily", "30 2 * * *", MADRID)
    slots = daily.upcoming(utc(2024, 3, 27), 7)
    assert [s.local.isoformat() for s in slots] == [
        "2024-03-27T02:30:00+01:00",
        "2024-03-28T02:30:00+01:00",
        "2024-03-29T02:30:00+01:00",
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",  # 02:30 does not exist: when the clocks jump
        "2024-04-01T02:30:00+02:00",
        "2024-04-02T02:30:00+02:00",
    ]
    gaps = [b.at - a.at for a, b in pairwise(slots)]
    assert gaps == [DAY, DAY, DAY, DAY - timedelta(minutes=30), DAY - timedelta(minutes=30), DAY]
    # one slot per calendar day, going backwards too
    back = list(islice(daily.until(utc(2024, 4, 2, 12)), 7))
    assert sorted(back) == slots


def test_fall_back_week_madrid_daily_0230() -> None:
    """Madrid's clocks show 02:00-03:00 twice on Sun 27 October 2024: one slot, the first."""
    daily = Schedule("daily", "30 2 * * *", MADRID)
    slots = daily.upcoming(utc(2024, 10, 23), 7)
    assert [s.local.isoformat() for s in slots] == [
        "2024-10-23T02:30:00+02:00",
        "2024-10-24T02:30:00+02:00",
        "2024-10-25T02:30:00+02:00",
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",  # the first 02:30; the second (+01:00) is not a slot
        "2024-10-28T02:30:00+01:00",
        "2024-10-29T02:30:00+01:00",
    ]
    assert slots[4].at == utc(2024, 10, 27, 0, 30)
    assert slots[5].at - slots[4].at == DAY + H
    back = list(islice(daily.until(utc(2024, 10, 29, 12)), 7))
    assert sorted(back) == slots


def test_during_the_repeated_hour_the_slot_is_already_past() -> None:
    daily = Schedule("daily", "30 2 * * *", MADRID)
    second_pass = local(MADRID, 2024, 10, 27, 2, 45, fold=1)  # 01:45Z, after the first 02:30
    assert second_pass.astimezone(UTC) == utc(2024, 10, 27, 1, 45)
    latest = daily.latest(second_pass)
    assert latest is not None and latest.at == utc(2024, 10, 27, 0, 30)
    upcoming = daily.next(second_pass)
    assert upcoming is not None and upcoming.at == utc(2024, 10, 28, 1, 30)


NY_SPRING = ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"]
NY_FALL = ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]
NY_HOURLY = ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"]


@pytest.mark.parametrize(
    ("cron", "start", "expected_local"),
    [
        ("30 2 * * *", utc(2024, 3, 9), NY_SPRING),  # Sun 10 March 2024: 02:00 -> 03:00
        ("30 1 * * *", utc(2024, 11, 2), NY_FALL),  # Sun 3 November 2024: 01:30 twice
        ("0 * * * *", utc(2024, 3, 10, 5), NY_HOURLY),  # hourly: none invented, none repeated
    ],
)
def test_new_york_transitions(cron: str, start: datetime, expected_local: list[str]) -> None:
    slots = Schedule("daily", cron, NEW_YORK).upcoming(start, 3)
    assert [s.local.isoformat() for s in slots] == expected_local


@pytest.mark.parametrize("tz", [MADRID, NEW_YORK, CARACAS])
def test_latest_and_next_agree_around_every_slot(tz: ZoneInfo) -> None:
    cases = [
        ("30 2 * * *", utc(2024, 3, 5)),
        ("30 2 * * *", utc(2024, 10, 22)),
        ("30 1 * * *", utc(2024, 10, 30)),
        ("0 7 * * MON", utc(2024, 2, 20)),
    ]
    for cron, start in cases:
        sched = Schedule("daily", cron, tz)
        slots = sched.upcoming(start, 40)
        for before, slot in pairwise(slots):
            assert sched.latest(slot.at) == slot
            assert sched.latest(slot.at - timedelta(seconds=1)) == before
            assert sched.next(slot.at - timedelta(seconds=1)) == slot
            assert sched.next(slot.at) != slot
        assert sched.between(slots[0].at, slots[-1].at) == slots[1:-1]


def test_an_impossible_date_has_no_slots() -> None:
    never = Schedule("weekly", "0 0 30 2 *", ZoneInfo("UTC"))
    assert never.next(utc(2024, 1, 1)) is None
    assert never.latest(utc(2024, 1, 1)) is None


def test_config_validates_cron_and_timezone(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.toml"
    with pytest.raises(ConfigError, match=r"schedule.cron.*cron expression"):
        parse_config({"schedule": {"cron": "every monday"}}, path, {})
    with pytest.raises(ConfigError, match=r"schedule.timezone.*unknown timezone"):
        parse_config({"schedule": {"timezone": "Mars/Olympus"}}, path, {})
    config = parse_config(
        {"schedule": {"cron": "0  7 * * MON", "timezone": "America/Caracas", "daily": ""}},
        path,
        {},
    )
    assert [(s.kind, s.cron) for s in schedules(config.schedule)] == [("weekly", "0 7 * * MON")]
    assert [s.kind for s in schedules(ScheduleSection())] == ["weekly", "daily"]


# -- the gap rule --------------------------------------------------------------------------

WEEKLY = Schedule("weekly", "0 7 * * MON", CARACAS)  # Mondays 11:00 UTC
MON = utc(2024, 3, 11, 11)
LATENESS = timedelta(hours=24)


def run_row(at: datetime, status: str = "done") -> ScheduleRun:
    return ScheduleRun(slot=f"weekly:{at.isoformat()}", kind="weekly", due_at=at, status=status)


def test_plan_first_ever_run_takes_the_latest_slot_only() -> None:
    todo = plan(WEEKLY, MON + H, None, LATENESS)
    assert todo.run is not None and todo.run.at == MON
    assert todo.missed == () and todo.skip is None


def test_plan_a_new_installation_does_not_look_back_past_max_lateness() -> None:
    assert plan(WEEKLY, MON + 25 * H, None, LATENESS) == plan(WEEKLY, MON - H, None, LATENESS)
    assert plan(WEEKLY, MON + 25 * H, None, LATENESS).run is None


def test_plan_nothing_before_the_slot_or_after_it_is_done() -> None:
    assert plan(WEEKLY, MON - timedelta(seconds=1), run_row(MON - 7 * DAY), LATENESS).run is None
    assert plan(WEEKLY, MON + H, run_row(MON), LATENESS).run is None
    assert plan(WEEKLY, MON + H, run_row(MON, "skipped"), LATENESS).run is None


def test_plan_after_downtime_runs_one_slot_covering_the_gap() -> None:
    todo = plan(WEEKLY, MON + 2 * H, run_row(MON - 21 * DAY), LATENESS)
    assert todo.run is not None and todo.run.at == MON
    assert [s.at for s in todo.missed] == [MON - 14 * DAY, MON - 7 * DAY]


def test_plan_skips_a_slot_missed_by_more_than_max_lateness() -> None:
    todo = plan(WEEKLY, MON + 25 * H, run_row(MON - 14 * DAY), LATENESS)
    assert todo.run is None
    assert todo.skip is not None and todo.skip.at == MON
    assert [s.at for s in todo.missed] == [MON - 7 * DAY]


def test_plan_resumes_a_failed_or_interrupted_slot_within_max_lateness() -> None:
    for status in ("failed", "running"):
        todo = plan(WEEKLY, MON + 3 * H, run_row(MON, status), LATENESS)
        assert todo.run is not None and todo.resume
    gone = plan(WEEKLY, MON + 25 * H, run_row(MON, "running"), LATENESS)
    assert gone.run is None and gone.abandon is not None
    assert plan(WEEKLY, MON + 25 * H, run_row(MON, "failed"), LATENESS).abandon is None


# -- running slots against a real database -------------------------------------------------


class Recorder:
    """A real job that records what it was asked to do."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[SlotContext] = []
        self.fail = fail

    async def __call__(self, ctx: SlotContext) -> JobOutcome:
        self.calls.append(ctx)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("SMTP is down")
        return JobOutcome(detail=f"sent {ctx.key}")


class Lines:
    """An event logger whose JSON lines land in a list."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        logger = logging.getLogger(f"newsletter.test.{uuid.uuid4().hex}")
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JSONFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        self.log = EventLogger(logger)

    def events(self, name: str | None = None) -> list[dict[str, object]]:
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in lines if name is None or e["event"] == name]


def make_runner(
    engine: Engine,
    job: Recorder,
    *,
    daily: bool = False,
    log: Lines | None = None,
    owner: str = "test",
) -> Runner:
    scheds = [WEEKLY] + ([Schedule("daily", "0 7 * * *", CARACAS)] if daily else [])
    return Runner(
        engine, scheds, job, LATENESS, owner=owner, log=(log or Lines()).log, clock=lambda: MON
    )


def rows(engine: Engine) -> dict[str, tuple[str, str]]:
    with Session(engine) as session:
        return {r.slot: (r.status, r.detail) for r in session.exec(select(ScheduleRun))}


async def test_a_slot_runs_once_then_nothing_is_due(engine: Engine) -> None:
    job, lines = Recorder(), Lines()
    runner = make_runner(engine, job, log=lines)
    assert await runner.run_due(MON - timedelta(minutes=1)) == []
    results = await runner.run_due(MON + timedelta(minutes=2))
    assert [(r.slot, r.status) for r in results] == [("weekly:2024-03-11T11:00:00Z", "done")]
    for minutes in (7, 12, 60 * 23):  # run-due from a timer every five minutes: safe
        assert await runner.run_due(MON + timedelta(minutes=minutes)) == []
    assert [c.key for c in job.calls] == ["weekly:2024-03-11T11:00:00Z"]
    assert rows(engine) == {
        "weekly:2024-03-11T11:00:00Z": ("done", "sent weekly:2024-03-11T11:00:00Z")
    }
    assert [e["event"] for e in lines.events()] == ["slot.start", "slot.done"]
    assert lease.holder(engine, LEASE_NAME, MON) is None  # released


async def test_downtime_sends_one_digest_covering_the_gap(engine: Engine) -> None:
    job, lines = Recorder(), Lines()
    runner = make_runner(engine, job, log=lines)
    await runner.run_due(MON - 21 * DAY + H)
    await runner.run_due(MON + 3 * H)  # down for three weeks
    assert len(job.calls) == 2
    ctx = job.calls[1]
    assert ctx.slot.at == MON and ctx.previous == MON - 21 * DAY
    assert [s.at for s in ctx.missed] == [MON - 14 * DAY, MON - 7 * DAY]
    assert len(rows(engine)) == 2
    [missed] = lines.events("slot.missed")
    assert missed["count"] == 2 and missed["covered_by"] == "weekly:2024-03-11T11:00:00Z"


async def test_a_slot_later_than_max_lateness_is_skipped_with_one_log_line(engine: Engine) -> None:
    job, lines = Recorder(), Lines()
    runner = make_runner(engine, job, log=lines)
    await runner.run_due(MON - 7 * DAY)
    for minutes in (0, 5, 10):
        await runner.run_due(MON + 30 * H + timedelta(minutes=minutes))
    assert len(job.calls) == 1  # last week's, before the downtime
    assert rows(engine)["weekly:2024-03-11T11:00:00Z"][0] == "skipped"
    [skipped] = lines.events("slot.skipped")
    assert skipped["level"] == "warning" and skipped["late_by"] == "30.0h"
    # the next slot runs normally and covers the gap
    await runner.run_due(MON + 7 * DAY)
    assert [c.slot.at for c in job.calls] == [MON - 7 * DAY, MON + 7 * DAY]


async def test_a_failed_slot_is_resumed_by_the_next_run(engine: Engine) -> None:
    job, lines = Recorder(fail=1), Lines()
    runner = make_runner(engine, job, log=lines)
    [failed] = await runner.run_due(MON)
    assert failed.status == "failed" and "SMTP is down" in failed.detail
    assert runner.next_wake(MON, [failed]) == MON + timedelta(minutes=5)
    [done] = await runner.run_due(MON + timedelta(minutes=5))
    assert done.status == "done"
    assert [c.resumed for c in job.calls] == [False, True]
    [error] = lines.events("slot.failed")
    assert error["level"] == "error" and "RuntimeError" in str(error["exception"])


async def test_weekly_and_daily_slots_at_the_same_time_both_run(engine: Engine) -> None:
    job = Recorder()
    await make_runner(engine, job, daily=True).run_due(MON)
    assert sorted(c.key for c in job.calls) == [
        "daily:2024-03-11T11:00:00Z",
        "weekly:2024-03-11T11:00:00Z",
    ]


async def test_nothing_runs_while_another_process_holds_the_lease(engine: Engine) -> None:
    job, lines = Recorder(), Lines()
    assert lease.acquire(engine, LEASE_NAME, "someone-else", timedelta(minutes=10), MON)
    assert await make_runner(engine, job, log=lines).run_due(MON) == []
    assert job.calls == [] and rows(engine) == {}
    assert lines.events("schedule.busy")[0]["holder"] == "someone-else"
    # a crashed holder's lease expires, and then the slot runs
    assert await make_runner(engine, job).run_due(MON + timedelta(minutes=11))
    assert len(job.calls) == 1


async def test_an_interrupted_slot_is_left_resumable(engine: Engine) -> None:
    started = asyncio.Event()

    class Hangs(Recorder):
        async def __call__(self, ctx: SlotContext) -> JobOutcome:
            self.calls.append(ctx)
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("not reached")

    runner = make_runner(engine, Hangs())
    task = asyncio.create_task(runner.run_due(MON))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    status, detail = rows(engine)["weekly:2024-03-11T11:00:00Z"]
    assert status == "failed" and "interrupted" in detail
    assert lease.holder(engine, LEASE_NAME, MON) is None
    job = Recorder()
    await make_runner(engine, job).run_due(MON + timedelta(minutes=5))
    assert [c.resumed for c in job.calls] == [True]


def test_the_slot_row_admits_one_claim(engine: Engine) -> None:
    slot = WEEKLY.latest(MON)
    assert slot is not None
    assert _claim(engine, slot, MON, resume=False, detail="")
    assert not _claim(engine, slot, MON, resume=False, detail="")


def test_threads_racing_run_due_send_once(db_url: str) -> None:
    """Several schedulers (one engine each) wake at the same moment on one SQLite file."""
    racers = 6
    barrier = threading.Barrier(racers)
    calls: list[str] = []
    results: list[int] = []

    async def job(ctx: SlotContext) -> JobOutcome:
        calls.append(ctx.key)
        await asyncio.sleep(0.05)  # overlap with the others
        return JobOutcome()

    def race(i: int) -> None:
        engine = open_engine(db_url)
        try:
            runner = Runner(
                engine,
                [WEEKLY],
                job,
                LATENESS,
                owner=f"racer-{i}",
                log=Lines().log,
                clock=lambda: MON,
            )
            barrier.wait(timeout=10)
            results.append(len(asyncio.run(runner.run_due(MON + timedelta(minutes=i)))))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert calls == ["weekly:2024-03-11T11:00:00Z"]
    assert sorted(results) == [0] * (racers - 1) + [1]


def _process_racer(db_url: str, marker: str, barrier: object, index: int) -> None:
    """Runs in a spawned process: a whole scheduler racing the others."""

    async def job(ctx: SlotContext) -> JobOutcome:
        with Path(marker).open("a", encoding="utf-8") as f:  # noqa: ASYNC230 - a line
            f.write(f"{index} {ctx.key}\n")
        await asyncio.sleep(0.1)
        return JobOutcome()

    engine = open_engine(db_url)
    runner = Runner(
        engine,
        [WEEKLY],
        job,
        LATENESS,
        owner=f"process-{index}",
        log=get_logger("newsletter.test.racer"),
        clock=lambda: MON,
    )
    barrier.wait(30)  # type: ignore[attr-defined]
    asyncio.run(runner.run_due(MON + timedelta(seconds=index)))
    engine.dispose()


def test_processes_racing_run_due_send_once(db_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    racers = 2
    barrier = ctx.Barrier(racers)
    marker = tmp_path / "calls.txt"
    procs = [
        ctx.Process(target=_process_racer, args=(db_url, str(marker), barrier, i))
        for i in range(racers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * racers
    lines = marker.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("weekly:2024-03-11T11:00:00Z")
    check = open_engine(db_url)
    assert rows(check) == {"weekly:2024-03-11T11:00:00Z": ("done", "")}
    check.dispose()


# -- the foreground scheduler --------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)


async def test_scheduler_sleeps_until_each_slot_and_runs_it_once(engine: Engine) -> None:
    clock = FakeClock(MON - 2 * DAY)
    calls: list[tuple[str, datetime]] = []

    async def job(ctx: SlotContext) -> JobOutcome:
        calls.append((ctx.key, clock.now))
        clock.now += timedelta(minutes=3)  # the send takes a while
        if len(calls) == 3:
            scheduler.stop()
        return JobOutcome()

    lines = Lines()
    runner = Runner(engine, [WEEKLY], job, LATENESS, log=lines.log, clock=clock)
    scheduler = Scheduler(runner, clock=clock, wait=clock.wait)
    await scheduler.run()
    assert calls == [
        ("weekly:2024-03-11T11:00:00Z", MON),
        ("weekly:2024-03-18T11:00:00Z", MON + 7 * DAY),
        ("weekly:2024-03-25T11:00:00Z", MON + 14 * DAY),
    ]
    assert max(clock.waits) <= 60  # the clock is re-read at least every minute
    events = [e["event"] for e in lines.events()]
    assert events[0] == "schedule.start" and events[-1] == "schedule.stop"
    assert lease.holder(engine, LEASE_NAME, clock.now) is None


async def test_scheduler_stop_during_a_send_leaves_it_resumable(engine: Engine) -> None:
    clock = FakeClock(MON)
    started = asyncio.Event()

    async def job(ctx: SlotContext) -> JobOutcome:
        started.set()
        await asyncio.Event().wait()  # a long send
        raise AssertionError("not reached")

    runner = Runner(engine, [WEEKLY], job, LATENESS, log=Lines().log, clock=clock)
    scheduler = Scheduler(runner, clock=clock, wait=clock.wait, grace=0.01)
    task = asyncio.create_task(scheduler.run())
    await started.wait()
    scheduler.stop()  # SIGTERM: the grace period runs out, the send is interrupted
    await asyncio.wait_for(task, timeout=5)
    status, detail = rows(engine)["weekly:2024-03-11T11:00:00Z"]
    assert status == "failed" and "resumes" in detail


async def test_scheduler_second_stop_interrupts_at_once(engine: Engine) -> None:
    clock = FakeClock(MON)
    started = asyncio.Event()

    async def job(ctx: SlotContext) -> JobOutcome:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    runner = Runner(engine, [WEEKLY], job, LATENESS, log=Lines().log, clock=clock)
    scheduler = Scheduler(runner, clock=clock, wait=clock.wait, grace=3600)
    task = asyncio.create_task(scheduler.run())
    await started.wait()
    scheduler.stop()
    await asyncio.sleep(0)
    assert not task.done()  # still finishing the slot within its grace period
    scheduler.stop()
    await asyncio.wait_for(task, timeout=5)
    assert rows(engine)["weekly:2024-03-11T11:00:00Z"][0] == "failed"


async def test_scheduler_stops_while_idle() -> None:
    engine = open_engine("sqlite://")
    migrate(engine)
    runner = Runner(engine, [WEEKLY], Recorder(), LATENESS, log=Lines().log)
    scheduler = Scheduler(runner)  # the real wait: an event with a timeout
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.05)
    scheduler.stop()
    await asyncio.wait_for(task, timeout=5)
    engine.dispose()


# -- log lines -----------------------------------------------------------------------------


def test_json_lines_and_human_lines() -> None:
    record = logging.LogRecord(
        "newsletter.schedule", logging.WARNING, __file__, 1, "slot.skipped", None, None
    )
    record.fields = {"slot": "weekly:2024-03-11T11:00:00Z", "at": MON, "n": 2, "note": "a b"}
    line = json.loads(JSONFormatter().format(record))
    assert line["event"] == "slot.skipped" and line["level"] == "warning"
    assert line["at"] == "2024-03-11T11:00:00+00:00" and line["n"] == 2
    human = HumanFormatter().format(record)
    assert "[warning] slot.skipped slot=weekly:2024-03-11T11:00:00Z" in human
    assert 'note="a b"' in human and "\n" not in human


def test_configure_picks_json_when_not_a_terminal() -> None:
    logger = logging.getLogger("newsletter")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        stream = io.StringIO()
        configure(stream)
        configure(stream)  # idempotent: one handler
        get_logger("schedule").event("slot.start", kind="weekly")
        [line] = stream.getvalue().splitlines()
        assert json.loads(line)["kind"] == "weekly"

        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        tty = Tty()
        configure(tty)
        get_logger("newsletter.schedule").event("slot.start", kind="weekly")
        assert tty.getvalue().rstrip().endswith("slot.start kind=weekly")
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
        for h in saved[0]:
            logger.addHandler(h)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_newsletter_schedule_stops_cleanly_on_a_signal(tmp_path: Path, signame: str) -> None:
    """The real command in a child process: it logs, sleeps, and exits 0 on the signal."""
    (tmp_path / "newsletter.toml").write_text(
        '[newsletter]\nsecret = "x"\n[schedule]\ncron = "0 7 1 1 *"\ndaily = ""\n'
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    migrate(engine)
    engine.dispose()
    code = "import sys; from newsletter.cli import main; sys.exit(main())"
    args = [sys.executable, "-c", code, "-c", str(tmp_path / "newsletter.toml"), "schedule"]
    with subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=tmp_path) as proc:
        assert proc.stderr is not None
        events = []
        for line in proc.stderr:  # JSON lines: stderr is a pipe
            events.append(json.loads(line)["event"])
            if events[-1] == "schedule.sleep":
                proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=30) == 0
    assert events == ["schedule.start", "schedule.sleep", "schedule.stopping", "schedule.stop"]
