"""The editor's pages under ``/editor``: review, shape, approve, schedule or discard an issue.

Every page and action needs a logged-in editor (a signed, HttpOnly, SameSite=Lax session
cookie, Secure when ``base_url`` is https); every form carries a CSRF token
(:mod:`newsletter.web.csrf`). Each change is a form POST answered with a redirect to the
issue page, which renders the issue again from the database: what the editor sees is the
issue as it stands.

The mail is shown exactly as the chosen variant's subscribers get it, in a sandboxed
iframe loaded from ``/editor/issues/N/mail.html`` (with its own restrictive CSP), with
the plaintext beside it. Subscriber links in it are the public ones: the per-subscriber
token links are filled in by the mailer at send time only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import pycountry
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from newsletter import editors
from newsletter import issues as lifecycle
from newsletter import items as item_store
from newsletter.config import Config
from newsletter.countries import REGIONS, country_name, is_country_code, region_name
from newsletter.digest import Candidate, Digest
from newsletter.errors import InputError, NewsletterError
from newsletter.jinja import environment, template_dirs
from newsletter.lists import list_id
from newsletter.models import Editor, Issue, IssueState, Subscriber, SubscriberStatus
from newsletter.store import session_scope
from newsletter.web.csrf import FIELD as CSRF_FIELD
from newsletter.web.csrf import Csrf
from newsletter.web.throttle import LoginThrottle

SESSION_COOKIE = "newsletter_editor"
SESSION_MAX_AGE_S = 12 * 3600
PREFIX = "/editor"
LOGIN_FORM = "editor-login"
EDIT_FORM = "editor"
# The rendered mail may only show its own inline styles and remote images; no script,
# no form, no plugin; sandbox makes it an opaque origin even if loaded directly.
MAIL_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src https: http: data:; frame-ancestors 'self'"
)
MESSAGES = {
    "draft": "The draft is up to date with the new items.",
    "nothing": "Nothing new: no draft was made.",
    "saved": "Saved.",
    "approved": "Approved: this issue is frozen and will be sent.",
    "discarded": "Discarded.",
    "tested": "A test copy was sent to you.",
}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Variant:
    """A preference set to preview: empty means everything (the public variant)."""

    countries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    subscriber: str | None = None  # "as subscriber X": whose preferences these are

    @property
    def label(self) -> str:
        if not self.countries and not self.sources:
            return "Everything (the public variant)"
        bits = []
        if self.countries:
            bits.append(", ".join(self.countries))
        if self.sources:
            bits.append("from " + ", ".join(self.sources))
        return "; ".join(bits)

    @property
    def query(self) -> str:
        values = {"countries": ",".join(self.countries), "sources": ",".join(self.sources)}
        if self.subscriber:
            values = {"as": self.subscriber}
        return urlencode({k: v for k, v in values.items() if v})

    def select(self, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates this variant's subscribers get: the mailer's own rule."""
        from newsletter.mailer.message import Variant as MailerVariant

        return MailerVariant.of(",".join(self.countries), ",".join(self.sources)).select(candidates)


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


class EditorPages:
    def __init__(self, config: Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.secure = urlsplit(config.newsletter.base_url).scheme == "https"
        secret = config.secret
        if not secret:
            raise NewsletterError(
                "the editor pages need a secret: set NEWSLETTER_SECRET or [newsletter] secret"
            )
        lid = list_id(config)
        self.csrf = Csrf(secret, lid, secure=self.secure)
        self.sessions = URLSafeTimedSerializer(secret, salt=f"newsletter/{lid}/editor-session")
        self.env = environment()
        self.throttle = LoginThrottle()

    # --- sessions ----------------------------------------------------------------------

    @staticmethod
    def _fingerprint(editor: Editor) -> str:
        # A new password (or a removed account) ends every session of the editor.
        return hashlib.sha256(editor.password_hash.encode()).hexdigest()[:16]

    def session_editor(self, request: Request) -> Editor | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            value = self.sessions.loads(raw, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
            return None
        with session_scope(self.engine) as session:
            editor = session.get(Editor, value[0])
        if editor is None or not hmac.compare_digest(str(value[1]), self._fingerprint(editor)):
            return None
        return editor

    def start_session(self, response: Response, editor: Editor) -> None:
        token = self.sessions.dumps([editor.id, self._fingerprint(editor)])
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path=PREFIX,
        )

    # --- helpers -----------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        *,
        form: str = EDIT_FORM,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        nonce, new = self.csrf.nonce(request)
        html = self.env.get_template(f"web/editor/{template}").render(
            title=self.config.title,
            csrf_field=CSRF_FIELD,
            csrf=self.csrf.token(nonce, form),
            prefix=PREFIX,
            message=MESSAGES.get(request.query_params.get("done", ""), ""),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "same-origin"
        if new:
            self.csrf.set_cookie(response, nonce)
        return response

    async def form(self, request: Request, name: str = EDIT_FORM) -> FormData | None:
        """The posted form if its CSRF token is good, else None."""
        form = await request.form()
        if not self.csrf.valid(request, name, form.get(CSRF_FIELD)):
            return None
        return form

    @staticmethod
    def forbidden(
        reason: str = "the form expired or came from another site: reload and retry",
    ) -> Response:
        return HTMLResponse(
            f"<!DOCTYPE html><title>Forbidden</title><p>Forbidden: {reason}.</p>",
            status_code=403,
            headers={"Cache-Control": "no-store"},
        )

    def login_redirect(self, request: Request) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(
            f"{PREFIX}/login?" + urlencode({"next": target}),
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )

    # --- login -------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if await run_in_threadpool(self.session_editor, request):
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        return self.page(
            request,
            "login.html.j2",
            form=LOGIN_FORM,
            next=_safe_next(request.query_params.get("next")),
            error="",
            email="",
        )

    async def login(self, request: Request) -> Response:
        form = await self.form(request, LOGIN_FORM)
        if form is None:
            return self.forbidden()
        email = str(form.get("email", ""))[:320]
        password = str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        client, account = request.client.host if request.client else "", email.strip().lower()

        def check() -> Editor | None:
            with session_scope(self.engine) as session:
                return editors.authenticate(session, email, password, datetime.now(UTC))

        if wait := self.throttle.retry_after(client, account):
            # refused before Argon2 runs: guessing costs the attacker time and us no CPU
            refused = self.page(
                request,
                "login.html.j2",
                form=LOGIN_FORM,
                status=429,
                next=target,
                error=f"Too many failed logins. Try again in {math.ceil(wait / 60)} min.",
                email=email,
            )
            refused.headers["Retry-After"] = str(math.ceil(wait))
            return refused
        editor = await run_in_threadpool(check)
        if editor is None:
            self.throttle.failed(client, account)
            return self.page(
                request,
                "login.html.j2",
                form=LOGIN_FORM,
                status=401,
                next=target,
                error="Wrong email or password.",
                email=email,
            )
        self.throttle.succeeded(account)
        response = RedirectResponse(target, status_code=303)
        self.start_session(response, editor)
        return response

    async def logout(self, request: Request) -> Response:
        if await self.form(request) is None:
            return self.forbidden()
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=self.secure
        )
        return response

    # --- pages -------------------------------------------------------------------------

    async def index(self, request: Request, editor: Editor) -> Response:
        def load() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                rows = []
                for issue in lifecycle.list_issues(session)[:100]:
                    digest = lifecycle.issue_digest(
                        session, issue, title=self.config.title, settings=self.config.digest
                    )
                    rows.append((issue, digest))
                return {"rows": rows}

        return self.page(request, "index.html.j2", editor=editor, **await run_in_threadpool(load))

    async def make_draft(self, request: Request, editor: Editor) -> Response:
        form = await self.form(request)
        if form is None:
            return self.forbidden()
        kind = "daily" if form.get("kind") == "daily" else "weekly"

        def make() -> int | None:
            with session_scope(self.engine) as session:
                issue = lifecycle.create_draft(
                    session,
                    now=datetime.now(UTC),
                    max_age_days=self.config.digest.max_age_days,
                    kind=kind,
                )
                return issue.id if issue else None

        number = await run_in_threadpool(make)
        if number is None:
            return RedirectResponse(f"{PREFIX}/?done=nothing", 303)
        return RedirectResponse(f"{PREFIX}/issues/{number}?done=draft", 303)

    def variant_of(self, session: Session, request: Request) -> tuple[Variant, str]:
        """The variant asked for in the query, and an error to show (or "")."""
        params = request.query_params
        who = params.get("as", "").strip()
        if who:
            sub = session.exec(select(Subscriber).where(Subscriber.email == who.casefold())).first()
            if sub is None:
                return Variant(), f"No subscriber {who}: showing the public variant."
            return Variant(_split(sub.countries), _split(sub.sources), sub.email), ""
        countries = tuple(c.upper() for c in _split(params.get("countries", "")))
        return Variant(countries, _split(params.get("sources", ""))), ""

    def variants(self, session: Session, kind: str) -> list[Variant]:
        """The preference sets of this kind's active subscribers, everything first."""
        rows = session.exec(
            select(Subscriber.countries, Subscriber.sources)
            .where(Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.frequency == kind)
            .distinct()
            .order_by(col(Subscriber.countries), col(Subscriber.sources))
            .limit(50)
        )
        found = {Variant(_split(c.upper()), _split(s)) for c, s in rows}
        found.discard(Variant())
        return [Variant(), *sorted(found, key=lambda v: (v.countries, v.sources))]

    def render_variant(self, session: Session, issue: Issue, variant: Variant) -> tuple[Any, Any]:
        assert issue.id is not None
        candidates = variant.select(lifecycle.issue_candidates(session, issue.id))
        return lifecycle.render_issue(session, issue, self.config, candidates=candidates)

    async def issue_page(
        self, request: Request, editor: Editor, *, error: str = "", status: int = 200
    ) -> Response:
        number = int(request.path_params["number"])

        def load() -> dict[str, Any] | None:
            with session_scope(self.engine) as session:
                issue = session.get(Issue, number)
                if issue is None:
                    return None
                variant, problem = self.variant_of(session, request)
                digest, rendered = self.render_variant(session, issue, variant)
                entries = [
                    (entry, item, lifecycle.filed_under(entry, item))
                    for entry, item in lifecycle.issue_items(session, number)
                ]
                in_digest: set[int] = set()
                for group in digest.countries:
                    for source in group.sources:
                        in_digest.update(i.id for i in source.items)
                return {
                    "issue": issue,
                    "digest": digest,
                    "text": rendered.text,
                    "variant": variant,
                    "variants": self.variants(session, issue.kind),
                    "variant_error": problem,
                    "entries": entries,
                    "in_digest": in_digest,
                    "health": lifecycle.feed_health(session, self.config.sources, number),
                    "editable": issue.state == IssueState.DRAFT,
                }

        data = await run_in_threadpool(load)
        if data is None:
            return self.not_found()
        return self.page(
            request,
            "issue.html.j2",
            editor=editor,
            error=error,
            status=status,
            heading=_heading_name,
            choices=_heading_choices(),
            timezone=self.config.schedule.timezone,
            **data,
        )

    async def mail(self, request: Request, editor: Editor) -> Response:
        number = int(request.path_params["number"])

        def load() -> str | None:
            with session_scope(self.engine) as session:
                issue = session.get(Issue, number)
                if issue is None:
                    return None
                variant, _ = self.variant_of(session, request)
                return str(self.render_variant(session, issue, variant)[1].html)

        html = await run_in_threadpool(load)
        if html is None:
            return self.not_found()
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": MAIL_CSP,
                "X-Frame-Options": "SAMEORIGIN",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    def not_found(self) -> Response:
        return HTMLResponse(
            "<!DOCTYPE html><title>Not found</title><p>No such issue.</p>", status_code=404
        )

    # --- changes -----------------------------------------------------------------------

    async def change(
        self,
        request: Request,
        editor: Editor,
        apply: Callable[[Session, int, FormData], str],
    ) -> Response:
        """Check the CSRF token, apply one change, then show the issue again."""
        form = await self.form(request)
        if form is None:
            return self.forbidden()
        number = int(request.path_params["number"])

        def run() -> str:
            with session_scope(self.engine) as session:
                return apply(session, number, form)

        try:
            done = await run_in_threadpool(run)
        except NewsletterError as exc:
            return await self.issue_page(request, editor, error=str(exc), status=409)
        back = str(form.get("back", ""))
        query = f"done={done}" + (f"&{back}" if back and _plain_query(back) else "")
        anchor = str(form.get("anchor", ""))
        anchor = f"#{anchor}" if anchor.replace("-", "").isalnum() else ""
        return RedirectResponse(f"{PREFIX}/issues/{number}?{query}{anchor}", 303)

    async def item_action(self, request: Request, editor: Editor) -> Response:
        item_id = int(request.path_params["item"])

        def apply(session: Session, number: int, form: FormData) -> str:
            action = form.get("action")
            if action in ("drop", "restore"):
                lifecycle.drop_item(session, number, item_id, dropped=action == "drop")
            elif action in ("pin", "unpin"):
                lifecycle.pin_item(session, number, item_id, pinned=action == "pin")
            elif action == "move":
                lifecycle.move_item(session, number, item_id, str(form.get("country", "")))
            else:
                raise InputError(f"unknown action {action!r}")
            return "saved"

        return await self.change(request, editor, apply)

    async def set_text(self, request: Request, editor: Editor) -> Response:
        def apply(session: Session, number: int, form: FormData) -> str:
            lifecycle.set_subject(session, number, str(form.get("subject", "")))
            lifecycle.set_note(session, number, str(form.get("note", "")).replace("\r\n", "\n"))
            return "saved"

        return await self.change(request, editor, apply)

    async def approve(self, request: Request, editor: Editor) -> Response:
        def apply(session: Session, number: int, form: FormData) -> str:
            when = str(form.get("send_after", "")).strip()
            send_after = lifecycle.parse_when(when, self.config.schedule.timezone) if when else None
            lifecycle.approve(session, number, datetime.now(UTC), send_after)
            return "approved"

        return await self.change(request, editor, apply)

    async def discard(self, request: Request, editor: Editor) -> Response:
        def apply(session: Session, number: int, form: FormData) -> str:
            lifecycle.discard(session, number)
            return "discarded"

        return await self.change(request, editor, apply)

    async def test_send(self, request: Request, editor: Editor) -> Response:
        form = await self.form(request)
        if form is None:
            return self.forbidden()
        number = int(request.path_params["number"])
        try:
            await send_test_copy(self.config, self.engine, number, editor.email)
        except NewsletterError as exc:
            return await self.issue_page(request, editor, error=str(exc), status=409)
        return RedirectResponse(f"{PREFIX}/issues/{number}?done=tested", 303)

    # --- routing -----------------------------------------------------------------------

    def login_required(self, handler: Callable[[Request, Editor], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            editor = await run_in_threadpool(self.session_editor, request)
            if editor is None:
                if request.method == "GET":
                    return self.login_redirect(request)
                return self.forbidden("log in first")
            return await handler(request, editor)

        return endpoint

    def routes(self) -> list[BaseRoute]:
        guard = self.login_required
        return [
            Mount(
                PREFIX,
                routes=[
                    Route("/editor.css", self.stylesheet, methods=["GET"]),
                    Route("/login", self.login_page, methods=["GET"]),
                    Route("/login", self.login, methods=["POST"]),
                    Route("/logout", self.logout, methods=["POST"]),
                    Route("/", guard(self.index), methods=["GET"]),
                    Route("/draft", guard(self.make_draft), methods=["POST"]),
                    Route("/issues/{number:int}", guard(self.issue_page_endpoint), methods=["GET"]),
                    Route("/issues/{number:int}/mail.html", guard(self.mail), methods=["GET"]),
                    Route(
                        "/issues/{number:int}/items/{item:int}",
                        guard(self.item_action),
                        methods=["POST"],
                    ),
                    Route("/issues/{number:int}/text", guard(self.set_text), methods=["POST"]),
                    Route("/issues/{number:int}/approve", guard(self.approve), methods=["POST"]),
                    Route("/issues/{number:int}/discard", guard(self.discard), methods=["POST"]),
                    Route("/issues/{number:int}/test", guard(self.test_send), methods=["POST"]),
                ],
            ),
            Route(PREFIX, _to_index),
        ]

    async def stylesheet(self, request: Request) -> Response:
        """The pages' CSS (a file: the site's CSP allows no inline style)."""
        return Response(
            _stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    async def issue_page_endpoint(self, request: Request, editor: Editor) -> Response:
        return await self.issue_page(request, editor)


def editor_routes(config: Config, engine: Engine) -> list[BaseRoute]:
    """The ``/editor`` routes, to add to the application's routes."""
    return EditorPages(config, engine).routes()


async def send_test_copy(config: Config, engine: Engine, issue_id: int, address: str) -> str:
    """A test copy of the issue (the public variant, generic links) to ``address``."""
    from newsletter import pipeline  # the pipeline imports the lifecycle library

    def digest() -> Digest:
        with session_scope(engine) as session:
            issue = lifecycle.get_issue(session, issue_id)
            return lifecycle.issue_digest(
                session, issue, title=config.title, settings=config.digest
            )

    return await pipeline.send_test(config, await run_in_threadpool(digest), address)


async def _to_index(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", 307)


@functools.cache
def _stylesheet() -> str:
    return (template_dirs()[0] / "web" / "editor" / "editor.css").read_text("utf-8")


# --- small pure helpers ------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Only a path inside /editor: never another site (open redirect)."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if (
        parts.scheme
        or parts.netloc
        or not value.startswith(PREFIX + "/")
        or "\\" in value
        or value.startswith("//")
    ):
        return f"{PREFIX}/"
    return value


def _plain_query(query: str) -> bool:
    return all(ch.isalnum() or ch in "=&,-_.%+@" for ch in query)


def _heading_name(code: str | None) -> str:
    if not code:
        return "Elsewhere"
    if code.startswith(item_store.REGION_PREFIX):
        return region_name(code.removeprefix(item_store.REGION_PREFIX))
    return country_name(code) if is_country_code(code) else code


@functools.cache
def _heading_choices() -> list[tuple[str, str]]:
    """Every region and country an item can be moved under: (value, name)."""
    regions = [(key, name) for key, name in REGIONS.items()]
    countries = sorted(
        ((c.alpha_2, country_name(c.alpha_2)) for c in pycountry.countries), key=lambda p: p[1]
    )
    return regions + countries
