"""The Flask application factory: wires the runtime, the API blueprints, the channels' blueprints and errors."""

from __future__ import annotations

import gc
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Request, Response, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect

from engine import dashboard, publicdata
from engine.api import ops, opt_outs, reports, submissions, transactions
from engine.channels import unconfigured_channels
from engine.common.i18n import language_name, locales_dir
from engine.common.logs import configure_logging, log
from engine.runtime import Runtime, build_runtime
from engine.settings import Settings, load_settings
from engine.store import migrate
from engine.store.db import UNREACHABLE
from engine.surveys import web_page
from engine.webapp import home, request_checks
from engine.webapp.problems import Problem, problem_response

logger = logging.getLogger("survey_engine")
# Every HTML page, error pages included, unless its blueprint sets a stricter one (SPEC §2 rule 12).
HTML_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"


def create_app(
    settings: Settings | None = None,
    *,
    migrate_database: bool = False,
    runtime: Runtime | None = None,
    start_up_reports: bool = True,
) -> Flask:
    """The web app. ``start_up_reports=False`` (``web``'s gunicorn workers) leaves the start-up's loud lines, an
    expired PRA approval and a channel not configured, to the process that starts them, which says each once."""
    settings = settings or (runtime.settings if runtime else load_settings())
    configure_logging(settings.log_level)
    rt = runtime or build_runtime(settings, migrate_database=migrate_database)
    try:
        if migrate.is_current(rt.engine):
            rt.sync_catalog()
            if start_up_reports:
                report_expired_flows(rt)
        else:
            log(logger, "database schema is not current: run `survey-engine db upgrade`", logging.WARNING)
    except UNREACHABLE as exc:
        # The app still starts: it answers 503 until the database is back (and then syncs the catalogue).
        log(logger, "database unreachable at start-up", logging.ERROR, error=type(exc).__name__)
    if start_up_reports:
        report_unconfigured_channels(rt)

    app = Flask(__name__, instance_path=str(settings.instance_dir))
    # A path with a doubled slash (``/s//<token>``) is a 404, not Werkzeug's 308 to the merged path: that redirect
    # took its Location from the request's Host header, and it invited clients to keep sending such paths.
    app.url_map.merge_slashes = False
    app.session_interface = CookieSessionsWhenSent()
    Babel(app, locale_selector=lambda: g.get("language", "en"), default_translation_directories=str(locales_dir()))
    app.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=8 * 1024 * 1024)
    app.extensions["survey_engine"] = rt
    if settings.proxy_hops:  # the client's address and scheme as the trusted proxies saw them (SPEC §2 rule 11)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)  # type: ignore[method-assign]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.context_processor
    def language_names() -> dict[str, Any]:
        # Each language named in its own words, for the language switch ("English", "Español").
        return {"language_name": language_name}

    for blueprint in (
        home.bp,
        ops.bp,
        transactions.bp,
        opt_outs.bp,
        reports.bp,
        submissions.bp,
        web_page.bp,
        dashboard.bp,
        publicdata.bp,
    ):
        app.register_blueprint(blueprint)
    for channel in rt.channels.channels.values():
        bp = channel.blueprint()
        if bp is not None:
            app.register_blueprint(bp)

    request_checks.install(app)

    @app.before_request
    def catalogue_synced() -> Response | None:
        # The database was away at start-up and is back: mirror the catalogue now. A schema not yet upgraded (the
        # app served by gunicorn directly, skipping `web`'s check) is a 503 until `db upgrade` has run.
        if rt.synced or request.endpoint in ("ops.healthz", "ops.readyz", "ops.openapi"):
            return None
        if not migrate.is_current(rt.engine):
            static = (request.endpoint or "").rpartition(".")[2] == "static"  # the page's own stylesheet still loads
            return None if static else request_checks.schema_not_current()
        rt.sync_catalog()
        return None

    @app.after_request
    def routing_redirect_on_public_origin(response: Response) -> Response:
        # Werkzeug's own redirects (``/dashboard`` to ``/dashboard/``; Flask hands them to no error handler) name
        # the request's Host: send the same path on the public URL's origin, so a forged Host never comes back.
        if isinstance(request.routing_exception, RequestRedirect) and "Location" in response.headers:
            public, target = urlsplit(settings.public_url), urlsplit(request.routing_exception.new_url)
            response.headers["Location"] = urlunsplit((public.scheme, public.netloc, target.path, target.query, ""))
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.public_url.startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", HTML_CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.errorhandler(Problem)
    def on_problem(problem: Problem) -> Any:
        return problem.response()

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Any:
        if request_checks.is_api(request.path):
            # Keep the exception's own headers (``Allow`` on a 405, ``Retry-After`` on a 429/503).
            headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
            return problem_response(exc.code or 500, exc.description or exc.name, headers=headers)
        return exc

    @app.errorhandler(Exception)
    def on_error(exc: Exception) -> Any:
        logger.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return problem_response(500, "Something went wrong on our side; nothing was stored. Try again later.")

    # Everything built so far lives as long as the process: keep it out of the collector's way (a full
    # collection over it costs ~70 ms, a latency spike under load).
    gc.freeze()
    return app


class CookieSessionsWhenSent(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions (the dashboard's), read only from a request that sends the cookie: a request
    without one (every API call, webhook and survey page) gets an empty session without building the signing
    serializer, a cost of every request otherwise."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def report_unconfigured_channels(rt: Runtime) -> None:
    """A service lists a channel whose provider settings are missing (an operator's forgotten TWILIO_FROM_NUMBER):
    every invitation on it would fail at send, one by one. Said at start-up, once per service and channel, naming
    the settings; the service keeps running (its other channels, and a restart with the settings, go on)."""
    for slug, channel, why in unconfigured_channels(rt.channels, rt.catalog.services.values()):
        log(logger, "CHANNEL NOT CONFIGURED: every invitation on it fails at send", logging.ERROR, service=slug,
            channel=channel, reason=why)  # fmt: skip


def report_expired_flows(rt: Runtime) -> None:
    """SPEC §2 rule 9: an expired PRA approval is said loudly at start-up, per service and the block that stands
    for it (the service's own clearance, else its flow's); the service keeps running."""
    from engine.store.db import utcnow

    now = utcnow()
    for service in rt.catalog.services.values():
        pra = rt.catalog.pra_of(service)
        whose = "service" if service.pra is not None else "flow"
        today = now.astimezone(service.timezone).date()  # the day intake and dispatch judge it by (rule 9)
        if pra.lapsed_at(now, service.timezone):
            log(logger, "PRA APPROVAL EXPIRED: nothing is sent for this service; transactions are decided pra_expired",
                logging.ERROR, service=service.slug, flow=service.flow, pra_of=whose,
                omb_control_number=pra.omb_control_number, expiration_date=pra.expiration_date.isoformat())  # fmt: skip
        elif (pra.expiration_date - today).days <= 30:
            log(logger, "PRA approval expires within 30 days", logging.WARNING, service=service.slug, flow=service.flow,
                pra_of=whose, omb_control_number=pra.omb_control_number,
                expiration_date=pra.expiration_date.isoformat())  # fmt: skip
