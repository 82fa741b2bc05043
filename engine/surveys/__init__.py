"""Surveys: the flows as data (``flows``), the A-11 rules a flow keeps (``flow_rules``), published versions
(``flow_store``), what a flow says (``messages``), link tokens (``tokens``), and the one survey-session engine every
channel feeds (``sessions``: start, next question, validate, record, complete), driven one turn at a time for SMS and
IVR (``conversations``: where an SMS reply or a keypress becomes an answer) and one page at a time on the web
(``web_survey``: what the page ``/s/<token>`` shows and takes; ``web_page``: its view).

May import: ``engine.common``, ``engine.store``, ``engine.catalog``, ``engine.delivery`` (an answer settles its
invitation), ``engine.webapp`` (``web_page`` only), ``engine.channels``.
"""
