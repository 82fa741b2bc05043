"""Intake: where a transaction is decided. ``validation`` checks one transaction as received, ``rules`` holds the
decisions of SPEC §2 as pure functions (window, sampling, cooldown, suppression, quiet hours, channel choice), and
``submit`` gathers the facts for a batch, asks the rules and writes the outcome.

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.surveys``, ``engine.delivery``,
``engine.channels``.
"""
