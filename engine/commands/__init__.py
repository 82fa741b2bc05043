"""Command groups of the ``survey-engine`` CLI beyond the core ones in ``engine/cli.py``: api keys, init, kiosk,
report, user, and the demo.

May import: anything of the engine (the CLI is an edge, like the blueprints); nothing imports it but ``engine.cli``.
"""
