"""zkworker end to end with real frameworks: a Flask app (tests/apps/flask_app.py) and a
Django project (tests/apps/django_app), both wrapped in wsgiref.validate.validator."""

import json
import os
import unittest

import harness
from harness import request, sha256


class FrameworkMixin:
    APP = None

    @classmethod
    def setUpClass(cls):
        sb = cls.class_sandbox()
        cls.tmpdir = sb.mkdir("tmp")
        cls.worker, cls.port = sb.start_worker(app=cls.APP, threads=2,
                                               env={"TMPDIR": cls.tmpdir})

    def setUp(self):
        self.conn = self.connect(self.port)
        self.rno = 0

    def get(self, url, **kw):
        self.rno += 1
        return request(self.conn, self.rno, url, **kw)

    def check_echo(self, size):
        data = os.urandom(size)
        r = self.get("/echo?k=v", method="POST", body=data,
                     headers={"Content-Type": "application/octet-stream", "X-Custom": "yes"},
                     timeout=30)
        self.assertComplete(r)
        got = json.loads(r.body)
        self.assertEqual((got["length"], got["sha256"]), (size, sha256(data)))
        self.assertEqual(got["custom"], "yes")
        return got

    def test_hello(self):
        r = self.get("/hello")
        self.assertComplete(r, 200, self.HELLO)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"), r)

    def test_head(self):
        r = self.get("/hello", method="HEAD")
        self.assertComplete(r, 200, b"")

    def test_echo_small(self):
        self.check_echo(1000)

    def test_echo_spooled(self):
        self.check_echo((1 << 20) + 12345)  # above the spool threshold: a temp file
        self.assertEqual(os.listdir(self.tmpdir), [])

    def test_stream(self):
        r = self.get("/stream?n=5")
        self.assertComplete(r, 200, b"".join(b"line %d\n" % i for i in range(5)))

    def test_view_error_is_the_framework_500(self):
        mark = self.worker.mark()
        r = self.get("/error")
        self.assertEqual((r.code, r.outcome), (500, "complete"), r)
        # The framework handled it (its own page, not the worker's 23-byte one) and logged it.
        self.assertNotEqual(r.body, b"A system error occurred")
        self.worker.wait_for_log(self.ERROR_LOG, since=mark, timeout=5)

    def test_not_found(self):
        r = self.get("/no-such-view")
        self.assertEqual((r.code, r.outcome), (404, "complete"), r)


class FlaskTest(FrameworkMixin, harness.E2ETestCase):
    APP = "flask_app:application"
    HELLO = b"Hello from Flask!\n"
    ERROR_LOG = r"RuntimeError: flask view failed"

    def test_echo_small(self):
        got = self.check_echo(1000)
        self.assertEqual(got["args"], {"k": "v"})
        self.assertEqual(got["content_type"], "application/octet-stream")

    def test_stream_error_after_headers_fails(self):
        mark = self.worker.mark()
        r = self.get("/stream-error")
        self.assertEqual((r.status, r.body, r.outcome), ("200 OK", b"first\n", "failed"))
        self.worker.wait_for_log(r"Uncaught application exception(?:.*\n)*?RuntimeError: flask "
                                 r"stream failed", since=mark, timeout=5)

    def test_environ_keys(self):
        self.conn.send_request(1, "flask-class", harness.environ("/request-class"))
        status, _, body, outcome = self.conn.read_response(1)
        self.assertEqual((status, outcome), ("200 OK", "complete"), body)
        self.assertEqual(json.loads(body), {"request_class": "flask-class",
                                            "multithread": True})


class DjangoTest(FrameworkMixin, harness.E2ETestCase):
    APP = "django_app.wsgi:application"
    HELLO = b"Hello from Django!\n"
    ERROR_LOG = r"RuntimeError: django view failed"

    def test_echo_small(self):
        got = self.check_echo(1000)
        self.assertEqual(got["query"], {"k": "v"})
        self.assertEqual(got["method"], "POST")

    def test_meta(self):
        env = harness.environ("/meta", headers={"Host": "example.com"})
        env["wsgi.url_scheme"] = "https"
        self.conn.send_request(1, "django-class", env)
        status, _, body, outcome = self.conn.read_response(1)
        self.assertEqual((status, outcome), ("200 OK", "complete"), body)
        self.assertEqual(json.loads(body), {"request_class": "django-class",
                                            "script_name": "", "path": "/meta",
                                            "host": "example.com", "scheme": "https"})


if __name__ == "__main__":
    unittest.main()
