"""Send one issue: claim batches, fill each subscriber's message, deliver, record.

    claimer     leases batches of rows (deliveries.claim) into a small bounded queue
    workers     ``concurrency`` of them: fill the template, pool.deliver, record
    recorder    group commit: every outcome waiting is written in one transaction; a
                worker fills its next message and sends its envelope (MAIL, RCPT, DATA)
                meanwhile, but writes the message only once its last outcome is durable,
                so at most ``concurrency`` accepted messages are ever unrecorded
    heartbeat   renews the leases while the run lives

Several senders (``send --worker`` processes, on one host or many) share an issue: each
claims its own batches. With ``SendOptions.linger`` a sender that finds nothing left to
claim stays while another holds claims, frees those of dead processes on this host
(others lapse with their lease) and takes them over, and ends once every row has ended
or is its own deferred one.

A killed run leaves rows ``claimed``; the next run frees them at once when their owner
is a dead process on this machine, otherwise when the lease lapses. Those rows are sent
again; a copy that was accepted but not yet recorded is the only duplicate, with the
same Message-ID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from newsletter.digest import Candidate, Digest
from newsletter.mailer import deliveries
from newsletter.mailer.deliveries import Claimed, Outcome
from newsletter.mailer.dkim import Signer as DkimSigner
from newsletter.mailer.message import (
    EVERYONE,
    ListSettings,
    MessageTemplate,
    Recipient,
    Variant,
    build_template,
    message_id,
)
from newsletter.mailer.smtp import Outcome as SmtpOutcome
from newsletter.mailer.smtp import SenderPool
from newsletter.models import DeliveryState
from newsletter.render import RenderedDigest

DigestFor = Callable[[Sequence[Candidate]], Digest]
Renderer = Callable[[Digest], RenderedDigest]
ProgressFn = Callable[[str], None]  # called with the state each delivery ended in


@dataclass
class SendSummary:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0  # still failing temporarily after the retries: the next run tries again
    issue_sent: bool = False  # every delivery of the issue has ended

    @property
    def ok(self) -> bool:
        return not self.failed and not self.deferred

    def count(self, state: DeliveryState) -> None:
        if state == DeliveryState.SENT:
            self.delivered += 1
        elif state == DeliveryState.FAILED:
            self.failed += 1
        elif state == DeliveryState.SKIPPED:
            self.skipped += 1
        else:
            self.deferred += 1


@dataclass(frozen=True)
class SendOptions:
    batch: int = 200  # rows per claim
    lease: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    linger: bool = False  # stay while other senders hold claims (see the module doc)
    poll: float = 1.0  # seconds between looks while lingering


class Templates:
    """One rendered, inlined and serialized template per variant, built on first use."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        digest_for: DigestFor,
        renderer: Renderer,
        settings: ListSettings,
        date: datetime,
    ) -> None:
        self.candidates = list(candidates)
        self.digest_for = digest_for
        self.renderer = renderer
        self.settings = settings
        self.date = date
        self._built: dict[Variant, asyncio.Future[MessageTemplate | None]] = {}

    def build(self, variant: Variant) -> MessageTemplate | None:
        digest = self.digest_for(variant.select(self.candidates))
        if digest.is_empty:
            return None
        return build_template(
            self.renderer(digest), subject=digest.subject, settings=self.settings, date=self.date
        )

    async def get(self, variant: Variant) -> MessageTemplate | None:
        future = self._built.get(variant)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._built[variant] = future
            try:  # premailer takes ~150 ms: off the event loop, the other workers go on
                future.set_result(await asyncio.to_thread(self.build, variant))
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return await asyncio.shield(future)


class Recorder:
    """Group commit of outcomes; the future :meth:`submit` returns is done once written."""

    def __init__(self, engine: Engine, owner: str, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.owner = owner
        self.clock = clock
        self._waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    def submit(self, outcome: Outcome) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        self._wake.set()
        return future

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._waiting = self._waiting, []
            if not batch:
                continue
            try:
                await asyncio.to_thread(
                    deliveries.record, self.engine, [o for o, _ in batch], self.owner, self.clock()
                )
            except Exception as exc:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                        f.exception()  # retrieved: the run fails with it below
                raise
            for _, f in batch:
                if not f.done():
                    f.set_result(None)


async def deliver_issue(
    engine: Engine,
    issue_id: int,
    *,
    pool: SenderPool,
    templates: Templates,
    settings: ListSettings,
    dkim: DkimSigner | None = None,
    options: SendOptions = SendOptions(),
    on_progress: ProgressFn | None = None,
) -> SendSummary:
    """Work through the issue's open deliveries with an opened pool; see the module doc."""
    owner = deliveries.new_owner()
    summary = SendSummary()
    concurrency = pool.settings.concurrency
    jobs: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=max(options.batch, concurrency))
    recorder = Recorder(engine, owner, options.clock)

    in_flight: set[asyncio.Future[list[Claimed]]] = set()

    async def claimer() -> None:
        while not pool.unavailable:
            # A cancelled await leaves the thread running; the rows it claims must be
            # released after it ends, so the cleanup below waits for it.
            claiming = asyncio.ensure_future(
                asyncio.to_thread(
                    deliveries.claim,
                    engine,
                    issue_id,
                    owner,
                    options.batch,
                    options.clock(),
                    options.lease,
                )
            )
            in_flight.add(claiming)
            claiming.add_done_callback(in_flight.discard)
            batch = await asyncio.shield(claiming)
            if not batch:
                if options.linger and await asyncio.to_thread(others_hold):
                    await asyncio.sleep(options.poll)
                    continue
                break
            for job in batch:
                await jobs.put(job)
        for _ in range(concurrency):
            await jobs.put(None)

    def others_hold() -> bool:
        deliveries.release_dead(engine, issue_id)
        return deliveries.held_by_others(engine, issue_id, owner)

    async def worker() -> None:
        logged: asyncio.Future[None] | None = None  # the last outcome's write to the log
        while (job := await jobs.get()) is not None:
            outcome = await deliver_one(job, logged)
            if logged is not None:
                await logged  # done already when a message was written
            logged = recorder.submit(outcome)
            summary.count(outcome.state)
            if on_progress:
                on_progress(outcome.state.value)
        if logged is not None:
            await logged

    async def deliver_one(job: Claimed, logged: asyncio.Future[None] | None) -> Outcome:
        mid = message_id(settings, issue_id, job.subscriber_id)
        if not job.active:
            return Outcome(job.delivery_id, DeliveryState.SKIPPED, "unsubscribed", mid, 0)
        template = await templates.get(Variant.of(job.countries, job.sources))
        if template is None:
            reason = "nothing in this issue matches the subscriber's preferences"
            return Outcome(job.delivery_id, DeliveryState.SKIPPED, reason, mid, 0)
        try:
            data = template.for_recipient(issue_id, Recipient(job.subscriber_id, job.email))
        except ValueError as exc:  # an address that cannot be put in a header
            return Outcome(job.delivery_id, DeliveryState.FAILED, str(exc), mid, 0)
        if dkim is not None:
            data = dkim.sign(data)
        result = await pool.deliver(settings.sender, job.email, data, ready=logged)
        state = {
            SmtpOutcome.DELIVERED: DeliveryState.SENT,
            SmtpOutcome.FAILED: DeliveryState.FAILED,
            SmtpOutcome.DEFERRED: DeliveryState.PENDING,
        }[result.outcome]
        return Outcome(job.delivery_id, state, result.reply, mid, result.attempts)

    async def heartbeat() -> None:
        every = max(options.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            until = options.clock() + options.lease
            await asyncio.to_thread(deliveries.renew, engine, issue_id, owner, until)

    background = [
        asyncio.create_task(recorder.run(), name="recorder"),
        asyncio.create_task(heartbeat(), name="heartbeat"),
    ]
    try:
        work = [asyncio.create_task(claimer(), name="claimer")]
        work += [asyncio.create_task(worker(), name=f"worker-{i}") for i in range(concurrency)]
        try:
            await _gather_or_fail(work, background)
        finally:
            await _cancel_all(work)
    finally:
        await _cancel_all(background)
        # whatever this run still holds (cancelled, or an error) goes back to the pool
        await asyncio.shield(_release(engine, issue_id, owner, set(in_flight)))
    summary.issue_sent = deliveries.finish_if_done(engine, issue_id, options.clock())
    return summary


async def _release(
    engine: Engine, issue_id: int, owner: str, claiming: set[asyncio.Future[list[Claimed]]]
) -> None:
    await asyncio.gather(*claiming, return_exceptions=True)
    await asyncio.to_thread(deliveries.release, engine, issue_id, [owner])


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel and reap ``tasks``, cancelling again any that swallowed it.

    On Python 3.11 ``asyncio.wait_for`` (which aiosmtplib uses for its timeouts) can lose
    a cancellation that races with a reply; such a worker would wait on the queue forever.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    for t in tasks:
        if not t.cancelled():
            t.exception()  # retrieved: reported by _gather_or_fail when it mattered


async def _gather_or_fail(
    work: list[asyncio.Task[None]], background: list[asyncio.Task[None]]
) -> None:
    """Wait for ``work``; the first failure of any task (a background one too) is raised."""
    pending: set[asyncio.Task[None]] = set(work) | set(background)
    remaining = set(work)
    while remaining:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
            remaining.discard(t)


__all__ = ["EVERYONE", "SendOptions", "SendSummary", "Templates", "deliver_issue"]
