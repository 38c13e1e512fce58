"""Rewrite the ``*.expected.json`` files of the extractors; review the diff before keeping it.

    python tests/crawler/regen_expected.py

The only writer of those files: the tests compare and never rewrite (see ``expected_cases``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.crawler.expected_cases import all_goldens, cases


def main() -> None:
    for case in cases():
        if case.known_bug:
            # Its expected file holds the correct output, which today's code does not produce yet.
            print("kept", case.expected_path, "(known bug:", case.known_bug + ")")
            continue
        text = json.dumps(case.produce(), indent=1, ensure_ascii=False) + "\n"
        case.expected_path.write_text(text, encoding="utf-8")
        print("wrote", case.expected_path)
    for golden in all_goldens():
        golden.path.write_text(golden.text(), encoding="utf-8")
        print("wrote", golden.path)


if __name__ == "__main__":
    main()
