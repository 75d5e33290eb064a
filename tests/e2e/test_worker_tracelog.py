"""zkworker end to end: the trace log (docs/operations.md, "Logs").

Records are ``CODE ID YYYY-MM-DD HH:MM:SS[.ffffff] [MESSAGE]``: S/X with id 0 at start and
stop; per request (id ``<connection id>.<rno>``) B (method, path?query), I (declared
CONTENT_LENGTH or 0), C, the app's own records (code '-' or custom), A (status and
Content-Length or '?'), E.
"""

import datetime
import re
import unittest

import harness
from harness import request

RECORD_RE = re.compile(r"^(?P<code>\S+) (?P<id>\d+(?:\.\d+)?) "
                       r"(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?)"
                       r"(?: (?P<msg>.*))?$")


def parse(text):
    out = []
    for line in text.splitlines():
        m = RECORD_RE.match(line)
        if not m:
            raise AssertionError(f"trace line not in the original's format: {line!r}")
        out.append((m["code"], m["id"], m["msg"], m["when"]))
    return out


class TraceLogTest(harness.E2ETestCase):

    def read_trace(self, path):
        with open(path) as f:
            return parse(f.read())

    def test_records(self):
        path = self.sandbox.path("trace.log")
        # The default key 'tracelog' (the original's, for zc.zservertracelog compatibility)
        # holds an object, which wsgiref's validator forbids for a key without a dot: run
        # the unvalidated app.
        worker, port = self.start_worker(app="plain_app:raw_application", threads=1,
                                         extra_args=[f"--tracelog={path}"])
        a = self.connect(port)
        self.assertComplete(request(a, 1, "/trace?x=1&y=2"), 200, b"traced\n")
        body = b"0123456789" * 5
        self.assertComplete(request(a, 2, "/echo", method="POST", body=body))
        self.assertComplete(request(a, 3, "/lazy?n=2"))  # no Content-Length: '?'
        b = self.connect(port)
        self.assertComplete(request(b, 7, "/error"), 500)
        b.close()
        a.close()
        self.assertEqual(worker.stop(), 0)

        records = self.read_trace(path)
        self.assertEqual(records[0][:3], ("S", "0", None))
        self.assertEqual(records[-1][:3], ("X", "0", None))
        by_id = {}
        for code, rid, msg, _ in records[1:-1]:
            by_id.setdefault(rid, []).append((code, msg))
        self.assertEqual(sorted(by_id), ["0.1", "0.2", "0.3", "1.7"])
        self.assertEqual(by_id["0.1"], [("B", "GET /trace?x=1&y=2"), ("I", "0"), ("C", None),
                                        ("-", "test"), ("T", "test2"), ("A", "200 OK 7"),
                                        ("E", None)])
        self.assertEqual(by_id["0.2"][:3], [("B", "POST /echo"), ("I", "50"), ("C", None)])
        self.assertEqual(by_id["0.2"][3][0], "A")
        self.assertRegex(by_id["0.2"][3][1], r"^200 OK \d+$")
        self.assertEqual(by_id["0.2"][4:], [("E", None)])
        self.assertEqual(by_id["0.3"], [("B", "GET /lazy?n=2"), ("I", "0"), ("C", None),
                                        ("A", "200 OK ?"), ("E", None)])
        # The app raised before starting a response: no A (as in the original, where A
        # comes from the app's start_response), but the call still ends with E.
        self.assertEqual(by_id["1.7"], [("B", "GET /error"), ("I", "0"), ("C", None),
                                        ("E", None)])
        # Local wall-clock times, in order, close to now.
        now = datetime.datetime.now()
        stamps = [datetime.datetime.fromisoformat(w) for _, _, _, w in records]
        self.assertEqual(stamps, sorted(stamps))
        self.assertLess(abs((now - stamps[0]).total_seconds()), 120)

    def test_custom_tracelog_key_and_stderr(self):
        worker, port = self.start_worker(extra_args=["--tracelog=-",
                                                     "--tracelog_key=my.trace"])
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/environ"))
        # The app's /trace route looks for environ['tracelog']: with another key it
        # logs nothing, but the worker's own records still go to stderr.
        self.assertComplete(request(conn, 2, "/trace"))
        conn.close()
        self.assertEqual(worker.stop(), 0)
        lines = [l for l in worker.output().splitlines() if RECORD_RE.match(l)]
        codes = [(r[0], r[1]) for r in parse("\n".join(lines))]
        self.assertEqual(codes[0], ("S", "0"))
        self.assertEqual(codes[-1], ("X", "0"))
        self.assertIn(("B", "0.2"), codes)
        self.assertNotIn(("-", "0.2"), codes)

    def test_environ_has_the_trace_logger_only_when_tracing(self):
        worker, port = self.start_worker()
        conn = self.connect(port)
        r = request(conn, 1, "/environ")
        self.assertComplete(r)
        self.assertNotIn(b'"tracelog"', r.body)
        path = self.sandbox.path("t.log")
        worker2, port2 = self.start_worker(extra_args=[f"--tracelog={path}",
                                                       "--tracelog_key=my.trace"])
        r = request(self.connect(port2), 1, "/environ")
        self.assertComplete(r)
        self.assertIn(b'"my.trace"', r.body)


if __name__ == "__main__":
    unittest.main()
