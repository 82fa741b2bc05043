"""Delivery: everything that happens to an invitation after intake. ``dispatch`` claims due invitations and
hands them to their channel at most once; ``pacing`` spaces sends; ``provider_reports`` applies status callbacks and
events; ``settlement`` settles ``unknown`` sends; ``reminders`` sends the one reminder; ``suppressions`` keeps
opt-outs and bounces.

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.surveys``, ``engine.intake.rules`` (the
same decisions are checked again at send time), ``engine.channels``.
"""
