"""The public HTTP API under ``/api/v1`` and the operations endpoints: transactions (intake), opt-outs, reports and
submissions, kiosk sync, API key authentication (``auth``) and the probes and OpenAPI document (``ops``). Each view
parses, authorizes and serializes; the work is one call into a domain package.

May import: the domain packages (``engine.intake``, ``engine.delivery``, ``engine.surveys``, ``engine.kiosk``,
``engine.reporting``, ``engine.catalog``, ``engine.store``, ``engine.common``), ``engine.webapp`` and the wiring
(``engine.runtime``, ``engine.settings``, ``engine.channels``). Nothing imports it but ``engine.app`` and the CLI.
"""
