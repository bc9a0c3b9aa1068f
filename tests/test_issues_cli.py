"""The CLI twins of the editor's pages, end to end on a real SQLite database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsletter.cli import main
from newsletter.models import Item
from newsletter.store import open_engine, session_scope

NOW = datetime.now(UTC).replace(microsecond=0)


def add_items(db: Path, *titles: tuple[str, str]) -> list[int]:
    engine = open_engine(f"sqlite:///{db}")
    ids = []
    with session_scope(engine) as session:
        for n, (title, country) in enumerate(titles):
            slug = title.lower().replace(" ", "-")
            item = Item(
                source="teleSUR",
                identity=slug,
                link=f"https://example.org/{slug}",
                canonical=f"https://example.org/{slug}",
                title=title,
                excerpt=f"About {title}.",
                published=NOW - timedelta(hours=n + 1),
                fetched_at=NOW - timedelta(hours=n + 1),
                countries=country,
                primary_country=country,
            )
            session.add(item)
            session.flush()
            assert item.id is not None
            ids.append(item.id)
    engine.dispose()
    return ids


class Cli:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = tmp_path / "newsletter.toml"
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> str:
        result = main(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        assert result == code, out + err
        return out if code == 0 else err

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    run = Cli(tmp_path, capsys)
    (tmp_path / "newsletter.toml").write_text(
        '[newsletter]\ntitle = "LA Weekly"\nbase_url = "https://news.example.org"\n'
        'secret = "s3cret"\n\n[[sources]]\nname = "teleSUR"\n'
        'url = "https://www.telesurenglish.net/rss"\ncountry = "VE"\n'
    )
    run("init")
    return run


def test_draft_edit_approve_the_digest_lacks_the_dropped_item(cli: Cli, tmp_path: Path) -> None:
    assert "nothing new" in cli("draft")
    ids = add_items(
        tmp_path / "subscribers.db",
        ("Bolivia lithium plan", "BO"),
        ("Cuba harvest report", "CU"),
        ("Maduro speaks in Caracas", "VE"),
    )
    made = cli.json("draft")
    number = made["number"]
    assert made["state"] == "draft" and made["items"] == 3 and made["in_digest"] == 3

    assert cli.json("issues", "list")[0]["number"] == number
    shown = cli.json("issues", "show", str(number))
    assert [e["id"] for e in shown["entries"]] == ids[::-1]  # fetch order
    assert {e["title"]: e["country"] for e in shown["entries"]}["Cuba harvest report"] == "CU"

    assert "dropped" in cli("issues", "drop", str(number), "--title", "lithium")
    assert "--item or" not in cli("issues", "drop", str(number), code=1)
    assert "no item" in cli("issues", "drop", str(number), "--title", "nowhere", code=1)
    cli("issues", "move", str(number), "--item", str(ids[2]), "--country", "caribbean")
    cli("issues", "pin", str(number), "--item", str(ids[1]))
    cli("issues", "note", str(number), "A **big** week <script>x</script>")
    cli("issues", "subject", str(number), "Lithium, harvests and speeches")
    assert "only an approved" in cli("issues", "send", str(number), "--yes", code=1)

    entries = {e["id"]: e for e in cli.json("issues", "show", str(number))["entries"]}
    assert entries[ids[0]]["state"] == "dropped" and entries[ids[0]]["dropped"]
    assert entries[ids[1]]["pinned"] and entries[ids[1]]["state"] == "pinned"
    assert entries[ids[2]]["country"] == "region:caribbean" and entries[ids[2]]["moved"]

    # preview shows the current draft, as edited
    out = tmp_path / "preview"
    assert "Lithium, harvests and speeches" in cli("preview", "--out", str(out))
    html = (out / "digest.html").read_text()
    assert "Cuba harvest report" in html and "Bolivia lithium plan" not in html
    assert "<strong>big</strong>" in html and "<script>" not in html

    assert "approved" in cli("issues", "approve", str(number), "--at", "2030-01-02 07:00")
    shown = cli.json("issues", "show", str(number))
    assert shown["state"] == "approved"
    assert shown["send_after"] == "2030-01-02T07:00:00+00:00"
    assert shown["in_digest"] == 2 and shown["subject"] == "Lithium, harvests and speeches"

    # edits are refused once the issue left the draft
    for args in (
        ("drop", str(number), "--item", str(ids[1])),
        ("move", str(number), "--item", str(ids[1]), "--country", "MX"),
        ("pin", str(number), "--item", str(ids[2])),
        ("note", str(number), "late"),
        ("subject", str(number), "late"),
        ("approve", str(number)),
    ):
        assert "only a draft can be edited" in cli("issues", *args, code=1)

    # a dropped item stays out for good: it does not come back in the next draft
    assert cli.json("draft") is None
    later = add_items(tmp_path / "subscribers.db", ("Late story from Havana", "CU"))
    nxt = cli.json("draft")
    assert nxt["number"] != number
    assert [e["id"] for e in cli.json("issues", "show", str(nxt["number"]))["entries"]] == later
    cli("issues", "discard", str(nxt["number"]))
    assert "discarded" in cli("issues", "discard", str(nxt["number"]), code=1)
    assert [r["state"] for r in cli.json("issues", "list")] == ["discarded", "approved"]
    assert [r["number"] for r in cli.json("issues", "list", "--state", "approved")] == [number]


def test_usage_errors(cli: Cli, tmp_path: Path) -> None:
    add_items(tmp_path / "subscribers.db", ("Cuba one", "CU"), ("Cuba two", "CU"))
    number = str(cli.json("draft")["number"])
    assert "2 items match" in cli("issues", "drop", number, "--title", "cuba", code=1)
    assert "exactly one of" in cli("issues", "drop", number, "--item", "1", "--title", "x", code=1)
    assert "neither" in cli("issues", "move", number, "--item", "1", "--country", "XX", code=1)
    assert "not a time" in cli("issues", "approve", number, "--at", "tomorrow", code=1)
    assert "no issue number 99" in cli("issues", "show", "99", code=1)
    assert "is not in issue" in cli("issues", "pin", number, "--item", "999", code=1)
    table = cli("issues", "show", number)
    assert "Cuba one" in table and "draft" in table
    assert number in cli("issues", "list")


async def test_send_delivers_the_approved_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from newsletter.models import Subscriber
    from tests.smtpserver import SmtpServer

    async with SmtpServer() as server:
        config = tmp_path / "newsletter.toml"
        config.write_text(
            '[newsletter]\ntitle = "LA Weekly"\nsecret = "s3cret"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
        )

        async def cli(*args: str) -> str:
            code = await asyncio.to_thread(main, ["--config", str(config), *args])
            out, err = capsys.readouterr()
            assert code == 0, out + err
            return out

        await cli("init")
        add_items(
            tmp_path / "subscribers.db", ("Bolivia lithium plan", "BO"), ("Cuba harvest", "CU")
        )
        engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
        with session_scope(engine) as session:
            session.add(Subscriber(email="reader@example.org"))
        engine.dispose()
        number = json.loads(await cli("draft", "--json"))["number"]
        await cli("issues", "drop", str(number), "--title", "lithium")
        await cli("issues", "approve", str(number))
        assert "1 delivered" in await cli("issues", "send", str(number), "--yes")
        [mail] = server.handler.received
        assert mail.rcpt_tos == ("reader@example.org",)
        body = mail.data.decode()
        assert "Cuba harvest" in body and "lithium" not in body.lower()
        assert json.loads(await cli("issues", "show", str(number), "--json"))["state"] == "sent"
