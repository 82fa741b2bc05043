"""The configured catalogue: services and offices from ``config/`` (``services``), the ISO 8601 durations they
are written in (``durations``), and which survey each service asks (``surveys``: a flow version and its PRA block).

May import: ``engine.common``, ``engine.store``, ``engine.surveys`` (the flows a service names).
"""
