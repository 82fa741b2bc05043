"""The store: the typed declarative base and sessions (``db``), the models (``models/``), the Alembic
migrations (``migrations/``) and driving them (``migrate``), and the trigger SQL that keeps the report tallies
(``report_triggers``, generated from the constants of what counts, which live beside the tally models).

May import: ``engine.common`` only. Everything else in the engine may import it.
"""
