"""resumelb end to end: hostile or broken clients: malformed requests (400), oversized
headers (431), oversized bodies (413), slowloris (408), request smuggling attempts (400),
unsupported HTTP versions (505) and the -m connection cap."""

import os
import time
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import RawConn, chunked, http_request, request_bytes

MAX_BODY = 100000


class BadInputTest(lb_harness.RawConnTestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = lb_harness.start_cluster(
            cls.class_sandbox(), 1, threads=2,
            lb_args=[f"--max_body_bytes={MAX_BODY}", "--header_timeout=1",
                     "--max_header_bytes=8192", "--max_headers=50"])
        cls.port = cls.cluster.port

    def totals(self):
        return self.cluster.status()["totals"]

    def assert_refused(self, data: bytes, code: int, expect_worker: bool = False):
        """Sends `data`; expects a `code` answer with Connection: close, then EOF; and (unless
        expect_worker) no request reached a worker."""
        before = self.totals()
        c = self.raw(timeout=10)
        c.send(data)
        r = c.read_response()
        self.assertEqual(r.code, code, r)
        self.assertEqual(r.header("Connection"), "close", r)
        self.assertEqual(r.header("Content-Length"), str(len(r.body)), r)
        self.assertTrue(c.closed_by_peer(5), "the connection was not closed")
        after = self.totals()
        self.assertEqual(after["client_errors"], before["client_errors"] + 1)
        if not expect_worker:
            self.assertEqual(after["requests"], before["requests"], "a worker saw the request")
        return r

    def assert_still_serving(self):
        self.assertEqual(http_request(self.port, "/hello")[:3:2], (200, b"Hello, world!\n"))

    # ------------------------------------------------------------------ 400

    def test_malformed_requests_get_400(self):
        cases = {
            "garbage": b"GARBAGE\r\n\r\n",
            "no target": b"GET\r\n\r\n",
            "header without colon": b"GET /hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
            "space before colon": b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n",
            "control bytes": b"\x00\x01\x02 /hello HTTP/1.1\r\n\r\n",
            "bad header name": b"GET /hello HTTP/1.1\r\nHo(st: x\r\n\r\n",
            "bad content-length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
            "negative content-length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "bad chunk size": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"zz\r\nabc\r\n0\r\n\r\n"),
        }
        for name, data in cases.items():
            with self.subTest(name):
                # A broken chunk arrives after the headers were dispatched: the worker saw them.
                self.assert_refused(data, 400, expect_worker=name == "bad chunk size")
        self.assert_still_serving()

    def test_conflicting_content_length_and_transfer_encoding(self):
        self.assert_refused(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)
        self.assert_refused(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)

    def test_unsupported_transfer_encoding(self):
        self.assert_refused(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                            b"hello", 400)

    def test_duplicate_differing_content_length(self):
        self.assert_refused(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhello!", 400)
        self.assert_refused(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n"
                            b"hello!", 400)

    def test_expect_100_continue_with_too_large_body_gets_413_not_100(self):
        c = self.raw(timeout=10)
        c.send(request_bytes("POST", "/echo", [("Expect", "100-continue"),
                                              ("Content-Length", str(MAX_BODY + 1))]))
        r = c.read_response(skip_interim=False)   # a "100 Continue" first would fail here
        self.assertEqual(r.code, 413, r)
        self.assertTrue(c.closed_by_peer(5))

    def test_unknown_expectation_gets_417(self):
        self.assert_refused(request_bytes("POST", "/echo", [("Expect", "teapot"),
                                                           ("Content-Length", "5")],
                                          body=b"hello"), 417)

    # ------------------------------------------------------------------ 505

    def test_unsupported_http_versions_get_505(self):
        for version in ("HTTP/2.0", "HTTP/3.1"):
            with self.subTest(version):
                r = self.assert_refused(
                    f"GET /hello {version}\r\nHost: x\r\n\r\n".encode(), 505)
                self.assertIn(b"505", r.body)
        self.assert_still_serving()

    # ------------------------------------------------------------------ 431

    def test_headers_too_large_get_431(self):
        self.assert_refused(request_bytes("GET", "/hello", [("X-Big", "v" * 10000)]), 431)
        self.assert_refused(request_bytes("GET", "/hello", [(f"X-H{i}", "v") for i in range(60)]),
                            431)
        # Just under the limits is fine.
        c = self.raw()
        c.send(request_bytes("GET", "/hello", [("X-Big", "v" * 6000)]
                             + [(f"X-H{i}", "v") for i in range(40)]))
        self.assertEqual(c.read_response().code, 200)

    # ------------------------------------------------------------------ 413

    def test_body_over_max_body_bytes_gets_413(self):
        # Declared too large: refused at once, before any body byte is sent.
        self.assert_refused(request_bytes("POST", "/echo", [("Content-Length", str(MAX_BODY + 1))]),
                            413)
        # Chunked: refused once the limit is passed.
        data = os.urandom(MAX_BODY + 5000)
        r = self.assert_refused(
            request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")])
            + chunked([data[i:i + 30000] for i in range(0, len(data), 30000)]),
            413, expect_worker=True)
        self.assertIn(b"413", r.body)
        # Exactly the limit is accepted.
        data = os.urandom(MAX_BODY)
        status, _, body = http_request(self.port, "/echo", method="POST", body=data)
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith(b"%d %s" % (MAX_BODY, lb_harness.sha256(data).encode())))

    # ------------------------------------------------------------------ 408

    def test_slowloris_gets_408_and_is_closed(self):
        c = self.raw(timeout=10)
        t0 = time.monotonic()
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        i = 0
        # Trickle a header line every 0.2 s (each one is "progress") until the LB answers.
        while not c.readable_within(0.2):
            self.assertLess(time.monotonic() - t0, 5, "no 408 within 5 s")
            try:
                c.send(b"X-Slow-%d: y\r\n" % i)
            except OSError:
                break
            i += 1
        r = c.read_response()
        elapsed = time.monotonic() - t0
        self.assertEqual(r.code, 408, r)
        self.assertEqual(r.header("Connection"), "close")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)
        self.assertTrue(c.closed_by_peer(5))

    def test_silent_connection_with_partial_headers_gets_408(self):
        c = self.raw(timeout=10)
        c.send(b"GET /hel")
        t0 = time.monotonic()
        r = c.read_response()
        self.assertEqual(r.code, 408, r)
        self.assertLess(time.monotonic() - t0, 2.5)


class SocketTimeoutTest(harness.E2ETestCase):

    def test_idle_connection_closed_after_socket_timeout(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, lb_args=["-t", "1"])
        c = RawConn(cluster.port)
        self.addCleanup(c.close)
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().code, 200)
        t0 = time.monotonic()
        self.assertTrue(c.closed_by_peer(5), "the idle connection was not closed")
        self.assertGreaterEqual(time.monotonic() - t0, 0.8)
        self.assertLess(time.monotonic() - t0, 3)
        wait_for(lambda: cluster.status()["totals"]["connections_open"] == 0, 5)

    def test_active_connection_outlives_the_socket_timeout(self):
        # The client timer is armed lazily (it fires at a deadline that activity has since
        # moved, and is set again for the new one): requests every 0.3 s for 2.5 s on a
        # connection with -t 1 keep it open; idle, it is closed.
        cluster = lb_harness.start_cluster(self.sandbox, 1, lb_args=["-t", "1"])
        c = RawConn(cluster.port)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            c.send(request_bytes("GET", "/hello"))
            self.assertEqual(c.read_response().code, 200)
            self.assertFalse(c.readable_within(0.3), "the active connection was closed")
        self.assertTrue(c.closed_by_peer(5), "the idle connection was not closed")

    def test_header_timeout_after_a_request_is_not_the_socket_timeout(self):
        # After a response the keep-alive deadline (-t 30) is armed; a request head started
        # then has the earlier --header_timeout deadline, which must re-arm the timer.
        cluster = lb_harness.start_cluster(self.sandbox, 1,
                                           lb_args=["-t", "30", "--header_timeout=1"])
        c = RawConn(cluster.port, timeout=10)
        self.addCleanup(c.close)
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().code, 200)
        c.send(b"GET /hel")
        t0 = time.monotonic()
        r = c.read_response()
        self.assertEqual(r.code, 408, r)
        self.assertLess(time.monotonic() - t0, 8, "the 408 waited for the socket timeout")


class MaxConnectionsTest(harness.E2ETestCase):

    def test_connections_over_the_cap_wait(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=2, lb_args=["-m", "2"])
        a = RawConn(cluster.port)
        b = RawConn(cluster.port)
        for c in (a, b):
            self.addCleanup(c.close)
            c.send(request_bytes("GET", "/hello"))
            self.assertEqual(c.read_response().code, 200)
        # A third connection is accepted by the kernel but not served.
        third = RawConn(cluster.port)
        self.addCleanup(third.close)
        third.send(request_bytes("GET", "/hello"))
        self.assertFalse(third.readable_within(1.0), "the third connection was served")
        # Existing connections keep working meanwhile.
        for c in (a, b, a):
            c.send(request_bytes("GET", "/hello"))
            self.assertEqual(c.read_response().body, b"Hello, world!\n")
        self.assertFalse(third.readable_within(0.2))
        self.assertEqual(cluster.status()["totals"]["connections_open"], 2)
        # When one closes, the waiting connection is served.
        a.close()
        r = third.read_response()
        self.assertEqual((r.code, r.body), (200, b"Hello, world!\n"))
        b.send(request_bytes("GET", "/hello"))
        self.assertEqual(b.read_response().code, 200)


if __name__ == "__main__":
    unittest.main()
