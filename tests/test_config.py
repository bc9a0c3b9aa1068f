"""Configuration: the starter file, validation errors naming file and key, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import SourceEntry, load_config, parse_config, resolve_database
from newsletter.config_file import add_source, remove_source, starter_text, write_starter
from newsletter.errors import ConfigError, InputError


def test_starter_file_is_valid_and_lists_real_outlets(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.toml"
    assert write_starter(path)
    config = load_config(path, env={})
    assert len(config.sources) >= 8
    assert {s.country for s in config.sources} >= {"VE", "CU", "MX", "BO", "BR"}
    assert all(s.url.startswith(("http://", "https://")) for s in config.sources)
    assert len(config.secret) >= 32, "init writes a random secret"
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'subscribers.db'}"


def test_starter_secrets_differ() -> None:
    assert starter_text() != starter_text()


def test_write_starter_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.toml"
    path.write_text("# mine\n")
    assert not write_starter(path)
    assert path.read_text() == "# mine\n"


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        ({"newsletter": {"titel": "x"}}, "newsletter.titel", "unknown key"),
        ({"smtp": {"security": "ssl"}}, "smtp.security", "'none', 'starttls' or 'tls'"),
        ({"smtp": {"port": 0}}, "smtp.port", "greater than or equal to 1"),
        ({"newsletter": {"base_url": "localhost:8000"}}, "newsletter.base_url", "not an http(s)"),
        (
            {"sources": [{"name": "A", "url": "https://a.example/feed", "country": "XX"}]},
            "sources.0.country",
            "ISO 3166-1 alpha-2",
        ),
        (
            {"sources": [{"name": "A", "url": "file:///etc/passwd", "country": "VE"}]},
            "sources.0.url",
            "not an http(s) URL",
        ),
    ],
)
def test_errors_name_the_file_and_key(doc: dict, key: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: [{key}]")
    assert words in message
    assert caught.value.exit_code == 2


def test_duplicate_source_names_rejected(tmp_path: Path) -> None:
    sources = [
        {"name": "teleSUR", "url": "https://a.example/feed", "country": "VE"},
        {"name": "TELESUR", "url": "https://b.example/feed", "country": "VE"},
    ]
    with pytest.raises(ConfigError, match="two sources are named"):
        parse_config({"sources": sources}, tmp_path / "n.toml", env={})


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[newsletter\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_environment_overrides_secrets_and_database(tmp_path: Path) -> None:
    env = {
        "NEWSLETTER_SECRET": "from-env",
        "NEWSLETTER_SMTP_PASSWORD": "pw",
        "DATABASE_URL": "postgresql+psycopg://u@h/db",
    }
    config = parse_config({"newsletter": {"secret": "in-file"}}, tmp_path / "n.toml", env=env)
    assert config.secret == "from-env"
    assert config.smtp_password == "pw"
    assert config.database_url == "postgresql+psycopg://u@h/db"


def test_relative_sqlite_paths_follow_the_config_file(tmp_path: Path) -> None:
    assert resolve_database("sqlite:///data/x.db", tmp_path) == f"sqlite:///{tmp_path}/data/x.db"
    assert resolve_database("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_database("sqlite://", tmp_path) == "sqlite://"


def test_sources_edits_keep_comments(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.toml"
    write_starter(path)
    add_source(path, SourceEntry(name="Granma", url="https://en.granma.cu/feed", country="cu"))
    text = path.read_text()
    assert "# Signs unsubscribe and confirmation tokens." in text
    assert load_config(path, env={}).source("granma") is not None
    with pytest.raises(InputError, match="exists already"):
        add_source(path, SourceEntry(name="GRANMA", url="https://x.example/", country="CU"))
    removed = remove_source(path, "granma")
    assert removed.url == "https://en.granma.cu/feed"
    assert load_config(path, env={}).source("Granma") is None
    assert "# Signs unsubscribe and confirmation tokens." in path.read_text()
    with pytest.raises(InputError, match="no source named"):
        remove_source(path, "Granma")
