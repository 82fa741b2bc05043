"""The web plumbing every blueprint shares: the runtime of the current app and strict JSON bodies (``support``),
the checks every request passes (``request_checks``), the start page (``home``), the WSGI server of ``serve``
(``server``) and gunicorn's logger (``gunicorn_logging``).

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.runtime``, ``engine.settings``,
``engine.channels``.
"""
