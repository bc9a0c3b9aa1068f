"""Editor accounts: who may review, edit, approve and schedule issues.

Passwords are hashed with Argon2id (argon2-cffi); a login against an unknown address
costs the same as one against a known address. :func:`notify_editors` tells the editors
that a draft waits for them (``require_approval = true``).
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.mailer.single import send_one
from newsletter.models import Editor, Issue, utcnow
from newsletter.subscribers import normalize_email

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_hasher = PasswordHasher()
# Verified when the address is unknown, so that timing does not tell who has an account.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"a password has at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def get_editor(session: Session, email: str) -> Editor | None:
    try:
        address = normalize_email(email)
    except InputError:
        return None
    return session.exec(select(Editor).where(Editor.email == address)).first()


def add_editor(session: Session, email: str, password: str) -> Editor:
    """A new editor account; refuses an address that already has one."""
    address = normalize_email(email)
    if get_editor(session, address) is not None:
        raise InputError(f"{address} is already an editor")
    editor = Editor(email=address, password_hash=hash_password(password), created_at=utcnow())
    session.add(editor)
    session.flush()
    return editor


def set_password(session: Session, email: str, password: str) -> Editor:
    editor = get_editor(session, email)
    if editor is None:
        raise InputError(f"no editor {email!r}")
    editor.password_hash = hash_password(password)
    session.add(editor)
    return editor


def remove_editor(session: Session, email: str) -> Editor:
    editor = get_editor(session, email)
    if editor is None:
        raise InputError(f"no editor {email!r}")
    session.delete(editor)
    return editor


def list_editors(session: Session) -> list[Editor]:
    return list(session.exec(select(Editor).order_by(col(Editor.email))))


def authenticate(session: Session, email: str, password: str, now: datetime) -> Editor | None:
    """The editor if the password is right (recording the login), else None."""
    editor = get_editor(session, email)
    if len(password) > MAX_PASSWORD:
        return None
    try:
        _hasher.verify(editor.password_hash if editor else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if editor is None:  # pragma: no cover - the dummy hash matches no real password
        return None
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = _hasher.hash(password)
    editor.last_login_at = now
    session.add(editor)
    return editor


# --- the review mail ---------------------------------------------------------------------


def review_url(config: Config, issue_id: int) -> str:
    return f"{config.newsletter.base_url.rstrip('/')}/editor/issues/{issue_id}"


def review_message(config: Config, issue: Issue, subject: str | None = None) -> EmailMessage:
    """The short mail that tells the editors a draft waits for their review."""
    assert issue.id is not None
    sender = parseaddr(config.sender)[1] or "newsletter@localhost"
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.newsletter.editors)
    message["Subject"] = f"[{config.title}] issue {issue.id} is ready for review"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"
    lines = [
        f"Issue {issue.id} ({issue.kind}) of {config.title} is a draft waiting for review.",
        "",
    ]
    if subject:
        lines += [f"Subject: {subject}", ""]
    lines += [
        "Review, edit and approve it here (log in first):",
        review_url(config, issue.id),
        "",
        f"or from a terminal: newsletter issues show {issue.id}",
        f"                   newsletter issues approve {issue.id}",
        "",
        "Nothing is sent to subscribers until an editor approves it.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


async def notify_editors(config: Config, issue: Issue, *, subject: str | None = None) -> list[str]:
    """Mail ``[newsletter] editors`` a link to review ``issue``; returns who was mailed.

    Uses ``[smtp]`` (security, login, timeout). No editors configured: nothing is sent.
    Raises :class:`SMTPUnavailableError` when the server cannot be reached and
    :class:`DeliveryError` when it refuses the message.
    """
    recipients = list(config.newsletter.editors)
    if not recipients:
        return []
    await send_one(config, review_message(config, issue, subject), recipients=recipients)
    return recipients
