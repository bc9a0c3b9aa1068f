"""What every page shares: the site context, rendering, errors and token look-ups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.config import Config
from newsletter.countries import country_name
from newsletter.errors import TokenError
from newsletter.jinja import environment
from newsletter.lists import list_id, signer
from newsletter.models import Subscriber
from newsletter.store import session_scope
from newsletter.tokens import Purpose, Signer
from newsletter.web.csrf import FIELD, Csrf

T = TypeVar("T")

# The countries the forms offer: Latin America and the Caribbean. The configured
# sources' countries and a subscriber's own choices are always offered too.
OFFERED_COUNTRIES = (
    "AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC", "SV", "GT", "HT", "HN", "MX",
    "NI", "PA", "PY", "PE", "PR", "UY", "VE", "BZ", "GY", "SR", "JM", "TT", "BS", "BB",
    "GD", "LC", "VC", "DM", "AG", "KN",
)  # fmt: skip


class PageError(Exception):
    """Answer with the error page: a status, a heading and one sentence."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.heading = heading
        self.message = message


@dataclass
class Site:
    """The web side's view of the configuration, built once by create_app."""

    config: Config
    engine: Engine
    signer: Signer = field(init=False)
    csrf: Csrf = field(init=False)

    def __post_init__(self) -> None:
        self.signer = signer(self.config)
        secure = self.config.newsletter.base_url.startswith("https://")
        self.csrf = Csrf(self.config.secret, list_id(self.config), secure=secure)

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.config.sources]

    def countries(self, chosen: list[str] = []) -> list[tuple[str, str]]:  # noqa: B006
        """(code, name) pairs to offer, sorted by name."""
        codes = set(OFFERED_COUNTRIES) | {s.country for s in self.config.sources} | set(chosen)
        return sorted(((c, country_name(c)) for c in codes), key=lambda p: p[1])

    def url(self, path: str) -> str:
        return self.config.newsletter.base_url.rstrip("/") + path

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work in the thread pool."""
        return await run_in_threadpool(fn, *args)


def site(request: Request) -> Site:
    value = request.app.state.site
    assert isinstance(value, Site)
    return value


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    form: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """Render ``templates/web/<template>.html.j2``; ``form`` adds a CSRF field for it."""
    s = site(request)
    nonce, new = s.csrf.nonce(request) if form else ("", False)
    context = {
        "lang": s.config.newsletter.lang,
        "title": s.config.title,
        "csrf_field": FIELD,
        "csrf_token": s.csrf.token(nonce, form) if form else "",
        **values,
    }
    html = environment().get_template(f"web/{template}.html.j2").render(context)
    response = HTMLResponse(html, status_code=status)
    if new:
        s.csrf.set_cookie(response, nonce)
    return response


def check_csrf(request: Request, form: str, token: object) -> None:
    if not site(request).csrf.valid(request, form, token):
        raise PageError(
            403,
            "This form has expired",
            "Please go back, reload the page and send the form again.",
        )


def _load(engine: Engine, subscriber_id: int) -> Subscriber | None:
    with session_scope(engine) as session:
        return session.get(Subscriber, subscriber_id)


async def subscriber_for(
    request: Request, purpose: Purpose, token: str, max_age: int | None = None
) -> Subscriber:
    """The subscriber a link's token names, or PageError (400 bad token, 404 no such one)."""
    s = site(request)
    try:
        subscriber_id, fingerprint = s.signer.read(purpose, token, max_age=max_age)
    except TokenError as exc:
        raise PageError(
            400, "This link does not work", f"{exc}. Please use the link from your email."
        ) from None
    sub = await s.db(_load, s.engine, subscriber_id)
    if sub is None or not s.signer.matches(fingerprint, sub.email):
        raise PageError(
            404, "This link is no longer valid", "The address it was made for is not on the list."
        )
    return sub
