"""Messages: one serialized template per variant, filled per subscriber on bytes.

Inlining the CSS costs ~150 ms and building an ``EmailMessage`` ~10 ms, so both happen
once per *variant* (one set of subscriber preferences). What differs per subscriber (To,
Message-ID, the unsubscribe and preferences links, the List-Unsubscribe header) are
*slots* in the serialized bytes; :meth:`MessageTemplate.fill` joins the fixed segments
with the subscriber's values, which costs a few microseconds.

Transfer encoding: both parts are quoted-printable, encoded here, slot-aware. Every
slot in a body starts on a fresh line (a soft break is put before it) and its value is
encoded as whole QP lines that each end with a soft break, so no slot ever straddles a
soft break, a long URL is split only by soft breaks that decoding removes, and every
line stays within QP's 76 characters whatever the value's length. The MIME boundary
contains ``=_``, which quoted-printable text can never contain.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from enum import Enum
from urllib.parse import quote

from newsletter import lists, render
from newsletter.config import Config
from newsletter.digest import Candidate
from newsletter.render import RenderedDigest
from newsletter.tokens import Signer

CRLF = b"\r\n"
QP_LINE = 76  # RFC 2045: encoded lines are at most 76 characters, soft-break "=" included
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_QP_SAFE = re.compile(r"[!-<>-~]*")  # printable ASCII but "=": literal in quoted-printable
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"\x00-\x1f\x7f]+@[^\s<>()\[\]\\,;:\"@\x00-\x1f\x7f]+")


class Slot(Enum):
    """A per-subscriber hole in a message template."""

    TO = "to"  # header: the address
    MESSAGE_ID = "message_id"  # header: <...>
    UNSUBSCRIBE_HEADER = "unsubscribe_header"  # header: the https URL, raw
    MAILTO_SUBJECT = "mailto_subject"  # header: URL-quoted "unsubscribe <address>"
    UNSUBSCRIBE_TEXT = "unsubscribe_text"  # text part, QP lines
    PREFERENCES_TEXT = "preferences_text"
    UNSUBSCRIBE_HTML = "unsubscribe_html"  # html part, HTML-escaped then QP lines
    PREFERENCES_HTML = "preferences_html"


_BODY_SLOTS = {
    "text": {
        render.UNSUBSCRIBE_URL: Slot.UNSUBSCRIBE_TEXT,
        render.PREFERENCES_URL: Slot.PREFERENCES_TEXT,
    },
    "html": {
        render.UNSUBSCRIBE_URL: Slot.UNSUBSCRIBE_HTML,
        render.PREFERENCES_URL: Slot.PREFERENCES_HTML,
    },
}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in render.PLACEHOLDERS))


def header_text(value: str) -> str:
    """Feed-derived text made safe for a header: no CR, LF or control characters."""
    return " ".join(_CONTROL.sub(" ", value).split())


def check_address(address: str) -> str:
    """An address fit for To and RCPT TO; refuses anything that could inject a header."""
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"not a deliverable address: {address!r}")
    return address


# --- the list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSettings:
    """Everything about the list a message needs; made once from the config."""

    from_header: str  # "Latin America Weekly <digest@example.org>"
    sender: str  # the envelope sender: digest@example.org
    domain: str  # of the From address: Message-IDs end in it
    title: str
    list_id: str  # RFC 2919, without the angle brackets
    base_url: str
    unsubscribe_mailto: str  # the address only
    secret: str

    @classmethod
    def from_config(cls, config: Config) -> ListSettings:
        sender = parseaddr(config.sender)[1] or f"newsletter@{lists.from_domain(config)}"
        domain = lists.from_domain(config)
        return cls(
            from_header=config.sender,
            sender=sender,
            domain=domain,
            title=config.title,
            list_id=lists.list_id(config),
            base_url=config.newsletter.base_url.rstrip("/"),
            unsubscribe_mailto=config.newsletter.unsubscribe_mailto or f"unsubscribe@{domain}",
            secret=config.secret,
        )

    @property
    def signer(self) -> Signer:
        return Signer(self.secret, self.list_id)


@dataclass(frozen=True)
class Recipient:
    """One subscriber as the mailer sees it."""

    subscriber_id: int
    email: str


def message_id(settings: ListSettings, issue_id: int, subscriber_id: int) -> str:
    """Deterministic per (issue, subscriber): a resend carries the same Message-ID."""
    key = f"{settings.list_id}/{issue_id}/{subscriber_id}".encode()
    digest = hmac.new(settings.secret.encode(), key, hashlib.sha256).hexdigest()[:16]
    return f"<issue-{issue_id}.sub-{subscriber_id}.{digest}@{settings.domain}>"


# --- variants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A distinct preference set: the candidates a group of subscribers gets.

    Empty sets mean everything. Countries match the heading an item is filed under or
    any country it names; sources match by name, case-insensitively.
    """

    countries: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    @classmethod
    def of(cls, countries: str, sources: str) -> Variant:
        """From a subscriber's comma-separated columns."""
        return cls(
            frozenset(c.strip().upper() for c in countries.split(",") if c.strip()),
            frozenset(s.strip().casefold() for s in sources.split(",") if s.strip()),
        )

    @property
    def is_everyone(self) -> bool:
        return not self.countries and not self.sources

    def admits(self, candidate: Candidate) -> bool:
        if self.sources and candidate.source.casefold() not in self.sources:
            return False
        if self.countries:
            named = {candidate.primary, *candidate.countries}
            return not self.countries.isdisjoint(named)
        return True

    def select(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        return [c for c in candidates if self.admits(c)]


EVERYONE = Variant()


# --- the template -----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageTemplate:
    """A serialized message with slots; ``segments`` has one more entry than ``slots``."""

    segments: tuple[bytes, ...]
    slots: tuple[Slot, ...]
    subject: str
    settings: ListSettings = field(repr=False)

    def fill(self, values: Mapping[Slot, bytes]) -> bytes:
        parts = [self.segments[0]]
        for slot, segment in zip(self.slots, self.segments[1:], strict=True):
            parts.append(values[slot])
            parts.append(segment)
        return b"".join(parts)

    def for_recipient(self, issue_id: int, recipient: Recipient) -> bytes:
        """The message for one subscriber, with signed links."""
        return self.fill(subscriber_values(self.settings, issue_id, recipient))

    def public_copy(self, address: str, message_id: str) -> bytes:
        """A copy that names nobody's token (previews, test sends): generic links."""
        base = self.settings.base_url
        return self.fill(
            link_values(
                self.settings,
                address,
                message_id,
                unsubscribe_url=f"{base}/unsubscribe",
                preferences_url=f"{base}/subscribe",
            )
        )


def subscriber_values(
    settings: ListSettings, issue_id: int, recipient: Recipient
) -> dict[Slot, bytes]:
    signer = settings.signer
    sid, email = recipient.subscriber_id, recipient.email
    base = settings.base_url
    return link_values(
        settings,
        email,
        message_id(settings, issue_id, sid),
        unsubscribe_url=f"{base}/unsubscribe/{signer.sign('unsubscribe', sid, email)}",
        preferences_url=f"{base}/preferences/{signer.sign('preferences', sid, email)}",
    )


def link_values(
    settings: ListSettings,
    address: str,
    message_id: str,
    *,
    unsubscribe_url: str,
    preferences_url: str,
) -> dict[Slot, bytes]:
    """The bytes that go into each slot."""
    check_address(address)
    unsubscribe_header = header_text(unsubscribe_url)
    return {
        Slot.TO: address.encode(),
        Slot.MESSAGE_ID: header_text(message_id).encode(),
        Slot.UNSUBSCRIBE_HEADER: unsubscribe_header.encode(),
        Slot.MAILTO_SUBJECT: quote(f"unsubscribe {address}", safe="").encode(),
        Slot.UNSUBSCRIBE_TEXT: qp_lines(unsubscribe_url),
        Slot.PREFERENCES_TEXT: qp_lines(preferences_url),
        Slot.UNSUBSCRIBE_HTML: qp_lines(html.escape(unsubscribe_url)),
        Slot.PREFERENCES_HTML: qp_lines(html.escape(preferences_url)),
    }


def build_template(
    rendered: RenderedDigest, *, subject: str, settings: ListSettings, date: datetime
) -> MessageTemplate:
    """Serialize one variant's message once, leaving the per-subscriber slots open."""
    segments: list[bytes] = []
    slots: list[Slot] = []
    current = bytearray()

    def literal(data: bytes) -> None:
        current.extend(data)

    def slot(s: Slot) -> None:
        segments.append(bytes(current))
        slots.append(s)
        current.clear()

    subject = header_text(subject) or settings.title
    boundary = "=_nl" + hashlib.sha256((rendered.text + rendered.html).encode()).hexdigest()[:28]

    literal(b"From: " + _address_header(settings.from_header).encode() + CRLF)
    literal(b"To: ")
    slot(Slot.TO)
    literal(CRLF)
    literal(_encoded_header("Subject", subject))
    literal(b"Date: " + format_datetime(date).encode() + CRLF)
    literal(b"Message-ID: ")
    slot(Slot.MESSAGE_ID)
    literal(CRLF)
    literal(_encoded_header("List-Id", f"{_phrase(settings.title)} <{settings.list_id}>"))
    literal(b"List-Unsubscribe: <")
    slot(Slot.UNSUBSCRIBE_HEADER)
    literal(b">," + CRLF + b" <mailto:" + settings.unsubscribe_mailto.encode() + b"?subject=")
    slot(Slot.MAILTO_SUBJECT)
    literal(b">" + CRLF)
    literal(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF)
    literal(b"Auto-Submitted: auto-generated" + CRLF)
    literal(b"Precedence: bulk" + CRLF)
    literal(b"MIME-Version: 1.0" + CRLF)
    literal(f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode() + CRLF)
    literal(CRLF)
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        literal(f"--{boundary}".encode() + CRLF)
        literal(f'Content-Type: text/{subtype}; charset="utf-8"'.encode() + CRLF)
        literal(b"Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)
        mapping = _BODY_SLOTS["html" if subtype == "html" else "text"]
        for piece, placeholder in _split(body):
            literal(qp_chunk(piece, before_slot=placeholder is not None))
            if placeholder is not None:
                slot(mapping[placeholder])
        if not current.endswith(CRLF):
            literal(b"=" + CRLF)  # a soft break: the part's content ends where it ended
    literal(f"--{boundary}--".encode() + CRLF)
    segments.append(bytes(current))
    return MessageTemplate(tuple(segments), tuple(slots), subject, settings)


# --- encoding helpers -------------------------------------------------------------------


def _split(body: str) -> list[tuple[str, str | None]]:
    """[(text, placeholder that follows it or None)], line endings made LF."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(body):
        out.append((body[pos : m.start()], m[0]))
        pos = m.end()
    out.append((body[pos:], None))
    return out


def qp_chunk(text: str, *, before_slot: bool) -> bytes:
    """Quoted-printable for fixed text; ends on a line break when a slot follows."""
    if not text:
        return b""
    # One line-ending form in, so only CRLF comes out: b2a_qp keeps a CR, and the SMTP
    # layer (smtp.data_payload) sends the bytes as they are, without re-normalising.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    encoded = encoded.replace(b"\nFrom ", b"\n=46rom ")  # mbox-style mangling, avoided
    if encoded.startswith(b"From "):
        encoded = b"=46" + encoded[1:]
    if before_slot and not encoded.endswith(b"\n"):
        head, sep, last = encoded.rpartition(b"\n")
        encoded = head + sep + _soft_lines(last)
    return encoded.replace(b"\n", CRLF)


def _soft_lines(line: bytes) -> bytes:
    """Re-cut one encoded line into lines of <= 75 characters, each ending in a soft break."""
    out = bytearray()
    while line:
        cut = min(len(line), QP_LINE - 1)
        if cut < len(line):
            if line[cut - 1 : cut] == b"=":
                cut -= 1
            elif line[cut - 2 : cut - 1] == b"=":
                cut -= 2
        out += line[:cut] + b"=\n"
        line = line[cut:]
    return bytes(out)


def qp_lines(value: str) -> bytes:
    """A slot value as whole quoted-printable lines, each ending in a soft break."""
    if _QP_SAFE.fullmatch(value):  # the usual case: a URL, nothing to escape
        data = value.encode("ascii")
    else:
        data = b"".join(
            bytes([b]) if 33 <= b <= 126 and b != 61 else b"=%02X" % b
            for b in value.encode("utf-8")
        )
    return _soft_lines(data).replace(b"\n", CRLF)


def _encoded_header(name: str, value: str) -> bytes:
    """``Name: value`` CRLF, folded, with RFC 2047 encoded words when not ASCII."""
    # Text that looks like an encoded word is encoded itself, so that no reader decodes
    # a CR or LF out of it (the email package would).
    charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
    folded = Header(value, charset, header_name=name).encode(linesep="\r\n", maxlinelen=78)
    return f"{name}: {folded}".encode("ascii") + CRLF


def _address_header(value: str) -> str:
    name, address = parseaddr(header_text(value))
    check_address(address)
    return formataddr((name, address), charset="utf-8") if name else address


def _phrase(text: str) -> str:
    text = header_text(text)
    if _SPECIALS.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
