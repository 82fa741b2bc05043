"""A-11 reporting: one definition of what counts (SPEC §6), the §6.1 and §6.2 files, and the dashboard's figures.

Modules: :mod:`~engine.reporting.what_counts` (the definition, as SQL building blocks and aggregates),
:mod:`~engine.reporting.a11` (§6.1 rows), :mod:`~engine.reporting.responses_file` (§6.2 streamed rows),
:mod:`~engine.reporting.formats` (CSV / JSON / XLSX), :mod:`~engine.reporting.masking` (contact data out of text).

API for the dashboard (everything from :mod:`engine.reporting.what_counts`; ``rt`` a Runtime, ``session`` a
Session; every figure excludes spam always, and test/console data unless ``include_test=True``)::

    scope = scope_for(rt, ["passport-renewal"], FiscalQuarter(2027, 1), include_test=False)
    scope = scope_for(rt, [service_id, ...], (date(2026, 10, 1), date(2026, 11, 1)))   # local days [first, end)

    funnel(rt, session, scope)                  # {Key(service_id): Funnel(transactions, sampled, sent,
                                                #    delivered, started, completed, kiosk_sessions)}
    volumes(rt, session, scope, by=())          # {Key: Volumes(customers, opportunities, respondents,
                                                #    .response_rate)}   by=("channel",) / ("office",) / both
    ratings(session, scope, by=("channel",))    # {Key: {tag: Rating(counts{1..5}, .n, .mean, .agree_share)}}
    drivers(session, scope, by=())              # {Key: {("positive"|"negative", driver): respondents}}
    trend(rt, session, service, first, end, bucket="day"|"week"|"month", include_test=False, thumbs=None)
                                                # {"satisfaction"|"trust": [TrendPoint(day, n, mean, agree_share,
                                                #    mean_of)]}  thumbs: {tag: survey ids asked as thumbs}
    comments(session, scope, limit=20)          # [Comment(response_id, service_id, channel, office_id,
                                                #    answered_at, text)]  newest first, text masked
    a11_channel("sms") -> "sms_text_messages"   # engine channel names → A-11 vocabulary for display
    figures(rt, session, scope, by)             # volumes + ratings + drivers + service-level sums at once

``Key`` is ``(service_id, channel, office_id, survey_id)``; a dimension not asked for in ``by`` is ``None``. Office ids are
``offices.id`` (``rt.office_ids`` maps codes to ids). The §6.1 file itself: ``a11.collection(rt, session,
fiscal_quarter, services, by_office=False)`` → ``Collection(columns, rows)``; ``formats.to_csv(collection)`` is
the exact CSV the API and the CLI serve. Filing a quarter and reading it back: :mod:`~engine.reporting.submissions`
(``submit``, ``listed``, ``latest``, ``submitted_quarters``, ``what_moved``, reflections).

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.surveys`` (the flow a response was
answered on), ``engine.channels`` (each channel's A-11 name), ``engine.runtime``, ``engine.settings``. Never
delivery, intake or a blueprint package: reports read what was stored.
"""
