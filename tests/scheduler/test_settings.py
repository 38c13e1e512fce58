from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from scheduler.settings import SettingsError, load_settings, make_clock
from storage.records import ROME


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///./sentinella.db"
    assert settings.timezone == "Europe/Rome"
    assert settings.language == "it"
    assert settings.now is None
    assert settings.sources.sedia.enabled


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text(
        'database_url = "sqlite:///x.db"\nlanguage = "en"\n[sources.sedia]\nenabled = false\n',
        encoding="utf-8",
    )
    settings = load_settings(config, environ={"SENTINELLA_LANGUAGE": "it"})
    assert settings.database_url == "sqlite:///x.db"
    assert settings.language == "it"  # the environment wins over the file
    assert settings.sources.sedia.enabled is False
    nested = load_settings(config, environ={"SENTINELLA_SOURCES__SEDIA__ENABLED": "true"})
    assert nested.sources.sedia.enabled is True


def test_config_named_by_environment(tmp_path: Path) -> None:
    config = tmp_path / "named.toml"
    config.write_text('timezone = "UTC"\n', encoding="utf-8")
    assert load_settings(environ={"SENTINELLA_CONFIG": str(config)}).timezone == "UTC"


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[sources.sedia]\nenabeld = true\n", encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ={})
    message = str(info.value)
    assert "sources.sedia.enabeld" in message
    assert str(config) in message
    assert "unknown setting" in message


def test_wrong_value_in_environment_names_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"SENTINELLA_TIMEZONE": "Mars/Olympus"})
    assert "$SENTINELLA_TIMEZONE" in str(info.value)
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"SENTINELLA_DATABSE_URL": "sqlite://"})
    assert "SENTINELLA_DATABSE_URL" in str(info.value)


def test_missing_named_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("language = \n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_secrets_never_print(tmp_path: Path) -> None:
    settings = load_settings(environ={"SENTINELLA_TELEGRAM__TOKEN": "123456:SECRET-TOKEN"})
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123456:SECRET-TOKEN"
    assert "SECRET-TOKEN" not in repr(settings)
    assert "SECRET-TOKEN" not in str(settings.model_dump())


def test_pinned_clock_starts_at_the_pinned_instant() -> None:
    settings = load_settings(environ={"SENTINELLA_NOW": "2026-09-02T09:00:00"})
    clock = make_clock(settings)
    first = clock()
    assert first.tzinfo is not None
    assert datetime(2026, 9, 2, 9, 0, tzinfo=ROME) <= first
    assert (first - datetime(2026, 9, 2, 9, 0, tzinfo=ROME)).total_seconds() < 60
    assert clock() >= first


def test_real_clock_is_aware() -> None:
    clock = make_clock(load_settings(environ={}))
    assert clock().tzinfo is not None


def test_config_command_prints_a_loadable_file_without_secrets(tmp_path: Path) -> None:
    from scheduler.cli.config import to_toml

    settings = load_settings(
        environ={"SENTINELLA_TELEGRAM__TOKEN": "123456:SECRET-TOKEN", "SENTINELLA_LANGUAGE": "en"}
    )
    text = to_toml(settings)
    assert "SECRET-TOKEN" not in text and "# token = (secret, set, not shown" in text
    with_password = load_settings(
        environ={"SENTINELLA_DATABASE_URL": "postgresql://u:dbpass@db.example.org/x"}
    )
    assert "dbpass" not in to_toml(with_password)
    path = tmp_path / "round.toml"
    path.write_text(text, encoding="utf-8")
    again = load_settings(path, environ={})
    assert again.language == "en"
    assert again.sources.feeds.feeds == settings.sources.feeds.feeds
    assert again.digest.time == settings.digest.time
    assert again.matching == settings.matching


def test_environment_is_blamed_when_it_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ok.toml"
    config.write_text('language = "en"\n', encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ={"SENTINELLA_LANGUAGE": "de"})
    assert "$SENTINELLA_LANGUAGE" in str(info.value) and str(config) not in str(info.value)


def test_out_of_range_cron_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "cron.toml"
    config.write_text('[sources.lombardia]\nschedule = "99 99 * * *"\n', encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ={})
    assert "sources.lombardia.schedule" in str(info.value) and str(config) in str(info.value)
    with pytest.raises(SettingsError, match=r"\$SENTINELLA_SOURCES__SEDIA__SCHEDULE"):
        load_settings(environ={"SENTINELLA_SOURCES__SEDIA__SCHEDULE": "0 25 * * *"})


def test_given_environment_leaves_the_process_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLA_LANGUAGE", "en")
    assert load_settings(environ={}).language == "it"
    import os

    assert os.environ["SENTINELLA_LANGUAGE"] == "en"


def test_crawl_processes_get_no_settings_or_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.crawling import crawl_environment

    monkeypatch.setenv("SENTINELLA_TELEGRAM__TOKEN", "123456:SECRET-TOKEN")
    monkeypatch.setenv("SENTINELLA_EMAIL__PASSWORD", "smtp-secret")
    monkeypatch.setenv("PATH_FOR_TEST", "/bin")
    env = crawl_environment()
    assert "PATH_FOR_TEST" in env
    assert not any(k.startswith("SENTINELLA_") for k in env)
    assert "SECRET-TOKEN" not in str(env) and "smtp-secret" not in str(env)
