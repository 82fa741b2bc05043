"""Kiosk devices and their sync (SPEC §4 ``kiosk``): registering, enrolling and revoking devices, and storing
their queued sessions exactly once through the survey-session engine (``devices``). The kiosk page itself is the
``kiosk`` channel's.

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.surveys``, ``engine.delivery``.
"""
