"""Intake: where a transaction is decided. ``validation`` checks one transaction as received, ``rules`` holds the
decisions of SPEC §2 as pure functions (window, sampling, cooldown, suppression, quiet hours, channel choice) and
their chain (``decide``), ``facts`` reads what they need for a batch in a few set-based queries, ``writing`` writes
the decided rows, ``submit`` runs a batch through them, and ``lookup`` reads one transaction back.

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.surveys``, ``engine.delivery``,
``engine.channels``.
"""
