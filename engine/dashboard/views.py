"""The dashboard's pages: sign-in and sign-out, setting a password from a one-time link, the services of an
account, one service's page per quarter, the quarter's A-11 file of that service, and filing the quarter: its
state (draft, or submitted by whom and when, with what moved in the live figures since), the "Submit" button and
the quarter's reflection text (A-11 280.11; editable at any time, a submission keeps the text it was filed with).

Every POST carries the session's CSRF token (checked before any view runs); every page is sent with
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the set-password link holds its token) and a
Content-Security-Policy that allows nothing but this origin. Pages work without JavaScript.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import abort, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from engine.common.i18n import N_, available_languages, translate
from engine.common.limits import whole_number
from engine.common.logs import log
from engine.dashboard import bp, charts, figures
from engine.dashboard.accounts import password_problem, token_user, use_token
from engine.dashboard.signin import (
    RateLimited,
    authenticate,
    begin_session,
    csrf_ok,
    csrf_token,
    current_user,
    end_session,
    require_service,
    safe_next,
    signed_in,
)
from engine.reporting import a11, formats, submissions
from engine.reporting import what_counts as wc
from engine.reporting.fiscal import FiscalQuarter
from engine.store.db import unit_of_work, utcnow
from engine.webapp.support import guarded_by, public, runtime

logger = logging.getLogger("survey_engine.dashboard")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")  # fmt: skip


@bp.record_once
def _session_cookie(state: Any) -> None:
    """The session cookie: Secure when the public URL is https, HttpOnly, SameSite=Lax."""
    rt = state.app.extensions["survey_engine"]
    state.app.config.update(
        SESSION_COOKIE_SECURE=rt.settings.public_url.startswith("https://"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )


@bp.before_request
def _before() -> Any:
    g.language = request.accept_languages.best_match(available_languages()) or "en"
    if request.method == "POST" and not csrf_ok():
        return _message(400, _("The form has expired"),
                        _("The page was open too long or came from somewhere else. Go back, reload it and try again."),
                        url_for("dashboard.home"), _("Back to the dashboard"))  # fmt: skip
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


@bp.context_processor
def _context() -> dict[str, Any]:
    return {"csrf_token": csrf_token}


def _page(template: str, status: int = 200, **context: Any) -> Any:
    rt = runtime()
    language = g.get("language", "en")
    context.setdefault("user", current_user())
    context.setdefault("current_slug", None)
    context["language"] = language
    context["service_names"] = {s: translate(language, c.name) for s, c in rt.catalog.services.items()}
    context["agencies"] = {s: translate(language, c.agency) for s, c in rt.catalog.services.items()}
    return make_response(render_template(template, **context), status)


def _message(status: int, heading: str, text: str, link: str | None = None, link_text: str = "") -> Any:
    return _page("dashboard/message.html", status, heading=heading, text=text, link=link, link_text=link_text)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    home = url_for("dashboard.home")
    if exc.code == 403:
        return _message(403, _("Not your service"), _("Your account does not see this service."), home,
                        _("Your services"))  # fmt: skip
    if exc.code == 404:
        return _message(404, _("Page not found"), _("There is no such page or service."), home, _("Your services"))
    if exc.code == 400:
        return _message(400, _("That request is not valid"), exc.description or "", home, _("Your services"))
    return exc


# -- signing in -----------------------------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@public("the sign-in form itself; its POST is checked: password (scrypt), CSRF token, rate limit")
def sign_in() -> Any:
    target = safe_next(request.values.get("next"))
    if request.method != "POST":  # GET, or HEAD (a GET without the body): never a sign-in attempt
        if current_user() is not None:
            return redirect(target)
        message = _("You are signed out.") if request.args.get("signed_out") else None
        if request.args.get("password_set"):
            message = _("Your password is set. Sign in with it.")
        return _page("dashboard/sign_in.html", next=target, email="", error=None, message=message)
    email = request.form.get("email", "").strip()[:320]
    password = request.form.get("password", "")[:1024]
    try:
        user = authenticate(email, password, request.remote_addr or "unknown")
    except RateLimited as limited:
        log(logger, "dashboard sign-in rate-limited", logging.WARNING, client=request.remote_addr,
            retry_after=limited.retry_after)  # fmt: skip
        minutes = max(1, -(-limited.retry_after // 60))
        response = _message(429, _("Too many sign-in attempts"),
                            _("Try again in %(minutes)d min.", minutes=minutes))  # fmt: skip
        response.headers["Retry-After"] = str(limited.retry_after)
        return response
    if user is None:
        log(logger, "dashboard sign-in refused", client=request.remote_addr)
        return _page("dashboard/sign_in.html", 401, next=target, email=email, message=None,
                     error=_("That email address and password do not match an account."))  # fmt: skip
    # The answer is built before the session is: nothing is written (no session row, no cookie) unless it can be sent.
    response = redirect(target)
    begin_session(user)
    log(logger, "dashboard sign-in", user=str(user.id), client=request.remote_addr)
    return response


@bp.route("/sign-out", methods=["POST"])
@guarded_by("the session's CSRF token (ending a session needs nothing more)")
def sign_out() -> Any:
    end_session()
    return redirect(url_for("dashboard.sign_in", signed_out=1))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
@guarded_by("one-time set-password link token (256 random bits, stored hashed, expires, used once)")
def set_password(token: str) -> Any:
    rt = runtime()
    gone = (_("This link does not work"),
            _("It was used already, has expired or was replaced by a newer one. Ask your administrator for a new "
              "link."))  # fmt: skip
    if len(token) > 100:
        return _message(404, *gone)
    with rt.sessions() as db:
        found = token_user(db, token, utcnow())
        email = found[1].email if found else None
    if email is None:
        return _message(404, *gone)
    if request.method != "POST":  # GET, or HEAD: never sets a password (the CSRF check is for POST)
        return _page("dashboard/set_password.html", email=email, error=None, user=None)
    password = request.form.get("password", "")
    problem = password_problem(password, email)
    if problem is None and password != request.form.get("confirm", ""):
        problem = N_("The two passwords differ.")
    if problem is not None:
        return _page("dashboard/set_password.html", 400, email=email, error=_(problem), user=None)
    with unit_of_work(rt.sessions) as db:
        user = use_token(db, token, password)
    if user is None:
        return _message(404, *gone)
    end_session()
    return redirect(url_for("dashboard.sign_in", password_set=1))


# -- the pages ------------------------------------------------------------------------------------------------------


@bp.route("/")
@signed_in
def home() -> Any:
    user = current_user()
    assert user is not None
    if len(user.services) == 1:
        return redirect(url_for("dashboard.service_page", service=user.services[0]))
    return _page("dashboard/home.html")


def _quarter(slug: str) -> FiscalQuarter:
    """The quarter asked for (``fiscal_year`` and ``quarter``), else the current one in the service's zone."""
    year, quarter = request.args.get("fiscal_year"), request.args.get("quarter")
    if not year and not quarter:
        return figures.current_quarter(runtime(), slug, utcnow())
    return _given_quarter(year or "", quarter or "")


def _given_quarter(year: str, quarter: str) -> FiscalQuarter:
    fiscal_year = whole_number(year, 2000, 2999)  # the report API's range
    number = whole_number(quarter, 1, 4)
    if fiscal_year is None or number is None:
        abort(400, _("Give the fiscal year (for example 2027) and the quarter (1 to 4)."))
    return FiscalQuarter(fiscal_year, number)


@bp.route("/services/<service>")
@signed_in
def service_page(service: str) -> Any:
    require_service(service)
    rt = runtime()
    quarter = _quarter(service)
    bucket = request.args.get("bucket", "week")
    if bucket not in wc.BUCKETS:
        abort(400, _("Show the trend by day, week or month."))
    data = request.args.get("data", "counted")
    if data not in ("counted", "test"):
        abort(400, _("Choose counted data or test data."))
    include_test = data == "test"
    with rt.sessions() as db:
        submissions.one_snapshot(db)  # every figure of the page from the same moment
        figs = figures.service_figures(rt, db, service, quarter, bucket, include_test)
        test_preview = None
        if not include_test and figs.funnel.transactions == 0:
            test_preview = figures.test_transactions(rt, db, service, quarter)
        filing = None if include_test else _filing(rt, db, service, quarter)
    language = g.get("language", "en")
    config = rt.catalog.services[service]
    current = figures.current_quarter(rt, service, utcnow())
    return _page(
        "dashboard/service.html", current_slug=service, service=config,
        service_name=translate(language, config.name), figs=figs, charts=_charts(figs), quarter=quarter,
        quarters=figures.quarter_choices(current, quarter), bucket=bucket, day=timedelta(days=1),
        driver_names=figures.DRIVER_NAMES, rating_names=figures.RATING_NAMES, data=data, test_preview=test_preview,
        a11_url=url_for("dashboard.a11_csv", service=service, fiscal_year=quarter.fiscal_year,
                        quarter=quarter.quarter), filing=filing, figure_names=FIGURE_NAMES, figure_cell=_figure_cell,
    )  # fmt: skip


FIGURE_NAMES = {
    "volume_of_customers": N_("Customers"),
    "volume_of_customers_provided_survey_opportunity": N_("Survey opportunities"),
    "volume_of_respondents": N_("Respondents"),
    "response_rate": N_("Response rate"),
    "satisfaction_mean": N_("Satisfaction mean (1-5)"),
    "trust_mean": N_("Trust mean (1-5)"),
    "trust_agree_pct": N_("Trust share agreeing"),
}


SHARE_FIGURES = ("response_rate", "trust_agree_pct")


def _figure_cell(figure: str, value: Decimal | int | None) -> str:
    """A figure of "what moved" as the rest of the page shows it: a share as a percentage (the filed 4-place cell,
    its point moved: 0.2105 is "21.05 %", rounded no further), a count with thousands separators, a mean as filed."""
    if value is None:
        return "—"
    if figure in SHARE_FIGURES:
        return f"{a11.percent_cell(value, 2)}\u00a0%"  # 4 places as filed: 2 as a percentage, nothing rounded
    return f"{value:,}" if isinstance(value, int) else str(value)


def _filing(rt: Any, db: Any, service: str, quarter: FiscalQuarter) -> dict[str, Any]:
    """The quarter's filing state: the standing submission (None: a draft), what moved since, the reflection."""
    latest = submissions.latest(rt, db, quarter, service)
    reflection = submissions.reflection(rt, db, quarter, service)
    moved = submissions.what_moved(rt, db, latest, service) if latest is not None else []
    return {
        "submission": latest,
        "count": len(submissions.listed(rt, db, quarter, [service])),
        "moved": moved,
        "changed": any(m.changed for m in moved),
        "filed": submissions.submitted_quarters(rt, db, service),
        "reflection": reflection.text if reflection is not None else "",
        "max_reflection": submissions.MAX_REFLECTION,
    }


def _posted_quarter() -> FiscalQuarter:
    return _given_quarter(request.form.get("fiscal_year", ""), request.form.get("quarter", ""))


def _back(service: str, quarter: FiscalQuarter) -> Any:
    target = url_for("dashboard.service_page", service=service, fiscal_year=quarter.fiscal_year,
                     quarter=quarter.quarter)  # fmt: skip
    return redirect(target + "#filing-h", code=303)


@bp.route("/services/<service>/submit", methods=["POST"])
@signed_in
def submit_quarter(service: str) -> Any:
    """File the quarter: freeze its four files with the account's email and the time."""
    require_service(service)
    quarter = _posted_quarter()
    user = current_user()
    assert user is not None
    rt = runtime()
    # The filing the page showed standing ("" for a draft): a second click of Submit, or a colleague's filing since,
    # files nothing more, and the page shows the filing that stands (with its "Submit again").
    shown = request.form.get("standing")
    try:
        with submissions.one_filing_at_a_time(rt, service, quarter), unit_of_work(rt.sessions) as db:
            try:
                row = submissions.submit(rt, db, quarter, service, user.email, over=shown)
            except submissions.NotBegun:
                abort(400, _("That quarter has not begun yet: a quarter can be filed once it has started."))
            log(logger, "quarter submitted", service=service, fiscal_year=quarter.fiscal_year,
                quarter=quarter.quarter, submission=str(row.id))  # fmt: skip
    except submissions.FiledMeanwhile:
        log(logger, "quarter not submitted again: filed since the page was shown", service=service,
            fiscal_year=quarter.fiscal_year, quarter=quarter.quarter)  # fmt: skip
    return _back(service, quarter)


@bp.route("/services/<service>/reflection", methods=["POST"])
@signed_in
def save_reflection(service: str) -> Any:
    """Write the quarter's reflection (empty text removes it)."""
    require_service(service)
    quarter = _posted_quarter()
    # A browser sends each line break of the text box as CR LF, while the box's maxlength counted it as one character:
    # read the text back as typed, or a reflection the box allowed would be refused as too long (and kept with CRs).
    text = request.form.get("text", "").replace("\r\n", "\n").replace("\r", "\n")
    if submissions.reflection_problem(text) is not None:
        abort(400, _("The reflection must be at most %(count)s characters of ordinary text.",
                     count=f"{submissions.MAX_REFLECTION:,}"))  # fmt: skip
    user = current_user()
    assert user is not None
    rt = runtime()
    with unit_of_work(rt.sessions) as db:
        submissions.save_reflection(rt, db, quarter, service, text, user.email)
    return _back(service, quarter)


def _pct(share: float | None) -> str:
    """A share as a whole percentage, for charts and the summary (e.g. "67 %"), rounded half up as the file and /data
    round (``a11.percent_cell``)."""
    return "—" if share is None else f"{a11.percent_cell(share, 0)}\u00a0%"


def _pct1(share: float | None) -> str:
    """A share with one decimal, for the tables (e.g. "66.7 %"), rounded half up as the file and /data round."""
    return "—" if share is None else f"{a11.percent_cell(share, 1)}\u00a0%"


def _mean(of: tuple[int, int]) -> str:
    """A mean from (sum of the points, count of the answers), rounded half up to 2 places as the §6.1 file and the
    public data round it ("—" without answers): the float's own rounding showed 3.125 as 3.12 beside a file's 3.13."""
    total, n = of
    cell = a11.mean_cell(total, n)
    return "—" if cell is None else str(cell)


def _charts(f: figures.ServiceFigures) -> dict[str, Any]:
    steps = [(_(label), n) for label, n in f.funnel_steps]
    funnel = charts.bars(
        "chart-funnel", _("Delivery funnel"),
        _("Bars from transactions to completed responses; the numbers are in the table that follows."),
        [charts.Bar(label, n, f"{n:,}") for label, n in steps],
    )  # fmt: skip
    labels = [figures.bucket_label(p.day, f.bucket) for p in f.trend["satisfaction"]]
    series = [
        charts.Series(name, [None if p.agree_share is None else p.agree_share * 100 for p in f.trend[tag]],
                      [_("%(share)s (%(count)d answers)", share=_pct(p.agree_share), count=p.n) for p in f.trend[tag]])
        for tag, name in (("satisfaction", _("Satisfaction")), ("trust", _("Trust"))) if f.shows(tag)
    ]  # fmt: skip
    trend = charts.lines(
        "chart-trend", _("Satisfaction and trust over time"),
        _("Share of answers that agree (4 or 5) per period; the counts are in the table that follows."),
        labels, series,
    )  # fmt: skip
    drivers = charts.diverging(
        "chart-drivers", _("Drivers"), _("Respondents who chose each driver; the numbers are in the table that follows."),
        [(_(figures.DRIVER_NAMES[d]), neg, pos) for d, pos, neg in f.drivers], _("Negative"), _("Positive"),
    )  # fmt: skip
    channel = charts.bars(
        "chart-channel", _("Response rate by channel"),
        _("Respondents divided by survey opportunities per channel; the numbers are in the table that follows."),
        [charts.Bar(_(r.short), (r.volumes.response_rate or 0) * 100, _pct(r.volumes.response_rate))
         for r in f.by_channel], maximum=100,
    )  # fmt: skip
    tag = "satisfaction" if f.shows("satisfaction") else "trust"  # a flow may ask trust alone (A-11 2024)
    office = charts.bars(
        "chart-office", _("Satisfaction by office") if tag == "satisfaction" else _("Trust by office"),
        _("Share of satisfaction answers that agree (4 or 5) per office; the numbers are in the table that follows.")
        if tag == "satisfaction" else
        _("Share of trust answers that agree (4 or 5; thumbs up) per office; the numbers are in the table that follows."),
        [charts.Bar(r.short if r.key else _(r.short), (r.rating(tag).agree_share or 0) * 100,
                    _pct(r.rating(tag).agree_share)) for r in f.by_office], maximum=100,
    )  # fmt: skip
    return {
        "funnel": funnel,
        "trend": trend,
        "drivers": drivers,
        "channel": channel,
        "office": office,
        "pct": _pct,
        "pct1": _pct1,
        "mean": _mean,
    }


@bp.route("/services/<service>/a11.csv")
@signed_in
def a11_csv(service: str) -> Any:
    """The quarter's §6.1 A-11 file of this service: exactly the bytes of the report API's CSV."""
    require_service(service)
    quarter = _quarter(service)
    rt = runtime()
    with rt.sessions() as db:
        submissions.one_snapshot(db)
        body = formats.to_csv(a11.collection(rt, db, quarter, [service])).encode("utf-8")
    response = make_response(body)
    response.headers["Content-Type"] = formats.CSV_MEDIA_TYPE
    name = f"a11-{service}-fy{quarter.fiscal_year}-q{quarter.quarter}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
