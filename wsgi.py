"""WSGI entry point: ``gunicorn wsgi:app`` serves the web role (no scheduled jobs; run ``survey-engine worker``)."""

from engine.app import create_app

app = create_app()
