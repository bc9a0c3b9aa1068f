"""The public archive: the sent issues as pages and an Atom feed, built from data.

Pure: :class:`ArchivedIssue` values in, text out. The web side (``web/archive.py``) serves
these at ``/archive``, ``/archive/N`` and ``/archive/feed.xml``; ``newsletter archive
export DIR`` writes the same to ``DIR/index.html``, ``DIR/N/index.html`` and
``DIR/feed.xml``, so DIR can be published as ``<base_url>/archive/`` by any web server.

Every issue is the public copy: its unsubscribe and preferences links go to the generic
pages, never to a subscriber's signed link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from newsletter.jinja import environment

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_NS = "http://www.w3.org/XML/1998/namespace"
INDEX_TEMPLATE = "web/archive.html.j2"
# The archived mail shows its own inline styles and remote images; nothing else runs.
ISSUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ArchivedIssue:
    number: int
    subject: str
    sent_at: datetime
    item_count: int
    html: str  # the public copy of the mail, a whole HTML document
    text: str


@dataclass(frozen=True)
class Site:
    title: str
    base_url: str  # absolute, without a trailing slash
    lang: str = "en"

    @property
    def root(self) -> str:
        """The archive's path on the site: ``/archive`` (under base_url's path)."""
        return urlsplit(self.base_url).path.rstrip("/") + "/archive"

    def url(self, number: int | None = None) -> str:
        suffix = f"/{number}" if number is not None else ""
        return f"{self.base_url.rstrip('/')}/archive{suffix}"


def index_page(site: Site, issues: Sequence[ArchivedIssue]) -> str:
    """The list of sent issues, newest first, with a link to the feed."""
    return (
        environment()
        .get_template(INDEX_TEMPLATE)
        .render(
            title=site.title,
            lang=site.lang,
            root=site.root,
            subscribe=site.root.removesuffix("/archive") + "/subscribe",
            issues=sorted(issues, key=lambda i: (i.sent_at, i.number), reverse=True),
        )
    )


def issue_page(issue: ArchivedIssue) -> str:
    """One issue: the public copy of the mail as it was sent."""
    return issue.html


def atom_feed(site: Site, issues: Sequence[ArchivedIssue], *, now: datetime) -> str:
    """An Atom 1.0 feed (RFC 4287) of the issues; every text is escaped by ElementTree."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    ordered = sorted(issues, key=lambda i: (i.sent_at, i.number), reverse=True)
    updated = ordered[0].sent_at if ordered else now
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {f"{{{XML_NS}}}lang": site.lang})
    sub(feed, "title", site.title)
    sub(feed, "id", site.url() + "/")
    sub(feed, "updated", _rfc3339(updated))
    sub(feed, "link", rel="self", type="application/atom+xml", href=site.url() + "/feed.xml")
    sub(feed, "link", rel="alternate", type="text/html", href=site.url())
    author = sub(feed, "author")
    sub(author, "name", site.title)
    for issue in ordered:
        entry = sub(feed, "entry")
        sub(entry, "title", issue.subject)
        sub(entry, "id", site.url(issue.number))
        sub(entry, "link", rel="alternate", type="text/html", href=site.url(issue.number))
        sub(entry, "published", _rfc3339(issue.sent_at))
        sub(entry, "updated", _rfc3339(issue.sent_at))
        story = "story" if issue.item_count == 1 else "stories"
        sub(entry, "summary", f"Issue {issue.number}: {issue.item_count} {story}.")
        sub(entry, "content", _body(issue.html), type="html")
    ET.indent(feed)
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def export(site: Site, issues: Sequence[ArchivedIssue], out: Path, *, now: datetime) -> list[Path]:
    """Write the archive as static files under ``out``; returns what was written."""
    written = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        written.append(path)

    write(out / "index.html", index_page(site, issues))
    for issue in issues:
        write(out / str(issue.number) / "index.html", issue_page(issue))
    write(out / "feed.xml", atom_feed(site, issues, now=now))
    return written


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _body(html: str) -> str:
    """The inside of <body> (a feed entry is a fragment, not a document)."""
    lower = html.lower()
    start = lower.find("<body")
    end = lower.rfind("</body>")
    if start == -1 or end == -1:
        return html
    return html[html.index(">", start) + 1 : end].strip()
