"""When the digest goes out: slots from croniter + zoneinfo, and running each one once.

A *slot* is one moment a cron expression names in the configured timezone, kept in UTC;
its key (``weekly:2024-03-11T06:00:00Z``) is the primary key of ``schedule_run``, which is
how a slot is done exactly once however many schedulers or ``run-due`` timers there are.

Daylight saving time. Cron expressions are read as wall-clock times in ``[schedule]
timezone``: croniter walks naive local times (its own handling of aware datetimes repeats
slots when clocks go back) and zoneinfo turns each into an instant:

- a time the clocks skip (02:30 on a spring-forward night in Madrid) happens when the
  clocks jump, at 03:00 local: the day still has its slot, once;
- a time that happens twice (02:30 on a fall-back night in Madrid) is taken the first
  time only.

The gap rule. After downtime, only the latest slot that has passed is run, and it covers
everything since the last run (the digest takes every item not yet sent to this kind of
subscriber); the missed ones are logged. When even that slot is older than
``max_lateness_hours``, it is recorded as skipped, with a log line, and the next slot
covers the gap. A run that failed or was interrupted is resumed by the next run while its
slot is within ``max_lateness_hours`` (sending is resumable).

The work for a slot is a callable passed in (:data:`Job`), so this module does not know
about fetching or sending; the CLI passes the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter import lease
from newsletter.config import ScheduleSection
from newsletter.errors import ConfigError
from newsletter.logs import EventLogger, get_logger
from newsletter.models import ScheduleRun

KINDS = ("weekly", "daily")
LEASE_NAME = "schedule"
LEASE_TTL = timedelta(minutes=10)
RENEW_EVERY = timedelta(minutes=1)
RETRY_EVERY = timedelta(minutes=5)  # the foreground scheduler, after a failed run
MAX_WAIT = 60.0  # the foreground scheduler re-reads the clock at least this often (seconds)
MISSED_LIMIT = 10_000  # how many missed slots are counted after a long downtime
# Slots are found by walking local wall-clock time from a little before the instant asked
# about; no zone's offset moves by more than this in one transition.
_WALL_MARGIN = timedelta(hours=3)

Status = Literal["running", "done", "skipped", "failed"]


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the schedule")
    return moment.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The zoneinfo zone ``name``; a :class:`ConfigError` when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {name!r}", key="schedule.timezone") from None


def slot_key(kind: str, at: datetime) -> str:
    return f"{kind}:{_utc(at).strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass(frozen=True, order=True)
class Slot:
    """One moment a schedule names: ``at`` in UTC; ``local`` in the schedule's zone."""

    at: datetime
    kind: str
    tz: ZoneInfo = field(compare=False)

    @property
    def key(self) -> str:
        return slot_key(self.kind, self.at)

    @property
    def local(self) -> datetime:
        return self.at.astimezone(self.tz)


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant the clocks in ``tz`` show ``wall`` (naive); for a skipped wall
    time, the instant the clocks jump over it."""
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # In a gap: walk forward to the first wall time that exists (transitions fall on
    # whole minutes; no gap is longer than a few hours).
    probe = wall.replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        aware = probe.replace(tzinfo=tz, fold=0)
        if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == probe:
            return aware.astimezone(UTC)
    raise ValueError(f"{wall} does not exist in {tz.key}")  # pragma: no cover


@dataclass(frozen=True)
class Schedule:
    """One kind's slots: a cron expression read in a timezone."""

    kind: str
    cron: str
    tz: ZoneInfo

    def _walk(self, wall: datetime, *, forward: bool) -> Iterator[datetime]:
        it = croniter(self.cron, wall)
        last: datetime | None = None
        while True:
            try:
                step = it.get_next(datetime) if forward else it.get_prev(datetime)
            except CroniterError:  # an expression with no date ("0 0 30 2 *")
                return
            at = _localize(step, self.tz)
            if at != last:  # two wall times in one gap land on one instant
                yield at
            last = at

    def after(self, moment: datetime) -> Iterator[Slot]:
        """Slots strictly after ``moment``, in order (endless)."""
        moment = _utc(moment)
        start = moment.astimezone(self.tz).replace(tzinfo=None) - _WALL_MARGIN
        for at in self._walk(start, forward=True):
            if at > moment:
                yield Slot(at, self.kind, self.tz)

    def until(self, moment: datetime) -> Iterator[Slot]:
        """Slots at or before ``moment``, newest first (endless)."""
        moment = _utc(moment)
        start = moment.astimezone(self.tz).replace(tzinfo=None) + _WALL_MARGIN
        for at in self._walk(start, forward=False):
            if at <= moment:
                yield Slot(at, self.kind, self.tz)

    def upcoming(self, now: datetime, count: int) -> list[Slot]:
        return list(islice(self.after(now), count))

    def next(self, now: datetime) -> Slot | None:
        return next(self.after(now), None)

    def latest(self, now: datetime) -> Slot | None:
        """The newest slot at or before ``now``."""
        return next(self.until(now), None)

    def between(self, start: datetime, end: datetime, limit: int = MISSED_LIMIT) -> list[Slot]:
        """Slots strictly after ``start`` and strictly before ``end``, oldest first."""
        found: list[Slot] = []
        for slot in self.after(start):
            if slot.at >= _utc(end) or len(found) >= limit:
                break
            found.append(slot)
        return found


def schedules(section: ScheduleSection) -> list[Schedule]:
    """The configured schedules: weekly (``cron``) and, unless ``daily = ""``, daily."""
    tz = zone(section.timezone)
    found = [Schedule("weekly", section.cron, tz)]
    if section.daily.strip():
        found.append(Schedule("daily", section.daily, tz))
    return found


# -- what is due ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one kind's schedule asks for at ``now``."""

    kind: str
    run: Slot | None = None  # the slot to run now
    resume: bool = False  # ``run`` already has a row (failed or interrupted): take it over
    missed: tuple[Slot, ...] = ()  # earlier slots since the last run, covered by ``run``
    skip: Slot | None = None  # the latest slot, too late to run: recorded as skipped
    abandon: ScheduleRun | None = None  # a run left unfinished past max_lateness


def plan(
    schedule: Schedule, now: datetime, last: ScheduleRun | None, max_lateness: timedelta
) -> Plan:
    """Apply the gap rule, given the newest recorded run of this kind (``last``)."""
    now = _utc(now)
    latest = schedule.latest(now)
    if latest is None:
        return Plan(schedule.kind)
    late = now - latest.at > max_lateness
    if last is not None and last.due_at >= latest.at:
        if last.due_at != latest.at or last.status not in ("running", "failed"):
            return Plan(schedule.kind)  # done or skipped already
        if late:
            return Plan(schedule.kind, abandon=last if last.status == "running" else None)
        return Plan(schedule.kind, run=latest, resume=True)
    if last is None and late:
        return Plan(schedule.kind)  # a new installation starts with the next slot
    missed: tuple[Slot, ...] = ()
    if last is not None:
        missed = tuple(schedule.between(last.due_at, latest.at))
    abandon = last if last is not None and last.status == "running" else None
    if late:
        return Plan(schedule.kind, missed=missed, skip=latest, abandon=abandon)
    return Plan(schedule.kind, run=latest, missed=missed, abandon=abandon)


def last_run(session: Session, kind: str) -> ScheduleRun | None:
    """The newest recorded slot of ``kind``."""
    query = (
        select(ScheduleRun)
        .where(col(ScheduleRun.kind) == kind)
        .order_by(col(ScheduleRun.due_at).desc())
        .limit(1)
    )
    return session.exec(query).first()


# -- running a slot ------------------------------------------------------------------------


@dataclass
class SlotContext:
    """What a job is told about the slot it runs for."""

    slot: Slot
    now: datetime  # when the run started
    missed: tuple[Slot, ...] = ()  # the earlier slots this run covers
    previous: datetime | None = None  # the last slot of this kind that was recorded
    resumed: bool = False  # an earlier run of this slot failed or was interrupted
    lease_lost: bool = False  # set if the lease could not be renewed during the job

    @property
    def kind(self) -> str:
        return self.slot.kind

    @property
    def key(self) -> str:
        return self.slot.key


@dataclass(frozen=True)
class JobOutcome:
    """What the job did: the issue it made or sent, a one-line summary, and whether the
    slot should count as failed (and so be retried while within max_lateness)."""

    issue_id: int | None = None
    detail: str = ""
    failed: bool = False


Job = Callable[[SlotContext], Awaitable[JobOutcome]]


@dataclass(frozen=True)
class RunResult:
    """How one slot ended in this run."""

    kind: str
    slot: str
    status: Status
    detail: str = ""
    issue_id: int | None = None


def _claim(engine: Engine, slot: Slot, now: datetime, *, resume: bool, detail: str) -> bool:
    """Record that ``slot`` is being run; False when another runner has it or did it."""
    if resume:
        stmt = (
            update(ScheduleRun)
            .where(
                col(ScheduleRun.slot) == slot.key,
                col(ScheduleRun.status).in_(("running", "failed")),
            )
            .values(status="running", started_at=now, finished_at=None, detail=detail)
            .returning(col(ScheduleRun.slot))
        )
        with engine.begin() as conn:
            return conn.execute(stmt).first() is not None
    row = ScheduleRun(
        slot=slot.key, kind=slot.kind, due_at=slot.at, started_at=now, status="running"
    )
    row.detail = detail
    try:
        with Session(engine) as session:
            session.add(row)
            session.commit()
    except IntegrityError:
        return False  # the primary key says: someone else has this slot
    return True


def _finish(
    engine: Engine,
    key: str,
    status: Status,
    now: datetime,
    detail: str,
    issue_id: int | None = None,
) -> None:
    values: dict[str, object] = {"status": status, "finished_at": now, "detail": detail[:2000]}
    if issue_id is not None:
        values["issue_id"] = issue_id
    with engine.begin() as conn:
        conn.execute(update(ScheduleRun).where(col(ScheduleRun.slot) == key).values(**values))


def _record_skip(engine: Engine, slot: Slot, now: datetime, detail: str) -> bool:
    row = ScheduleRun(
        slot=slot.key,
        kind=slot.kind,
        due_at=slot.at,
        started_at=now,
        finished_at=now,
        status="skipped",
        detail=detail,
    )
    try:
        with Session(engine) as session:
            session.add(row)
            session.commit()
    except IntegrityError:
        return False
    return True


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}h"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runner:
    """Runs the due slots of some schedules under the ``schedule`` lease."""

    engine: Engine
    schedules: list[Schedule]
    job: Job
    max_lateness: timedelta
    owner: str = field(default_factory=lease.new_owner)
    log: EventLogger = field(default_factory=lambda: get_logger("newsletter.schedule"))
    clock: Callable[[], datetime] = _utcnow  # for lease renewals during a job
    lease_ttl: timedelta = LEASE_TTL
    renew_every: timedelta = RENEW_EVERY

    async def run_due(self, now: datetime) -> list[RunResult]:
        """Do the work of every slot due at ``now`` that is not done yet; return what ran.

        Nothing happens (and ``[]`` comes back) while another process holds the lease.
        """
        now = _utc(now)
        if not lease.acquire(self.engine, LEASE_NAME, self.owner, self.lease_ttl, now):
            other = lease.holder(self.engine, LEASE_NAME, now)
            self.log.event("schedule.busy", holder=other.owner if other else None)
            return []
        try:
            results: list[RunResult] = []
            for schedule in self.schedules:
                result = await self._run_kind(schedule, now)
                if result is not None:
                    results.append(result)
            return results
        finally:
            lease.release(self.engine, LEASE_NAME, self.owner)

    async def _run_kind(self, schedule: Schedule, now: datetime) -> RunResult | None:
        with Session(self.engine) as session:
            last = last_run(session, schedule.kind)
        todo = plan(schedule, now, last, self.max_lateness)
        if todo.abandon is not None:
            self.log.warning(
                "slot.abandoned", kind=todo.kind, slot=todo.abandon.slot, reason="past max_lateness"
            )
            _finish(self.engine, todo.abandon.slot, "failed", now, "abandoned: past max_lateness")
        if todo.missed:
            self.log.warning(
                "slot.missed",
                kind=todo.kind,
                count=len(todo.missed),
                first=todo.missed[0].key,
                last=todo.missed[-1].key,
                covered_by=todo.run.key if todo.run else None,
            )
        if todo.skip is not None:
            late_by = now - todo.skip.at
            detail = f"missed by {_hours(late_by)} (max_lateness {_hours(self.max_lateness)})"
            if _record_skip(self.engine, todo.skip, now, detail):
                self.log.warning(
                    "slot.skipped",
                    kind=todo.kind,
                    slot=todo.skip.key,
                    local=todo.skip.local,
                    late_by=_hours(late_by),
                    max_lateness=_hours(self.max_lateness),
                )
                return RunResult(todo.kind, todo.skip.key, "skipped", detail)
            return None
        if todo.run is None:
            return None
        slot = todo.run
        detail = f"covers {len(todo.missed)} missed slot(s)" if todo.missed else ""
        if not _claim(self.engine, slot, now, resume=todo.resume, detail=detail):
            self.log.event("slot.taken", kind=slot.kind, slot=slot.key)
            return None
        ctx = SlotContext(
            slot=slot,
            now=now,
            missed=todo.missed,
            previous=last.due_at if last is not None else None,
            resumed=todo.resume,
        )
        return await self._run_job(ctx)

    async def _run_job(self, ctx: SlotContext) -> RunResult:
        slot = ctx.slot
        self.log.event(
            "slot.start",
            kind=slot.kind,
            slot=slot.key,
            local=slot.local,
            resumed=ctx.resumed,
            missed=len(ctx.missed),
        )
        renewer = asyncio.create_task(self._renew(ctx))
        try:
            outcome = await self.job(ctx)
        except asyncio.CancelledError:
            detail = "interrupted; the next run resumes it"
            _finish(self.engine, slot.key, "failed", self.clock(), detail)
            self.log.warning("slot.interrupted", kind=slot.kind, slot=slot.key)
            raise
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            _finish(self.engine, slot.key, "failed", self.clock(), detail)
            self.log.error(
                "slot.failed", exc_info=True, kind=slot.kind, slot=slot.key, error=detail
            )
            return RunResult(slot.kind, slot.key, "failed", detail)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        status: Status = "failed" if outcome.failed else "done"
        _finish(self.engine, slot.key, status, self.clock(), outcome.detail, outcome.issue_id)
        if outcome.failed:
            self.log.error(
                "slot.failed",
                kind=slot.kind,
                slot=slot.key,
                issue=outcome.issue_id,
                error=outcome.detail,
            )
        else:
            self.log.event(
                "slot.done",
                kind=slot.kind,
                slot=slot.key,
                issue=outcome.issue_id,
                detail=outcome.detail,
            )
        return RunResult(slot.kind, slot.key, status, outcome.detail, outcome.issue_id)

    async def _renew(self, ctx: SlotContext) -> None:
        while True:
            await asyncio.sleep(self.renew_every.total_seconds())
            if not lease.renew(self.engine, LEASE_NAME, self.owner, self.lease_ttl, self.clock()):
                ctx.lease_lost = True
                self.log.error("lease.lost", slot=ctx.key, owner=self.owner)
                return

    def next_wake(self, now: datetime, results: list[RunResult]) -> datetime | None:
        """When the foreground scheduler should look again."""
        upcoming = [s for s in (sch.next(now) for sch in self.schedules) if s is not None]
        wake = min((s.at for s in upcoming), default=None)
        if any(r.status == "failed" for r in results):
            retry = _utc(now) + RETRY_EVERY
            wake = retry if wake is None else min(wake, retry)
        return wake


class Scheduler:
    """``newsletter schedule``: sleep until the next slot, run it, repeat, until stopped.

    :meth:`stop` (from a signal handler) lets the current slot finish for up to ``grace``
    seconds and then interrupts it; a second :meth:`stop` interrupts it at once. Either way
    the slot is left resumable: its deliveries are claimed one by one, and the next run
    takes it over.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        grace: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        wait: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.runner = runner
        self.grace = grace
        self.clock = clock
        self._wait = wait
        self._stop = asyncio.Event()
        self._current: asyncio.Task[list[RunResult]] | None = None
        self._stops = 0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stops += 1
        self._stop.set()
        task = self._current
        log = self.runner.log
        if task is None or task.done():
            log.event("schedule.stopping")
        elif self._stops == 1 and self.grace > 0:
            log.event("schedule.stopping", grace=self.grace, detail="finishing the current slot")
            asyncio.get_running_loop().call_later(self.grace, task.cancel)
        else:
            log.event("schedule.stopping", detail="interrupting the current slot")
            task.cancel()

    async def _sleep(self, seconds: float) -> None:
        if self._wait is not None:
            await self._wait(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def run(self) -> None:
        log = self.runner.log
        log.event(
            "schedule.start",
            owner=self.runner.owner,
            kinds=[s.kind for s in self.runner.schedules],
        )
        while not self._stop.is_set():
            now = self.clock()
            self._current = asyncio.create_task(self.runner.run_due(now))
            try:
                results = await self._current
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are cancelled ourselves, not just the slot
                break
            finally:
                self._current = None
            if self._stop.is_set():
                break
            wake = self.runner.next_wake(self.clock(), results)
            if wake is None:
                log.warning("schedule.idle", detail="the schedules name no future slot")
                break
            log.event("schedule.sleep", until=wake)
            while not self._stop.is_set():
                remaining = (wake - self.clock()).total_seconds()
                if remaining <= 0:
                    break
                await self._sleep(min(remaining, MAX_WAIT))
        log.event("schedule.stop")
