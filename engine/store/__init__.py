"""The store: the typed declarative base and sessions (``db``), the models (``models/``), the Alembic
migrations (``migrations/``) and driving them (``migrate``).

May import: ``engine.common`` only. Everything else in the engine may import it.
"""
