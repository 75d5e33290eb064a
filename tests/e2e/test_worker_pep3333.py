"""zkworker end to end: PEP 3333 as a plain WSGI app sees it, under wsgiref's validator.

A test client speaking the wire protocol drives a real zkworker running
tests/apps/plain_app.py (wrapped in wsgiref.validate.validator with WSGIWarning as an
error, so any environ or protocol violation by the worker turns into a 500 here).
"""

import json
import os
import time
import unittest

import harness
from harness import request, sha256


class PlainAppTest(harness.E2ETestCase):
    """One shared worker (2 threads, private TMPDIR) for the read-only cases."""

    @classmethod
    def setUpClass(cls):
        sb = cls.class_sandbox()
        cls.tmpdir = sb.mkdir("tmp")
        cls.worker, cls.port = sb.start_worker(threads=2, env={"TMPDIR": cls.tmpdir})

    def setUp(self):
        self.conn = self.connect(self.port)
        self.rno = 0

    def get(self, url, **kw):
        self.rno += 1
        return request(self.conn, self.rno, url, **kw)

    def closed(self):
        r = self.get("/closed")
        self.assertComplete(r)
        return json.loads(r.body)

    def assert_closed_once_more(self, before, path):
        after = self.closed()
        self.assertEqual(after.count(path), before.count(path) + 1,
                         f"close() of the {path} response not called: {after}")

    # ------------------------------------------------------------------ basics
    def test_hello(self):
        r = self.get("/hello")
        self.assertComplete(r, 200, b"Hello, world!\n")
        self.assertEqual(r.status, "200 OK")
        self.assertEqual(r.header_list, [("Content-Type", "text/plain"),
                                         ("Content-Length", "14")])

    def test_not_found(self):
        r = self.get("/nothing-here")
        self.assertComplete(r, 404, b"not found\n")
        self.assertEqual(r.status, "404 Not Found")

    def test_handshake(self):
        self.assertEqual(self.conn.hello["role"], "worker")
        self.assertEqual(self.conn.hello["version"], 1)
        self.assertEqual(self.conn.hello["pid"], self.worker.pid)
        self.assertIsInstance(self.conn.first_resume, dict)

    # ------------------------------------------------------------------ environ
    def test_environ_as_sent_plus_wsgi_keys(self):
        before = time.time()
        env = harness.environ("/environ", query="a=1&b=%20", headers={"X-Latin": "café",
                                                                      "Accept": "*/*"})
        env["REMOTE_PORT"] = "40000"
        self.conn.send_request(1, "my-class", env)
        status, headers, body, outcome = self.conn.read_response(1)
        self.assertEqual((status, outcome), ("200 OK", "complete"), body)
        got = json.loads(body)
        for k, v in env.items():
            self.assertEqual(got.get(k), v, k)
        self.assertEqual(got["HTTP_X_LATIN"], "caf\u00e9")  # latin-1 native string
        self.assertNotIn("CONTENT_LENGTH", got)  # no body: none (as with gunicorn)
        self.assertEqual(got["wsgi.version"], "(1, 0)")
        self.assertEqual(got["wsgi.url_scheme"], "http")
        self.assertIs(got["wsgi.multithread"], True)  # threads=2
        self.assertIn(got["wsgi.multiprocess"], (True, False))
        self.assertIs(got["wsgi.run_once"], False)
        for key in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper"):
            self.assertIn(key, got)
        self.assertEqual(got["zc.resumelb.request_class"], "my-class")
        self.assertLessEqual(before - 1, got["zc.resumelb.time"])
        self.assertLessEqual(got["zc.resumelb.time"], time.time() + 1)

    def test_url_scheme_from_the_lb_is_kept(self):
        self.conn.send_request(1, "/environ", harness.environ("/environ", **{
            "wsgi.url_scheme": "https", "HTTPS": "on"}))
        status, _, body, outcome = self.conn.read_response(1)
        self.assertEqual(status, "200 OK", body)
        self.assertEqual(json.loads(body)["wsgi.url_scheme"], "https")

    # ------------------------------------------------------------------ wsgi.input
    def test_input_in_memory(self):
        data = os.urandom(1000)
        r = self.get("/echo", method="POST", body=data)
        self.assertComplete(r)
        n, digest, _ = r.body.split()
        self.assertEqual((int(n), digest.decode()), (1000, sha256(data)))

    def test_input_at_the_spool_threshold_stays_in_memory(self):
        data = os.urandom(1 << 20)  # the default threshold: not above it
        r = self.get("/inputinfo", method="POST", body=data)
        self.assertComplete(r)
        info = json.loads(r.body)
        self.assertEqual(info["type"], "BytesIO", info)
        self.assertEqual((info["length"], info["sha256"]), (len(data), sha256(data)))

    def test_input_above_the_spool_threshold_is_a_temp_file(self):
        data = os.urandom((1 << 20) + 1)
        r = self.get("/inputinfo", method="POST", body=data, timeout=30)
        self.assertComplete(r)
        info = json.loads(r.body)
        self.assertEqual((info["length"], info["sha256"]), (len(data), sha256(data)))
        self.assertEqual(info["content_length"], str(len(data)))
        self.assertNotEqual(info["type"], "BytesIO", info)
        self.assertIsNotNone(info["file"], info)
        # In the worker's TMPDIR, already unlinked (nothing can be left behind).
        self.assertTrue(info["file"].startswith(self.tmpdir + "/"), info)
        self.assertTrue(info["file"].endswith("(deleted)"), info)
        self.assertEqual(os.listdir(self.tmpdir), [])

    def test_body_without_content_length(self):
        # A chunked upload: the LB sends no CONTENT_LENGTH; the app gets what arrived.
        data = b"x" * 70000 + b"end"
        env = harness.environ("/inputinfo", method="POST", body=data, content_length=False)
        self.assertNotIn("CONTENT_LENGTH", env)
        self.conn.send_request(1, "/inputinfo", env, body=data, chunk=1000)
        status, _, body, outcome = self.conn.read_response(1)
        self.assertEqual((status, outcome), ("200 OK", "complete"), body)
        info = json.loads(body)
        self.assertEqual(info["content_length"], str(len(data)))
        self.assertEqual((info["length"], info["sha256"]), (len(data), sha256(data)))

    def test_input_readline_iteration(self):
        r = self.get("/readline", method="POST", body=b"one\ntwo\nthree\n")
        self.assertComplete(r, 200, b"3\n")

    # ------------------------------------------------------------------ wsgi.errors
    def test_wsgi_errors_go_to_the_log(self):
        mark = self.worker.mark()
        r = self.get("/errors")
        self.assertComplete(r, 200, b"logged\n")
        self.worker.wait_for_log(r"^W.*\] a line for the log$", since=mark, timeout=5)
        self.worker.wait_for_log(r"^W.*\] two parts$", since=mark, timeout=5)

    # ------------------------------------------------------------------ response side
    def test_file_wrapper(self):
        r = self.get("/filewrapper")
        self.assertComplete(r, 200, b"file wrapper content\n" * 100)
        self.assertEqual(r.headers["content-length"], "2100")

    def test_write_callable(self):
        r = self.get("/write")
        self.assertComplete(r, 200, b"written and returned\n")

    def test_start_response_with_exc_info_before_headers(self):
        r = self.get("/exc-info")
        self.assertComplete(r, 503, b"error page\n")
        self.assertEqual(r.status, "503 Service Unavailable")

    def test_start_response_with_exc_info_after_headers_reraises(self):
        before = self.closed()
        mark = self.worker.mark()
        r = self.get("/exc-info-after-headers")
        self.assertEqual(r.status, "200 OK")
        self.assertEqual(r.body, b"partial")
        self.assertEqual(r.outcome, "failed")
        self.worker.wait_for_log(r"ValueError: too late to replace the response", since=mark,
                                 timeout=5)
        self.assert_closed_once_more(before, "/exc-info-after-headers")

    def test_lazy_start_response_generators(self):
        for n, body in [(0, b""), (1, b"chunk0\n"), (2, b"chunk0\nchunk1\n")]:
            with self.subTest(n=n):
                r = self.get(f"/lazy?n={n}")
                self.assertComplete(r, 200, body)

    def test_empty_chunks_are_not_sent(self):
        # rlbproto rejects an empty RESPONSE_BODY as malformed, so reading it checks this.
        r = self.get("/empty-chunks")
        self.assertComplete(r, 200, b"ab")

    def test_streamed_response_and_close(self):
        before = self.closed()
        r = self.get("/big?size=300000&chunk=1000")
        self.assertComplete(r)
        self.assertNotIn("content-length", r.headers)
        self.assertEqual(len(r.body), 300000)
        self.assert_closed_once_more(before, "/big")

    def test_streamed_chunk_is_sent_before_the_next_is_produced(self):
        # The worker holds a response's head and small chunks only while more is ready at
        # once (an in-memory list); a generator's chunk must not wait for the next one.
        for method, wanted in [("GET", "RESPONSE_BODY"), ("HEAD", "RESPONSE")]:
            with self.subTest(method=method):
                rno = self.rno + 1
                self.conn.send_request(rno, "/gated-stream",
                                       harness.environ("/gated-stream", method=method))
                try:
                    seen = []
                    deadline = time.monotonic() + 10  # the app waits up to 60 s
                    while wanted not in seen:
                        frame = self.conn.read_frame(timeout=deadline - time.monotonic())
                        self.assertEqual(frame[0], rno)
                        seen.append(frame[1])
                finally:
                    self.conn.send_request(rno + 1, "/release-stream",
                                           harness.environ("/release-stream"))
                rest = {}
                while len(rest) < 2:
                    frame = self.conn.read_frame(timeout=10)
                    if frame[1] == "RESPONSE_END":
                        rest[frame[0]] = frame[2]
                self.assertEqual(rest, {rno: "complete", rno + 1: "complete"})
                self.rno = rno + 1

    # ------------------------------------------------------------------ HEAD
    def test_head_sends_headers_only(self):
        r = self.get("/hello", method="HEAD")
        self.assertComplete(r, 200, b"")
        self.assertEqual(r.headers["content-length"], "14")
        r = self.get("/big?size=200000", method="HEAD")
        self.assertComplete(r, 200, b"")

    def test_head_of_an_app_error(self):
        r = self.get("/error", method="HEAD")
        self.assertComplete(r, 500, b"")
        self.assertEqual(r.headers["content-length"], "23")

    # ------------------------------------------------------------------ app errors
    def test_exception_before_the_response_starts(self):
        mark = self.worker.mark()
        r = self.get("/error")
        self.assertComplete(r, 500, b"A system error occurred")
        self.assertEqual(r.status, "500 Internal Server Error")
        self.assertEqual(r.header_list, [("Content-Type", "text/html; charset=UTF-8"),
                                         ("Content-Length", "23")])
        m = self.worker.wait_for_log(
            r"^E.*Uncaught application exception for \d+\.1:\nTraceback \(most recent call "
            r"last\):\n(?:.*\n)*?RuntimeError: boom before the response started$",
            since=mark, timeout=5)
        self.assertIn("plain_app.py", m.group(0))

    def test_exception_in_a_lazy_generator_before_output(self):
        before = self.closed()
        mark = self.worker.mark()
        r = self.get("/lazy-error")
        self.assertComplete(r, 500, b"A system error occurred")
        self.worker.wait_for_log(r"RuntimeError: boom inside a lazy generator", since=mark,
                                 timeout=5)
        self.assert_closed_once_more(before, "/lazy-error")

    def test_exception_after_the_headers_fails_the_response(self):
        before = self.closed()
        mark = self.worker.mark()
        r = self.get("/error-after-headers")
        self.assertEqual(r.status, "200 OK")
        self.assertEqual(r.body, b"partial")
        self.assertEqual(r.outcome, "failed")
        self.worker.wait_for_log(r"Uncaught application exception for \d+\.%d:\nTraceback"
                                 % self.rno, since=mark, timeout=5)
        self.worker.wait_for_log(r"RuntimeError: boom after the headers were sent", since=mark,
                                 timeout=5)
        self.assert_closed_once_more(before, "/error-after-headers")

    def test_no_start_response_is_an_error(self):
        mark = self.worker.mark()
        r = self.get("/no-start-response")
        self.assertComplete(r, 500, b"A system error occurred")
        self.worker.wait_for_log(r"start_response", since=mark, timeout=5)

    # ------------------------------------------------------------------ multiplexing
    def test_interleaved_requests_on_one_connection(self):
        # threads=2: a fast request overtakes a slow one on the same connection.
        self.conn.send_request(1, "/sleep", harness.environ("/sleep", query="dur=0.5"))
        self.conn.send_request(2, "/hello", harness.environ("/hello"))
        order = []
        done = {}
        deadline = time.monotonic() + 20
        while len(done) < 2:
            rno, kind, payload = self.conn.read_frame(timeout=deadline - time.monotonic())
            if kind == "RESPONSE_END":
                order.append(rno)
                done[rno] = payload
        self.assertEqual(order, [2, 1])
        self.assertEqual(done, {1: "complete", 2: "complete"})
        self.rno = 2


class ThreadsTest(harness.E2ETestCase):
    """wsgi.multithread and real concurrency follow --threads."""

    def run_two_sleeps(self, threads):
        worker, port = self.start_worker(threads=threads)
        conn = self.connect(port)
        env = harness.environ("/environ")
        conn.send_request(1, "/environ", env)
        status, _, body, _ = conn.read_response(1)
        multithread = json.loads(body)["wsgi.multithread"]
        for rno in (2, 3):
            conn.send_request(rno, "/sleep", harness.environ("/sleep", query="dur=0.3"))
        for rno in (2, 3):
            r = conn.read_response(rno)
            self.assertEqual((r[0], r[3]), ("200 OK", "complete"))
        r = request(conn, 4, "/maxactive")
        self.assertComplete(r)
        return multithread, int(r.body)

    def test_one_thread(self):
        multithread, maxactive = self.run_two_sleeps(1)
        self.assertIs(multithread, False)
        self.assertEqual(maxactive, 1)

    def test_two_threads(self):
        multithread, maxactive = self.run_two_sleeps(2)
        self.assertIs(multithread, True)
        self.assertEqual(maxactive, 2)


if __name__ == "__main__":
    unittest.main()
