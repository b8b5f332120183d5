"""Configuration loading: defaults, validation and the messages an operator sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, config_from_mapping, load_config, read_secret
from bot.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads_with_documented_defaults():
    config = load_config(REPOSITORY / "config.example.toml")

    defaults = Config()
    assert config.bot == defaults.bot
    assert config.mailbox.imap == defaults.mailbox.imap
    assert config.sending.smtp == defaults.sending.smtp
    assert config.bot.timezone == "Europe/London"


def test_example_file_documents_every_key():
    text = (REPOSITORY / "config.example.toml").read_text(encoding="utf-8")
    import dataclasses

    def keys(cls, prefix=""):
        for field in dataclasses.fields(cls):
            if field.name == "base_dir":
                continue
            if dataclasses.is_dataclass(field.type if not isinstance(field.type, str) else None):
                yield from keys(field.type, prefix + field.name + ".")
            else:
                yield prefix, field.name

    import typing
    hints = typing.get_type_hints(Config)
    for section, hint in hints.items():
        if section == "base_dir":
            continue
        for sub, sub_hint in typing.get_type_hints(hint).items():
            if dataclasses.is_dataclass(sub_hint):
                for leaf in typing.get_type_hints(sub_hint):
                    assert f"\n{leaf} = " in text, f"{section}.{sub}.{leaf} missing from config.example.toml"
            else:
                assert f"\n{sub} = " in text, f"{section}.{sub} missing from config.example.toml"


def test_relative_paths_resolve_against_file_folder(tmp_path):
    config = load_config(write(tmp_path, '[store]\nurl = "sqlite:///data/bot.sqlite3"\n'))

    assert config.store_url == f"sqlite:///{tmp_path.resolve()}/data/bot.sqlite3"


def test_unknown_key_names_key(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "[bot]\npoll_interval_secs = 60\n"))

    assert "bot.poll_interval_secs" in str(error.value)
    assert "unknown key" in str(error.value)


def test_wrong_type_names_key_and_value(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, '[bot]\npoll_interval_seconds = "often"\n'))

    assert "bot.poll_interval_seconds" in str(error.value)
    assert "'often'" in str(error.value)


def test_bad_choice_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, '[mailbox]\nbackend = "pop3"\n'))

    assert "mailbox.backend" in str(error.value)
    assert "imap" in str(error.value)


def test_unknown_timezone_rejected(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, '[bot]\ntimezone = "Mars/Olympus"\n'))

    assert "bot.timezone" in str(error.value)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "absent.toml")

    assert "config.example.toml" in str(error.value)
    assert str(error.value).startswith(f"config file {tmp_path / 'absent.toml'} not found")
    assert "configuration key" not in str(error.value)


def test_imap_without_username_rejected(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, '[mailbox]\nbackend = "imap"\n'))

    assert "mailbox.imap.username" in str(error.value)


def test_config_is_frozen():
    config = Config()

    with pytest.raises(Exception):
        config.bot.max_attempts = 1


def test_missing_secret_names_variable(monkeypatch):
    monkeypatch.delenv("CCAS_TEST_SECRET", raising=False)

    with pytest.raises(ConfigError) as error:
        read_secret("CCAS_TEST_SECRET", "mailbox.imap.password_env")

    assert "CCAS_TEST_SECRET" in str(error.value)


@pytest.mark.parametrize("base_url", ["http://ccas.council.example", "ftp://ccas.council.example",
                                      "https://", "https://ccas.council.example/?next=x", "ccas.council.example"])
def test_web_base_url_must_be_https(base_url):
    with pytest.raises(ConfigError, match="web.base_url"):
        config_from_mapping({"web": {"base_url": base_url}}, base_dir=Path("."))


@pytest.mark.parametrize("base_url", ["https://ccas.council.example", "http://127.0.0.1:8080",
                                      "http://localhost:8080/ccas"])
def test_web_base_url_accepts_https_and_localhost(base_url):
    assert config_from_mapping({"web": {"base_url": base_url}}, base_dir=Path(".")).web.base_url == base_url
