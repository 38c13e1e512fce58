"""Matching calls to member profiles: one engine, and everything it reads.

The rooms, each importing only those listed before it:

* :mod:`~notifier.matching.text` — normalising text into tokens and finding phrases in them;
* :mod:`~notifier.matching.vocabulary` — topics, applicant types, sectors, programmes and places
  (``data/*.toml``) compiled into phrase indexes; :mod:`~notifier.matching.topics` their ids;
* :mod:`~notifier.matching.eligibility` — what a call says about itself (territory, applicants,
  sector, purpose), read once per call;
* :mod:`~notifier.matching.engine` — the :class:`Matcher`: every rule once, used alike by the fast
  path, ``explain`` and the dry run; the explanation is a by-product of the same computation;
* :mod:`~notifier.matching.evaluation` — precision and recall on labelled relevance sets.

The package itself imports nothing, so that :mod:`notifier.matching.profiles` may use the vocabulary
without loading the engine.
"""
