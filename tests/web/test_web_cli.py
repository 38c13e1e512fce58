"""``sentinella web`` refuses to start without what it needs, naming the setting; ``[web]`` keys
are checked at start-up like every other."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.settings import SettingsError, load_settings


def test_web_needs_a_secret_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENTINELLA_CONFIG", raising=False)
    monkeypatch.setenv("SENTINELLA_DATABASE_URL", f"sqlite:///{tmp_path / 'web.db'}")
    result = CliRunner().invoke(app, ["web", "--port", "0"])
    assert result.exit_code != 0
    assert "web.secret_key" in result.stdout + result.stderr


def test_web_settings_are_checked_at_start_up() -> None:
    with pytest.raises(SettingsError) as short:
        load_settings(read_file=False, environ={"SENTINELLA_WEB__SECRET_KEY": "too-short"})
    assert "web.secret_key" in str(short.value) and "SENTINELLA_WEB__SECRET_KEY" in str(short.value)
    assert "too-short" not in str(short.value)
    with pytest.raises(SettingsError) as enabled:
        load_settings(read_file=False, environ={"SENTINELLA_WEB__ENABLED": "true"})
    assert "web.secret_key" in str(enabled.value)
    with pytest.raises(SettingsError) as url:
        load_settings(read_file=False, environ={"SENTINELLA_WEB__BASE_URL": "bandi.example.org/x?y"})
    assert "web.base_url" in str(url.value)
    ok = load_settings(read_file=False, environ={"SENTINELLA_WEB__BASE_URL": "https://bandi.example.org/"})
    assert ok.web.base_url == "https://bandi.example.org" and ok.web.secure
