"""Building messages: headers, both parts, slots on bytes, transfer encoding, DKIM."""

from __future__ import annotations

import email
import email.policy
import quopri
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import dkim as dkimpy
import pytest

from newsletter import lists
from newsletter.config import Config, DkimSection, parse_config
from newsletter.digest import Candidate, Digest, build_digest
from newsletter.mailer.dkim import Signer as DkimSigner
from newsletter.mailer.message import (
    ListSettings,
    MessageTemplate,
    Recipient,
    Variant,
    build_template,
    header_text,
    message_id,
    qp_chunk,
)
from newsletter.render import fill, render_digest

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BASE = "https://digest.example.org"


def config(**newsletter: str) -> Config:
    doc = {"newsletter": {"secret": "test-secret", "base_url": BASE, **newsletter}}
    return parse_config(doc, Path("newsletter.toml"), env={})


def candidates(n: int = 12) -> list[Candidate]:
    countries = ["VE", "CU", "BO", "MX"]
    return [
        Candidate(
            id=i + 1,
            source=f"Outlet {i % 3}",
            title=f"Historia número {i} — São Paulo y Caracas",
            link=f"https://outlet{i % 3}.example/{i}/" + "x" * (i * 7),
            published=NOW - timedelta(hours=i),
            fetched=NOW,
            excerpt="Un resumen con acentos: ñandú, açaí, café. " * 4,
            primary=countries[i % 4],
            countries=(countries[i % 4],),
        )
        for i in range(n)
    ]


def digest(cands: list[Candidate] | None = None, title: str = "Latin America Weekly") -> Digest:
    return build_digest(cands or candidates(), title=title, now=NOW)


def template(cfg: Config | None = None, d: Digest | None = None) -> MessageTemplate:
    cfg = cfg or config()
    d = d or digest(title=cfg.title)
    rendered = render_digest(d, base_url=cfg.newsletter.base_url)
    return build_template(
        rendered, subject=d.subject, settings=ListSettings.from_config(cfg), date=NOW
    )


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


def test_headers_and_parts() -> None:
    cfg = config()
    d = digest()
    tpl = template(cfg, d)
    data = tpl.for_recipient(12, Recipient(345, "ana@example.net"))
    msg = parse(data)
    settings = ListSettings.from_config(cfg)

    assert msg["From"] == "Latin America Weekly <digest@example.org>"
    assert msg["To"] == "ana@example.net"
    assert msg["Subject"] == d.subject
    assert msg["Date"] == "Fri, 20 Nov 2026 09:00:00 +0000"
    assert re.fullmatch(r"<issue-12\.sub-345\.[0-9a-f]{16}@example\.org>", msg["Message-ID"])
    assert msg["List-Id"] == "Latin America Weekly <latin-america-weekly.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Precedence"] == "bulk"
    assert msg["MIME-Version"] == "1.0"
    https, mailto = [u.strip().strip("<>") for u in str(msg["List-Unsubscribe"]).split(",")]
    assert https.startswith(BASE + "/unsubscribe/")
    assert mailto == "mailto:unsubscribe@example.org?subject=unsubscribe%20ana%40example.net"
    token = https.rsplit("/", 1)[1]
    sid, fingerprint = lists.signer(cfg).read("unsubscribe", token)
    assert sid == 345 and settings.signer.matches(fingerprint, "ana@example.net")

    assert msg.get_content_type() == "multipart/alternative"
    plain, html = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    text = plain.get_content().replace("\r\n", "\n")
    markup = html.get_content().replace("\r\n", "\n")
    prefs = re.search(re.escape(BASE) + r"/preferences/\S+", text)
    assert prefs is not None
    expected = fill(
        render_digest(d, base_url=BASE), unsubscribe_url=https, preferences_url=prefs[0]
    )
    assert text == expected.text.rstrip("\n")
    assert markup == expected.html
    assert "Historia número 0 — São Paulo" in text
    assert lists.signer(cfg).read("preferences", prefs[0].rsplit("/", 1)[1])[0] == 345


def test_every_line_is_short_and_crlf() -> None:
    data = template().for_recipient(1, Recipient(2, "a@example.net"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in body_lines(data))
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert data.isascii()


def test_a_300_character_url_survives_substitution() -> None:
    long_base = "https://digest.example.org/" + "a" * 240 + "?x=1&y=2"
    cfg = config(base_url=long_base)
    tpl = template(cfg)
    data = tpl.for_recipient(7, Recipient(9, "b@example.net"))
    assert all(len(line) <= 76 for line in body_lines(data))
    msg = parse(data)
    header_url = str(msg["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert len(header_url) >= 300
    plain, html = list(msg.iter_parts())
    assert header_url in plain.get_content()
    assert header_url.replace("&", "&amp;") in html.get_content()
    assert f'href="{header_url.replace("&", "&amp;")}"' in html.get_content()


def test_message_id_is_deterministic_per_issue_and_subscriber() -> None:
    settings = ListSettings.from_config(config())
    assert message_id(settings, 1, 2) == message_id(settings, 1, 2)
    assert message_id(settings, 1, 2) != message_id(settings, 1, 3)
    assert message_id(settings, 1, 2) != message_id(settings, 2, 2)
    tpl = template()
    first = parse(tpl.for_recipient(4, Recipient(5, "c@example.net")))["Message-ID"]
    again = parse(template().for_recipient(4, Recipient(5, "c@example.net")))["Message-ID"]
    assert first == again == message_id(settings, 4, 5)


def test_feed_text_cannot_inject_headers() -> None:
    evil = "Breaking\r\nBcc: victim@example.com\n=?utf-8?q?X=0D=0ABcc:_x@y?= \x00\x1b\u2028end"
    cands = candidates(3)
    d = build_digest(cands, title="Weekly", now=NOW, subject=evil)
    rendered = render_digest(d, base_url=BASE)
    settings = ListSettings.from_config(config())
    tpl = build_template(rendered, subject=d.subject, settings=settings, date=NOW)
    data = tpl.for_recipient(1, Recipient(1, "d@example.net"))
    headers = data.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in headers
    msg = parse(data)
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert header_text("a\r\nb\x00c\x7f") == "a b c"
    with pytest.raises(ValueError):
        tpl.for_recipient(1, Recipient(1, "x@example.net\r\nBcc: y@example.net"))


def test_non_ascii_title_and_from_are_encoded() -> None:
    cfg = config(title="Semanário Latino", **{"from": "Semanário Latino <digest@example.org>"})
    data = template(cfg).for_recipient(1, Recipient(1, "e@example.net"))
    assert data.isascii()
    msg = parse(data)
    assert msg["From"].addresses[0].display_name == "Semanário Latino"
    assert msg["Subject"].startswith("Semanário Latino: 12 stories")


def test_variants_filter_candidates() -> None:
    cands = candidates(8)
    cuba = Variant.of("cu", "")
    assert {c.primary for c in cuba.select(cands)} == {"CU"}
    outlet = Variant.of("", "outlet 1")
    assert {c.source for c in outlet.select(cands)} == {"Outlet 1"}
    assert Variant.of(" ", " ").is_everyone
    assert Variant.of("VE,CU", "") == Variant.of("cu, ve", "")


def test_filling_is_far_cheaper_than_inlining() -> None:
    d = digest(candidates(100))
    started = time.perf_counter()
    rendered = render_digest(d, base_url=BASE)
    render_s = time.perf_counter() - started
    tpl = build_template(
        rendered, subject=d.subject, settings=ListSettings.from_config(config()), date=NOW
    )
    n = 500
    started = time.perf_counter()
    for i in range(n):
        tpl.for_recipient(1, Recipient(i, f"user{i}@example.net"))
    per_message = (time.perf_counter() - started) / n
    assert per_message < 0.002, f"{per_message * 1000:.3f} ms per message"
    assert per_message * 20 < render_s


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test key")
def test_dkim_signature_verifies_offline(tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "1024"],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner.from_config(
        DkimSection(domain="example.org", selector="nl", key_file=str(key))
    )
    signed = signer.sign(template().for_recipient(3, Recipient(4, "f@example.net")))

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl._domainkey.example.org."
        return record

    assert dkimpy.verify(signed, dnsfunc=dns)
    signature = parse(signed)["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in str(signature).split(";") if "=" in t)
    signed_headers = {h.strip().lower() for h in tags["h"].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to"} <= signed_headers
    tampered = signed.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X-No: 1")
    assert not dkimpy.verify(tampered, dnsfunc=dns)


def test_fixed_text_with_any_line_ending_encodes_to_crlf_lines_only() -> None:
    encoded = qp_chunk("a\r\nb\rc\nd", before_slot=False)
    assert encoded.count(b"\r") == encoded.count(b"\r\n") == encoded.count(b"\n")
    assert quopri.decodestring(encoded).replace(b"\r\n", b"\n") == b"a\nb\nc\nd"
