"""Developer commands for the migrations: ``python -m storage.migrations revision -m MSG``,
``regenerate`` and ``check`` (see the package docstring)."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from storage.db import Database
from storage.migrations import VERSIONS, alembic_config, schema_differences, upgrade

_SEQUENCE = re.compile(r"^\d{4}_\d{2}_\d{2}_(\d{4})_")


def next_revision_id() -> str:
    numbers = [int(m.group(1)) for p in VERSIONS.glob("*.py") if (m := _SEQUENCE.match(p.name))]
    return f"{max(numbers, default=0) + 1:04d}"


def _scratch(tmp: str) -> Database:
    db = Database(f"sqlite:///{Path(tmp) / 'scratch.db'}")
    upgrade(db)
    return db


def revision(message: str, *, empty: bool = False) -> None:
    """Write a new dated revision: the difference between the models and the migrations' head."""
    from alembic import command

    VERSIONS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = _scratch(tmp)
        try:
            with db.engine.begin() as conn:
                command.revision(
                    alembic_config(conn), message=message, autogenerate=not empty, rev_id=next_revision_id()
                )
        finally:
            db.dispose()


def regenerate() -> None:
    """Delete every revision and write the initial one again from the models."""
    for path in VERSIONS.glob("*.py"):
        if path.name != "__init__.py":
            path.unlink()
    revision("initial")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db = _scratch(tmp)
        try:
            diffs = schema_differences(db)
        finally:
            db.dispose()
    for diff in diffs:
        print(diff)
    print("models and migrations agree" if not diffs else f"{len(diffs)} difference(s)")
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.migrations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate a new dated revision from storage.models")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--empty", action="store_true", help="an empty revision to write by hand")
    sub.add_parser("regenerate", help="rewrite the initial revision from the models (deletes all)")
    sub.add_parser("check", help="exit 1 when the models and the migrations disagree")
    args = parser.parse_args(argv)
    if args.command == "revision":
        revision(args.message, empty=args.empty)
    elif args.command == "regenerate":
        regenerate()
    else:
        return check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
