"""Read ``newsletter.toml`` once, validate it, and hand the rest of the program values.

Validation is pydantic's (already present through SQLModel): unknown keys, bad types,
bad country codes and bad URLs become one :class:`ConfigError` naming the file and key.
Secrets may come from the environment: ``NEWSLETTER_SECRET``,
``NEWSLETTER_SMTP_PASSWORD``, and ``DATABASE_URL`` overrides ``database``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from newsletter.countries import is_country_code
from newsletter.digest import DigestSettings
from newsletter.errors import ConfigError

DEFAULT_CONFIG = "newsletter.toml"
CONFIG_ENV = "NEWSLETTER_CONFIG"
SECRET_ENV = "NEWSLETTER_SECRET"  # noqa: S105 - a variable name
SMTP_PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"  # noqa: S105 - a variable name
DATABASE_ENV = "DATABASE_URL"
DEFAULT_DATABASE = "sqlite:///subscribers.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


class NewsletterSection(_Strict):
    title: str = "Latin America Weekly"
    from_: str = Field("Latin America Weekly <digest@example.org>", alias="from")
    base_url: str = "http://localhost:8000"
    database: str = DEFAULT_DATABASE
    secret: str = ""
    lang: str = "en"
    editors: tuple[str, ...] = ()
    require_approval: bool = False
    unsubscribe_mailto: str = ""  # default: unsubscribe@<domain of from>

    _check_base_url = field_validator("base_url")(_http_url)


class SmtpSection(_Strict):
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    username: str = ""
    security: Literal["none", "starttls", "tls"] = "none"
    concurrency: Annotated[int, Field(ge=1, le=100)] = 8
    rate: Annotated[float, Field(gt=0)] | None = None  # messages per second, all connections
    # messages per second to one receiving domain, e.g. { "gmail.com" = 5 }
    domain_rate: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    # the same two limits held by every sender sharing the database (mailer/ratelimit.py);
    # rate and domain_rate above hold for this process alone
    global_rate: Annotated[float, Field(gt=0)] | None = None
    global_domain_rate: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    timeout: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("domain_rate", "global_domain_rate")
    @classmethod
    def _domains(cls, value: dict[str, float]) -> dict[str, float]:
        return {k.strip().lower().rstrip("."): v for k, v in value.items()}


class FetchSection(_Strict):
    timeout: Annotated[float, Field(gt=0)] = 20.0
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 32
    per_host: Annotated[int, Field(ge=1, le=100)] = 4
    max_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024


class DigestSection(_Strict):
    max_age_days: Annotated[int, Field(ge=1)] = DigestSettings.max_age_days
    max_per_source: Annotated[int, Field(ge=1)] = DigestSettings.max_per_source
    max_items: Annotated[int, Field(ge=1)] = DigestSettings.max_items


class ScheduleSection(_Strict):
    cron: str = "0 7 * * MON"
    timezone: str = "UTC"
    daily: str = "0 7 * * *"  # "" turns the daily slots off
    max_lateness_hours: Annotated[float, Field(gt=0)] = 24.0

    @field_validator("cron", "daily")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        value = " ".join(value.split())
        if info.field_name == "daily" and not value:
            return value
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"not a five-field cron expression: {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use a zoneinfo name)") from None
        return value


class DkimSection(_Strict):
    domain: str
    selector: str
    key_file: str


class SourceEntry(_Strict):
    name: Annotated[str, Field(min_length=1)]
    url: str
    country: str

    _check_url = field_validator("url")(_http_url)

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not is_country_code(value):
            raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
        return value.upper()


class _File(_Strict):
    newsletter: NewsletterSection = NewsletterSection()
    smtp: SmtpSection = SmtpSection()
    fetch: FetchSection = FetchSection()
    digest: DigestSection = DigestSection()
    schedule: ScheduleSection = ScheduleSection()
    dkim: DkimSection | None = None
    sources: tuple[SourceEntry, ...] = ()

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: tuple[SourceEntry, ...]) -> tuple[SourceEntry, ...]:
        seen: set[str] = set()
        for s in sources:
            if s.name.casefold() in seen:
                raise ValueError(f"two sources are named {s.name!r}")
            seen.add(s.name.casefold())
        return sources


@dataclass(frozen=True)
class Config:
    """The validated configuration, read once and passed down."""

    path: Path
    newsletter: NewsletterSection
    smtp: SmtpSection
    fetch: FetchSection
    digest: DigestSettings
    schedule: ScheduleSection
    dkim: DkimSection | None
    sources: tuple[SourceEntry, ...]
    database_url: str
    secret: str
    smtp_password: str

    @property
    def title(self) -> str:
        return self.newsletter.title

    @property
    def sender(self) -> str:
        return self.newsletter.from_

    def source(self, name: str) -> SourceEntry | None:
        for s in self.sources:
            if s.name.casefold() == name.casefold():
                return s
        return None


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config``, else ``$NEWSLETTER_CONFIG``, else ``./newsletter.toml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def resolve_database(url: str, base: Path) -> str:
    """Make a relative SQLite path relative to the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite://" and not url.startswith("sqlite:////"):
        rel = url[len(prefix) :]
        if rel and rel != ":memory:":
            return prefix + str((base / rel).resolve())
    return url


def parse_config(data: dict[str, Any], path: Path, env: dict[str, str] | None = None) -> Config:
    """Validate a parsed TOML document; ``env`` defaults to ``os.environ``."""
    env = dict(os.environ if env is None else env)
    try:
        doc = _File.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more)" if more else ""
        raise ConfigError(message + suffix, path=path, key=key) from None
    database = env.get(DATABASE_ENV) or doc.newsletter.database
    return Config(
        path=path,
        newsletter=doc.newsletter,
        smtp=doc.smtp,
        fetch=doc.fetch,
        digest=DigestSettings(**doc.digest.model_dump()),
        schedule=doc.schedule,
        dkim=doc.dkim,
        sources=doc.sources,
        database_url=resolve_database(database, path.parent.resolve()),
        secret=env.get(SECRET_ENV) or doc.newsletter.secret,
        smtp_password=env.get(SMTP_PASSWORD_ENV, ""),
    )


def load_config(path: Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate ``path``; every problem is a :class:`ConfigError` (exit 2)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file (run `newsletter init` to write one)", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    return parse_config(data, path, env)
