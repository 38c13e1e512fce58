"""Replay of the sources on loopback: the recorded responses served over real HTTP, no network.

* :mod:`crawler.replay.server` — the server (:class:`ReplayServer`), fixed and scripted replies,
  and the SEDIA search API emulator;
* :mod:`crawler.replay.regional` — the Regione Lombardia and incentivi.gov.it routes;
* :mod:`crawler.replay.site` — every source at once from the bundled recordings
  (``recordings/``, provenance in its README), and the sources configuration pointing at it.

``sentinella demo`` runs on it, and so do the crawler tests, the daemon's smoke test and the
benchmarks. Nothing here is imported by a real crawl.
"""
