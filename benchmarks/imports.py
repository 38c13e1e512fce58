"""Import benchmark: ``sentinella calls import`` of 1,000,000 valid lines, then of 1,000,000 junk lines.

Each import runs the installed console script in a child process against a fresh SQLite file
and is timed from start to exit; peak RSS is the child's own (``wait4``). The valid lines are
synthetic calls in the import format (title, URL, summary, dates, budget; a distinct id each),
the junk lines a mix of what careless and hostile files hold: not JSON, JSON that is not an
object, unknown fields, bad dates, budgets past the range, user-info URLs, deep nesting.

Targets (issue 10): constant memory, peak RSS < 300 MB for either file; the junk import prints
at most 100 error lines and counts the rest.
Run: ``python benchmarks/imports.py [--lines N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

JUNK = [
    "not json at all",
    "[1, 2, 3]",
    '{"title": "x", "url": "https://e.org/x", "colour": "red"}',
    '{"title": "x", "url": "https://e.org/x", "closes": "31/12/2026"}',
    '{"title": "x", "url": "https://e.org/x", "budget_eur": 1e400}',
    '{"title": "x", "url": "https://trusted.example@evil.example/x"}',
    '{"title": "unterminated',
]
#: One junk line in 1,000 is JSON nested deeper than the parser goes (5,000 levels, 10 kB).
DEEP = "[" * 5_000 + "]" * 5_000


def valid_lines(count: int) -> Iterator[str]:
    for n in range(count):
        yield json.dumps(
            {
                "title": f"Bando di prova numero {n}: contributi per la transizione digitale delle PMI",
                "url": f"https://example.org/bandi/{n}",
                "source": "manual",
                "source_id": f"bench-{n}",
                "summary": "Contributi a fondo perduto per PMI lombarde del settore cosmetico. " * 3,
                "opens": "2026-09-01",
                "closes": f"2027-{1 + n % 12:02d}-15",
                "budget_eur": 1_000_000 + n,
            },
            ensure_ascii=False,
        )


def junk_lines(count: int) -> Iterator[str]:
    for n, line in enumerate(itertools.islice(itertools.cycle(JUNK), count)):
        yield DEEP if n % 1_000 == 999 else line


def console_script() -> str:
    beside = Path(sys.executable).parent / "sentinella"
    found = str(beside) if beside.exists() else shutil.which("sentinella")
    if found is None:
        raise SystemExit("the sentinella console script is not installed (pip install -e .)")
    return found


def run_import(workdir: Path, name: str, lines: Iterator[str]) -> dict[str, object]:
    path = workdir / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}
    env.update(
        SENTINELLA_DATABASE_URL=f"sqlite:///{workdir / (name + '.db')}", SENTINELLA_LOG_LEVEL="WARNING"
    )
    started = time.perf_counter()
    with open(workdir / f"{name}.out", "wb") as out, open(workdir / f"{name}.err", "wb") as err:
        child = subprocess.Popen(
            [console_script(), "calls", "import", str(path)], cwd=workdir, env=env, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    error_lines = sum(
        1 for line in (workdir / f"{name}.err").open(encoding="utf-8") if line.startswith("error:")
    )
    summary = (workdir / f"{name}.out").read_text(encoding="utf-8").strip().splitlines()
    return {
        "lines": sum(1 for _ in path.open("rb")),
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 1),
        "lines_per_second": round(sum(1 for _ in path.open("rb")) / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit_code": os.waitstatus_to_exitcode(status),
        "error_lines_printed": error_lines,
        "summary": summary[-1] if summary else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in each file")
    parser.add_argument("--keep", type=Path, help="keep the files and databases in this directory")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="sentinella-imports-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for name, lines in (("valid", valid_lines(args.lines)), ("junk", junk_lines(args.lines))):
            figures = run_import(workdir, name, lines)
            print(json.dumps({"import": name, **figures}, ensure_ascii=False))
            sys.stdout.flush()
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
