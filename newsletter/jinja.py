"""The one Jinja2 environment: every stage that renders a template gets it from here.

Templates live in the repository's top-level ``templates/`` directory. The wheel
force-includes that directory as ``newsletter/templates/`` (see pyproject.toml), so an
installed package looks there first and a checkout or editable install falls back to the
repository's copy.

HTML templates (``*.html``, ``*.html.j2``, ``*.xml.j2`` …) are autoescaped; plaintext ones
(``*.txt.j2``) are not. Undefined variables raise instead of rendering as "".
"""

from __future__ import annotations

import functools
import re
import textwrap
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_TEMPLATES = _PACKAGE_DIR / "templates"  # installed wheel
REPO_TEMPLATES = _PACKAGE_DIR.parent / "templates"  # checkout / editable install

_ESCAPED = ("html", "htm", "xml", "svg")
AUTOESCAPE_EXTENSIONS = _ESCAPED + tuple(f"{ext}.j2" for ext in _ESCAPED)

TEXT_WIDTH = 72
DATE_PATTERN = "d MMM y"  # "20 Nov 2026"
_SAFE_SCHEMES = frozenset({"http", "https"})
_SPACE = re.compile(r"\s+")
_SLUG = re.compile(r"[^a-z0-9]+")


def template_dirs() -> list[Path]:
    """Where templates are loaded from: the installed copy, else the checkout's.

    Only one directory is used, so an installed package never mixes in a stray
    ``site-packages/templates``; the checkout's is recognised by its pyproject.toml.
    """
    if PACKAGE_TEMPLATES.is_dir():
        return [PACKAGE_TEMPLATES]
    if REPO_TEMPLATES.is_dir() and (REPO_TEMPLATES.parent / "pyproject.toml").is_file():
        return [REPO_TEMPLATES]
    raise FileNotFoundError(
        f"no templates directory: looked for {PACKAGE_TEMPLATES} and {REPO_TEMPLATES}"
    )


def create_environment() -> Environment:
    """A new environment with the project's loader, escaping rules and filters."""
    env = Environment(
        loader=FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=select_autoescape(
            enabled_extensions=AUTOESCAPE_EXTENSIONS,
            disabled_extensions=("txt", "txt.j2", "text", "text.j2"),
            default_for_string=True,
            default=False,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(
        date=format_day,
        oneline=oneline,
        clip=clip,
        wrap=wrap,
        underline=underline,
        slug=slug,
        safe_href=safe_href,
        plural=plural,
    )
    return env


@functools.cache
def environment() -> Environment:
    """The shared environment (templates are compiled once per process)."""
    return create_environment()


# --- filters ---------------------------------------------------------------------------


@functools.cache
def _locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def format_day(value: datetime | None, lang: str = "en") -> str:
    """``20 Nov 2026`` (month names follow ``lang``); "" for None."""
    if value is None:
        return ""
    return str(format_date(value.date(), DATE_PATTERN, locale=_locale(lang)))


def oneline(value: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space."""
    return _SPACE.sub(" ", value).strip()


def clip(value: str, length: int = 320) -> str:
    """One line of at most ``length`` characters, cut at a word and ended with "…"."""
    text = oneline(value)
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    if " " in cut[length // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def wrap(value: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Fill a paragraph to ``width`` columns. Long words (URLs) are never broken."""
    return textwrap.fill(
        oneline(value),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def underline(value: str, char: str = "=") -> str:
    """A heading and a line of ``char`` as long as it."""
    return f"{value}\n{char * len(value)}"


def slug(value: str) -> str:
    """``The Caribbean`` -> ``the-caribbean``: for anchors."""
    return _SLUG.sub("-", value.lower()).strip("-") or "x"


def safe_href(value: str) -> str:
    """A feed link if it is http(s), else "#": no javascript: or data: links in a mail."""
    value = value.strip()
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return "#"
    return value if scheme in _SAFE_SCHEMES else "#"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``3 stories``, ``1 story``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"
