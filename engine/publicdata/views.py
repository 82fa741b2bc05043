"""The public data pages: every service and its submitted quarters, one service's filed figures as charts with
their tables, and the submitted §6.1 CSV, in the visitor's language (``Accept-Language`` or ``?lang=``).

Everything shown comes from the standing (newest) submission of each quarter; a quarter nobody submitted does not
exist here. An unknown service, or a quarter that was not submitted, is a 404 page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response, g, render_template
from flask_babel import gettext as _
from markupsafe import Markup

from engine.common.i18n import available_languages, translate
from engine.dashboard import charts
from engine.dashboard.figures import DRIVER_NAMES, RATING_NAMES, a11_channel_label
from engine.publicdata import bp
from engine.publicdata.figures import (
    QuarterFigures,
    filed_quarters,
    quarter_figures,
    standing,
)
from engine.reporting import a11, formats
from engine.webapp.request_checks import page_language
from engine.webapp.support import public, runtime

FIRST_YEAR, LAST_YEAR = 2000, 2999  # the report API's range


def _pct(share: Decimal | None) -> str:
    """A share as a whole percentage, for the charts and the summary (e.g. "67 %"), rounded half up once, from the
    unrounded share (``a11.percent_cell``), as the dashboard rounds it."""
    return "—" if share is None else f"{a11.percent_cell(share, 0)}\u00a0%"


def _pct1(share: Decimal | None) -> str:
    """A share with one decimal, for the tables (e.g. "66.7 %"), rounded half up once, as the dashboard rounds it."""
    return "—" if share is None else f"{a11.percent_cell(share, 1)}\u00a0%"


def _label(fiscal_year: int, quarter: int) -> str:
    """A fiscal quarter as people read it ("FY2027 Q1"; Spanish "AF2027 T1")."""
    return _("FY%(year)s Q%(quarter)s", year=fiscal_year, quarter=quarter)


def _language() -> str:
    """The visitor's language, set for the whole request before any string is translated (Flask-Babel keeps the
    first locale it reads)."""
    g.language = language = page_language()
    return language


def _render(template: str, status: int = 200, **context: Any) -> Response:
    language = _language()
    others = [lang for lang in available_languages() if lang != language]
    body = render_template(
        template, language=language, other_languages=others, pct=_pct, pct1=_pct1, label=_label, **context
    )
    return Response(body, status=status, mimetype="text/html")


@bp.after_request
def _caching(response: Response) -> Response:
    """What a cache in between (the agency's CDN, a proxy) may do with these pages: keep them but ask again before
    each use (a later filing of a quarter supersedes what they show, and a re-filed CSV has the same address), and
    keep each language apart (a page's words follow ``Accept-Language`` when ``?lang=`` is not given)."""
    response.headers.setdefault("Cache-Control", "no-cache")
    if response.mimetype == "text/html":
        response.vary.add("Accept-Language")
    return response


def _not_found(service_name: str | None = None) -> Response:
    return _render("data/not_found.html", 404, service_name=service_name)


@bp.get("/data")
@public("public data (A-11 280.7): the services and their submitted quarters; nothing that was not filed")
def index() -> Any:
    rt = runtime()
    language = _language()
    listing: list[dict[str, Any]] = []
    with rt.sessions() as db:
        filed = filed_quarters(db)
    for slug, config in rt.catalog.services.items():
        listing.append({"slug": slug, "name": translate(language, config.name),
                        "agency": translate(language, config.agency),
                        "quarters": filed.get(rt.service_ids[slug], [])})  # fmt: skip
    listing.sort(key=lambda s: (s["agency"].casefold(), s["name"].casefold()))
    return _render("data/index.html", services=listing, any_filed=any(s["quarters"] for s in listing))


def _charts(latest: QuarterFigures, history: list[QuarterFigures]) -> dict[str, Markup]:
    ratings = charts.bars(
        "chart-ratings", _("Share of answers that agree"),
        _("Share of answers of 4 or 5 (thumbs up) for each question; the numbers are in the table that follows."),
        [charts.Bar(_(RATING_NAMES[r.tag]), float(r.agree or 0) * 100, _pct(r.agree)) for r in latest.ratings],
        maximum=100,
    )  # fmt: skip
    drivers = charts.diverging(
        "chart-drivers", _("Drivers"), _("Respondents who chose each driver; the numbers are in the table that follows."),
        [(_(DRIVER_NAMES[d]), negative, positive) for d, positive, negative in latest.drivers],
        _("Negative"), _("Positive"),
    )  # fmt: skip
    channel = charts.bars(
        "chart-channel", _("Response rate by channel"),
        _("Respondents divided by survey opportunities per channel; the numbers are in the table that follows."),
        [charts.Bar(_(a11_channel_label(c.channel)[1]), float(c.volumes.response_rate or 0) * 100,
                    _pct(c.volumes.response_rate)) for c in latest.channels], maximum=100,
    )  # fmt: skip
    # Oldest first, with an empty slot at each end so that the first and last quarters' labels fit in the drawing.
    oldest_first: list[QuarterFigures | None] = [None, *reversed(history), None]
    series = []
    for tag in ("satisfaction", "trust"):
        shares = [None if q is None else q.rating(tag) for q in oldest_first]
        if any(r is not None for r in shares):
            series.append(charts.Series(
                _(RATING_NAMES[tag]),
                [None if r is None or r.agree is None else float(r.agree) * 100 for r in shares],
                ["—" if r is None else _pct(r.agree) for r in shares],
            ))  # fmt: skip
    quarters = charts.lines(
        "chart-quarters", _("Satisfaction and trust by submitted quarter"),
        _("Share of answers that agree (4 or 5; thumbs up) in each submitted quarter; the numbers are in the table "
          "that follows."),
        ["" if q is None else _label(q.fiscal_year, q.quarter) for q in oldest_first], series,
    )  # fmt: skip
    return {"ratings": ratings, "drivers": drivers, "channel": channel, "quarters": quarters}


@bp.get("/data/<service>")
@public("public data (A-11 280.7): one service's submitted quarters, figures only; nothing that was not filed")
def service_page(service: str) -> Any:
    rt = runtime()
    config = rt.catalog.services.get(service)
    if config is None:
        return _not_found()
    language = _language()
    with rt.sessions() as db:
        history = [quarter_figures(s) for s in standing(rt, db, service, "collection_json")]
    context: dict[str, Any] = {
        "slug": service, "service_name": translate(language, config.name),
        "agency": translate(language, config.agency), "history": history,
        "rating_names": RATING_NAMES, "driver_names": DRIVER_NAMES, "channel_label": a11_channel_label,
    }  # fmt: skip
    if history:
        context["latest"] = history[0]
        context["charts"] = _charts(history[0], history)
    return _render("data/service.html", **context)


@bp.get("/data/<service>/<int:fiscal_year>-q<int:quarter>.csv")
@public("public data (A-11 280.7): the §6.1 CSV exactly as it was submitted")
def submitted_csv(service: str, fiscal_year: int, quarter: int) -> Any:
    rt = runtime()
    config = rt.catalog.services.get(service)
    if config is None:
        return _not_found()
    if not (FIRST_YEAR <= fiscal_year <= LAST_YEAR and 1 <= quarter <= 4):
        return _not_found(translate(_language(), config.name))
    with rt.sessions() as db:
        filed = next((s for s in standing(rt, db, service)
                      if (s.fiscal_year, s.quarter) == (fiscal_year, quarter)), None)  # fmt: skip
        body = None if filed is None else bytes(filed.collection_csv)
    if body is None:
        return _not_found(translate(_language(), config.name))
    response = Response(body, content_type=formats.CSV_MEDIA_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="a11-{service}-fy{fiscal_year}-q{quarter}.csv"'
    return response
