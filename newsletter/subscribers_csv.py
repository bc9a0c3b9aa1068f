"""Import and export subscribers as CSV.

The format (what ``export`` writes and ``import`` reads, so a round trip is exact)::

    email,name,countries,sources,frequency
    ana@example.org,Ana Pérez,"VE,CU",,weekly
    joe@example.net,,MX BR,Granma,daily

A header row names the columns (any order, any case; only ``email`` is required, and a
column that is absent leaves that field of an existing subscriber alone). The file is
UTF-8, with or without a byte-order mark. List fields are separated by commas inside a
quoted field, or by spaces. Other columns are ignored, and the report says so.

Import is idempotent and transactional per row: every row is checked first, good rows are
written in batches, and if a batch fails it is retried row by row, so a bad row never
takes a good one down with it. Every rejected row is reported with its line number and
reason. Someone who unsubscribed (or bounced, or complained) is never made active again
unless ``reactivate`` is given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from newsletter import subscribers as subs
from newsletter.errors import InputError
from newsletter.models import Subscriber, SubscriberStatus, utcnow
from newsletter.store import session_scope

COLUMNS = ("email", "name", "countries", "sources", "frequency")
BOM = b"\xef\xbb\xbf"
BATCH = 1000


@dataclass(frozen=True)
class Rejected:
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        who = f" ({self.email})" if self.email else ""
        return f"line {self.line}{who}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. ignored columns

    @property
    def ok(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [
                {"line": r.line, "email": r.email, "reason": r.reason} for r in self.rejected
            ],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    values: dict[str, str]  # the checked values of the columns the file has, stored form


def _bad_bytes(text: str) -> str | None:
    """The undecodable bytes (kept as surrogates by surrogateescape), as ``0xE9 0xF1``."""
    bad = [f"0x{ord(c) - 0xDC00:02X}" for c in text if 0xDC80 <= ord(c) <= 0xDCFF]
    return " ".join(dict.fromkeys(bad)) or None


def _decode(data: bytes) -> str:
    if data.startswith(BOM):
        data = data[len(BOM) :]
    return data.decode("utf-8", errors="surrogateescape")


def _header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column name -> position, and notes (ignored columns); InputError if unusable."""
    bad = _bad_bytes("".join(cells))
    if bad:
        raise InputError(f"line 1: the header is not UTF-8 (bytes {bad}); save the file as UTF-8")
    names = [c.strip().lstrip("\ufeff").lower() for c in cells]
    index: dict[str, int] = {}
    ignored: list[str] = []
    for i, name in enumerate(names):
        if name in COLUMNS:
            if name in index:
                raise InputError(f"line 1: the column {name!r} appears twice")
            index[name] = i
        elif name:
            ignored.append(cells[i].strip())
    if "email" not in index:
        raise InputError(
            "line 1: the header has no 'email' column "
            f"(expected a header row naming {', '.join(COLUMNS)})"
        )
    notes = []
    if ignored:
        listed = ", ".join(repr(c) for c in ignored)
        notes.append(f"line 1: ignored column(s) {listed}; only {', '.join(COLUMNS)} are read")
    return index, notes


def parse(
    data: bytes, *, known_sources: Collection[str]
) -> tuple[list[_Row], list[Rejected], list[str], int]:
    """Check every row: (good rows, rejected rows, notes, rows read). InputError if the
    file as a whole cannot be read (no header, header not UTF-8, broken quoting)."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    good: list[_Row] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    index: dict[str, int] | None = None
    width = 0  # how many columns the header names
    notes: list[str] = []
    rows = 0
    last = 0
    try:
        for cells in reader:
            line, last = last + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if index is None:
                index, notes = _header(cells)
                width = len(cells)
                continue
            rows += 1
            raw_email = cells[index["email"]].strip() if index["email"] < len(cells) else ""
            bad = _bad_bytes("".join(cells))
            if bad:
                rejected.append(
                    Rejected(
                        line,
                        raw_email.encode("utf-8", "replace").decode(),
                        f"not UTF-8 (bytes {bad}); save the file as UTF-8",
                    )
                )
                continue
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                rejected.append(
                    Rejected(
                        line,
                        raw_email,
                        f"{len(cells)} cells but the header names {width} columns "
                        '(quote a list that contains commas: "VE,CU")',
                    )
                )
                continue
            row, reasons = _check(cells, index, known_sources)
            if reasons:
                rejected.append(Rejected(line, raw_email, "; ".join(reasons)))
                continue
            assert row is not None
            if row.email in seen:
                rejected.append(Rejected(line, raw_email, f"duplicate of line {seen[row.email]}"))
                continue
            seen[row.email] = line
            good.append(_Row(line, row.email, row.values))
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: cannot read the CSV: {exc}") from None
    if index is None:
        raise InputError(f"the file is empty (expected a header row naming {', '.join(COLUMNS)})")
    return good, rejected, notes, rows


def _check(
    cells: list[str], index: dict[str, int], known_sources: Collection[str]
) -> tuple[_Row | None, list[str]]:
    def cell(name: str) -> str:
        i = index[name]
        return cells[i].strip() if i < len(cells) else ""

    reasons: list[str] = []
    email = ""
    values: dict[str, str] = {}
    try:
        email = subs.normalize_email(cell("email"))
    except InputError as exc:
        reasons.append(str(exc))
    checks = {
        "name": subs.clean_name,
        "countries": lambda v: subs.join(subs.parse_countries(v)),
        "sources": lambda v: subs.join(subs.parse_sources(v, known_sources)),
        "frequency": subs.parse_frequency,
    }
    for name, check in checks.items():
        if name not in index:
            continue
        try:
            values[name] = check(cell(name))
        except InputError as exc:
            reasons.append(str(exc))
    if reasons:
        return None, reasons
    return _Row(0, email, values), []


def _apply(
    session: Session,
    rows: list[_Row],
    *,
    reactivate: bool,
    now: datetime,
    report: ImportReport,
) -> None:
    existing = subs.get_many(session, (r.email for r in rows))
    for row in rows:
        sub = existing.get(row.email)
        if sub is None:
            new = Subscriber(
                email=row.email, status=SubscriberStatus.ACTIVE, created_at=now, confirmed_at=now
            )
            for key, value in row.values.items():
                setattr(new, key, value)
            session.add(new)
            report.added += 1
            continue
        if sub.status in subs.LEFT and not reactivate:
            when = sub.unsubscribed_at.date().isoformat() if sub.unsubscribed_at else ""
            since = f" since {when}" if when else ""
            report.rejected.append(
                Rejected(
                    row.line,
                    row.email,
                    f"{sub.status}{since}: not re-activated (use --reactivate to subscribe "
                    "them again)",
                )
            )
            continue
        changed = False
        for key, value in row.values.items():
            if getattr(sub, key) != value:
                setattr(sub, key, value)
                changed = True
        if sub.status != SubscriberStatus.ACTIVE:
            subs.apply(sub, status=SubscriberStatus.ACTIVE, now=now)
            changed = True
        if changed:
            session.add(sub)
            report.updated += 1
        else:
            report.unchanged += 1


def import_rows(
    engine: Engine,
    data: bytes,
    *,
    known_sources: Collection[str],
    reactivate: bool = False,
    now: datetime | None = None,
    batch: int = BATCH,
) -> ImportReport:
    """Import CSV bytes; returns what happened. InputError if the file cannot be read."""
    now = now or utcnow()
    good, rejected, notes, rows = parse(data, known_sources=known_sources)
    report = ImportReport(rows=rows, notes=notes)
    for start in range(0, len(good), batch):
        chunk = good[start : start + batch]
        partial = ImportReport()
        try:
            with session_scope(engine) as session:
                _apply(session, chunk, reactivate=reactivate, now=now, report=partial)
        except SQLAlchemyError:
            # One row (a concurrent insert, say) spoiled the batch: redo it row by row.
            partial = ImportReport()
            for row in chunk:
                one = ImportReport()
                try:
                    with session_scope(engine) as session:
                        _apply(session, [row], reactivate=reactivate, now=now, report=one)
                except SQLAlchemyError as exc:
                    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                    one = ImportReport(rejected=[Rejected(row.line, row.email, reason)])
                _merge(partial, one)
        _merge(report, partial)
    report.rejected = sorted(rejected + report.rejected, key=lambda r: r.line)
    return report


def _merge(into: ImportReport, part: ImportReport) -> None:
    into.added += part.added
    into.updated += part.updated
    into.unchanged += part.unchanged
    into.rejected.extend(part.rejected)


def export_rows(subscribers: Iterable[Subscriber]) -> str:
    """The CSV text (header row first, CRLF line ends) that :func:`import_rows` reads back."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for sub in subscribers:
        writer.writerow([sub.email, sub.name, sub.countries, sub.sources, sub.frequency])
    return out.getvalue()


def export_status(session: Session, status: str | None) -> str:
    """Export the subscribers with ``status`` (None: all of them), ordered by address."""
    return export_rows(subs.list_subscribers(session, status=status))
