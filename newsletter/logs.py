"""Structured logs: one line per event, JSON when stderr is not a terminal.

    from newsletter.logs import get_logger
    log = get_logger(__name__)
    log.event("slot.start", slot=slot.key, kind="weekly")
    log.warning("slot.skipped", slot=slot.key, late_by="26h")

Under systemd or docker each line is a JSON object (``ts``, ``level``, ``event``, then the
fields), ready for ``journalctl -o cat | jq``; on a terminal it reads as
``2024-03-11 07:00:01 slot.start kind=weekly slot=...``. Events are ordinary ``logging``
records on the ``newsletter`` logger, so anything else that logs there is formatted too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

ROOT = "newsletter"
_HANDLER_MARK = "_newsletter_handler"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JSONFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "event": ..., **fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        if record.name != ROOT and not record.name.startswith(ROOT + "."):
            line["logger"] = record.name
        for key, value in _fields(record).items():
            line.setdefault(key, _plain(value))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class HumanFormatter(logging.Formatter):
    """``2024-03-11 07:00:01 [warning] slot.skipped slot=... late_by=...`` for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        level = "" if record.levelno == logging.INFO else f"[{record.levelname.lower()}] "
        parts = [f"{when} {level}{record.getMessage()}"]
        for key, value in _fields(record).items():
            plain = _plain(value)
            text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)
            if isinstance(plain, str) and (not text or any(c.isspace() for c in text)):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class EventLogger:
    """A thin wrapper: ``event(name, **fields)`` is one log record with those fields."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _log(self, level: int, name: str, fields: dict[str, Any], exc: bool = False) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, name, extra={"fields": fields}, exc_info=exc)

    def event(self, name: str, /, **fields: Any) -> None:
        self._log(logging.INFO, name, fields)

    def debug(self, name: str, /, **fields: Any) -> None:
        self._log(logging.DEBUG, name, fields)

    def warning(self, name: str, /, **fields: Any) -> None:
        self._log(logging.WARNING, name, fields)

    def error(self, name: str, /, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, name, fields, exc_info)


def get_logger(name: str = ROOT) -> EventLogger:
    """The event logger for a module (a child of ``newsletter``)."""
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return EventLogger(logging.getLogger(name))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when the event happens (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(
    stream: IO[str] | None = None, *, json_lines: bool | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send the ``newsletter`` logger's events to ``stream`` (stderr), one line each.

    ``json_lines`` defaults to "stream is not a terminal". Calling it again replaces the
    handler it installed before, so it is safe to call once per command. Events still
    propagate to the root logger, which has no handler in the CLI (and pytest's in tests).
    """
    out = stream if stream is not None else sys.stderr
    if json_lines is None:
        isatty = getattr(out, "isatty", None)
        json_lines = not (callable(isatty) and isatty())
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JSONFormatter() if json_lines else HumanFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        if getattr(old, _HANDLER_MARK, False):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def unconfigure() -> None:
    """Remove the handler :func:`configure` installed (tests)."""
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        if getattr(old, _HANDLER_MARK, False):
            logger.removeHandler(old)
