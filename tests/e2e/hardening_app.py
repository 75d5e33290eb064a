"""WSGI application for the hardening suites (test_abuse_http, test_faults): plain_app plus
routes those suites need.

* ``/slowcl?n=N&size=S&delay=D``: a response *with* Content-Length (N*S bytes of 'y'),
  sent as N pieces of S bytes, D seconds apart: for truncation checks on Content-Length
  responses.
* ``/pidsleep?dur=D``: sleeps D seconds, then answers "PID\\n" (which worker served it).

Every other path goes to plain_app (``application``: validated; ``raw_application``:
unvalidated, for workers started with --tracelog, whose tracelog object the validator
refuses).
"""
import os
import time
from urllib.parse import parse_qs

import plain_app


def _qs(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _make(inner):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        q = _qs(environ)
        if path == "/slowcl":
            n, size, delay = int(q.get("n", "20")), int(q.get("size", "1000")), float(
                q.get("delay", "0.05"))
            start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", str(n * size))])

            def gen():
                for _ in range(n):
                    time.sleep(delay)
                    yield b"y" * size
            return plain_app.ClosingIterable(gen(), path)
        if path == "/pidsleep":
            time.sleep(float(q.get("dur", "0.1")))
            body = b"%d\n" % os.getpid()
            start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return inner(environ, start_response)
    return app


application = _make(plain_app.application)
raw_application = _make(plain_app.raw_application)
