"""The web face of Sentinella: the staff board, members' calendar feeds, public feeds of open calls
and one-click unsubscribe (:func:`web.app.create_app`, served by :mod:`web.server`).

It uses storage's public functions and the notifier's formatting; the scheduler composes it
(``sentinella web``, or inside ``sentinella run`` with ``[web] enabled = true``).
"""
