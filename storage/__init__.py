"""Storage: the only part of Sentinella that speaks SQL.

Public modules (import them directly; importing ``storage`` itself does nothing):

* :mod:`storage.records` — ``CallRecord``, the normalised call every crawler produces.
* :mod:`storage.db` — ``Database`` (engine, sessions, ``upgrade()``), ``DatabaseError``.
* :mod:`storage.ingest` — ``ingest(db, records, *, now)``: dedup, change events, groups.
* :mod:`storage.calls` — read side: ``CallView``, ``EventView``, ``get_call``, ``list_calls``,
  ``search_calls``, ``call_events``, ``events_after``, ``group_calls``, ``canonical_call``.
* :mod:`storage.groups` — the duplicate rule (normalised links and titles), documented there.
* :mod:`storage.acts` — acts about calls (BURL decrees, new PDFs): linked with a confidence,
  turned into events on the call (a proroga moves its deadline), or kept as notices.
* :mod:`storage.sources` — per-source crawl state, crawl runs and health verdicts.
* :mod:`storage.notices` — admin notices told once when raised and once when cleared.
* :mod:`storage.members`, :mod:`storage.outbox` — members, profiles, alert outbox.
* :mod:`storage.models` — every table; :mod:`storage.migrations` — Alembic, applied at start.

The package imports nothing from the rest of Sentinella.
"""
