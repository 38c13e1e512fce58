"""The notifier's rooms import one way: bot → delivery → messages → planning → matching → storage.

Every ``import`` in ``notifier/`` (at module level or inside a function) is read with :mod:`ast`;
a module may import its own room and the rooms below it, never one above. ``notifier.config``
(the settings every room reads) stands beside ``matching``: it checks a configured region
against the matching vocabulary. ``notifier.catalogue`` (every text people read) imports nothing
of the notifier, so every room uses it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTIFIER = ROOT / "notifier"

#: Lowest first: a room may import only the rooms at or before its own level.
ORDER = ("config", "catalogue", "matching", "planning", "messages", "delivery", "bot")
LEVEL = {"config": 0, "catalogue": 0, "matching": 0, "planning": 1, "messages": 2, "delivery": 3, "bot": 4}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "notifier":
        return None
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from notifier import planning`` names the room in the alias
            if node.module == "notifier":
                found.extend((node.lineno, f"notifier.{alias.name}") for alias in node.names)
    return found


def modules() -> list[Path]:
    return sorted(NOTIFIER.rglob("*.py"))


def test_every_module_lives_in_a_room() -> None:
    stray = [
        p.relative_to(ROOT).as_posix()
        for p in NOTIFIER.glob("*.py")
        if p.name not in {"__init__.py", "config.py", "catalogue.py"}
    ]
    assert not stray, f"modules outside the rooms: {stray}"
    rooms = {p.name for p in NOTIFIER.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(ORDER) - {"config", "catalogue"}


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(NOTIFIER).as_posix())
def test_imports_run_one_way(path: Path) -> None:
    own = path.relative_to(NOTIFIER).parts[0].removesuffix(".py")
    if own == "__init__":
        return
    level = LEVEL[own]
    wrong = []
    for line, module in imports(path):
        room = room_of(module)
        if room is None:
            top = module.split(".")[0]
            if top in {"scheduler", "web"}:
                wrong.append(f"line {line}: {module} (the notifier never imports the apps above it)")
            continue
        if room == "":
            continue
        if room not in ORDER:
            wrong.append(f"line {line}: {module} (no such room)")
        elif LEVEL[room] > level:
            wrong.append(f"line {line}: {module} runs back up from {own}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_backward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from notifier.delivery.channels import Channel\n", encoding="utf-8")
    assert imports(bad) == [(2, "notifier.delivery.channels")]
    assert LEVEL[room_of("notifier.delivery.channels") or ""] > LEVEL["planning"]
