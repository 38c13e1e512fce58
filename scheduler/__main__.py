"""``python -m scheduler`` is the ``sentinella`` command (the daemon starts crawls this way)."""

from scheduler.cli import main

main()
