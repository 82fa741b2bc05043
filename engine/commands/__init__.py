"""Command groups of the ``survey-engine`` CLI beyond the core ones in ``engine/cli.py``."""
