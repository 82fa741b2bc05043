"""The survey delivery engine: domain (store, intake, decisions, dispatch, sessions, reporting).

Channels live in the top-level ``channels`` package and depend on this one; this package never imports them.
"""
