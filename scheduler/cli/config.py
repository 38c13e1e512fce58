"""``sentinella config``: the effective settings as a TOML file (secrets left out).

``sentinella config > sentinella.toml`` writes a complete, commented starting file; every key
shown is one the settings accept, with the value in force (defaults, file and environment).
A secret is never written, not even masked: its line is a comment saying whether it is set and
where to set it (a mask written as a value would be read back as the secret itself).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from scheduler.cli.common import context, handles_errors, out
from scheduler.settings import ENV_PREFIX, Settings, load_settings


class _Secret:
    """Stands for a secret in the printout: whether it is set, never its value."""

    def __init__(self, is_set: bool) -> None:
        self.is_set = is_set


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    return json.dumps(str(value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return _Secret(bool(value.get_secret_value()))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def to_toml(settings: Settings) -> str:
    """The settings as TOML: top-level keys, then one ``[section]`` per nested model.

    Unset optional values (None) are written as comments, so the file stays loadable.
    """
    data = _plain(settings.model_dump(mode="python"))
    # A database URL may carry a password: then the URL is a secret line too.
    if make_url(settings.database_url).password:
        data["database_url"] = _Secret(True)
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) or not v}
        tables = {k: v for k, v in table.items() if k not in scalars}
        if prefix:
            lines.append("")
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            if isinstance(value, _Secret):
                env = ENV_PREFIX + ("__".join([*prefix.split("."), key]) if prefix else key).upper()
                state = "set, not shown" if value.is_set else "not set"
                if key == "database_url":
                    state = "holds a password, not shown"
                lines.append(f"# {key} = (secret, {state}: write it here or in ${env})")
            elif value is None:
                lines.append(f"# {key} = (not set)")
            else:
                lines.append(f"{key} = {_value(value)}")
        for key, value in tables.items():
            emit(value, f"{prefix}.{key}" if prefix else key)

    emit(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"


@handles_errors
def config_command(
    ctx: typer.Context,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Show the defaults, ignoring file and environment.")
    ] = False,
) -> None:
    """Print the settings in force as TOML (secrets hidden); a starting point for sentinella.toml."""
    app = context(ctx)
    settings = load_settings(environ={}, read_file=False) if defaults else app.settings
    out.print(to_toml(settings), end="")
