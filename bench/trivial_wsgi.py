"""A WSGI app that does nothing (reads the body, answers ``{}``): gunicorn's own cost a request, measured with the
single-API load generator against it (the commands are in bench/README.md, "2026-12-05")."""


def app(environ, start_response):  # type: ignore[no-untyped-def]
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
