"""zkworker end to end: CANCEL and LBs that disconnect mid-request.

After CANCEL(n) the worker sends nothing more for n (frames already queued may still
arrive), the app's close() is called, and nothing leaks: no fds, no threads, no temp files.
"""

import json
import os
import unittest

import harness
from harness import request


class CancelTest(harness.E2ETestCase):

    def setUp(self):
        self.worker, self.port = self.start_worker(threads=2)
        self.conn = self.connect(self.port)
        self.rno = 100

    def next_request(self, url, conn=None):
        self.rno += 1
        return request(conn or self.conn, self.rno, url)

    def closed(self, conn=None):
        r = self.next_request("/closed", conn)
        self.assertComplete(r)
        return json.loads(r.body)

    def assert_nothing_more_for(self, rno):
        """Everything queued before this point has arrived: no frame for rno among it."""
        frames = harness.keepalive_roundtrip(self.conn)
        self.assertEqual([f for f in frames if f[0] == rno], [])

    def test_cancel_before_any_body(self):
        env = harness.environ("/echo", method="POST", body=b"x" * 100)
        self.conn.send_request(1, "/echo", env, end=False)
        self.conn.send_cancel(1)
        # The rest of the body and the end arriving late are ignored.
        self.conn.send_body(1, b"x" * 100)
        self.conn.send_end(1)
        self.assertComplete(self.next_request("/hello"))
        self.assert_nothing_more_for(1)

    def test_cancel_mid_body(self):
        body = os.urandom(3 << 20)  # spooled to a temp file
        env = harness.environ("/echo", method="POST", body=body)
        self.conn.send_request(1, "/echo", env, body=body[:2 << 20], end=False)
        self.conn.send_cancel(1)
        self.conn.send_body(1, body[2 << 20:2 << 20 | 1000])
        self.conn.send_end(1)
        self.assertComplete(self.next_request("/hello"))
        self.assert_nothing_more_for(1)
        # Nothing of the cancelled request stays open in the worker.
        self.assertEqual([t for t in self.worker.fd_targets() if "rlbwi-" in t], [])

    def test_cancel_while_the_app_runs(self):
        # The app is not interrupted, but its output is discarded.
        trace = self.sandbox.path("trace")
        self.worker, self.port = self.start_worker(
            threads=2, extra_args=[f"--tracelog={trace}", "--tracelog_key=rlb.trace"])
        self.conn = self.connect(self.port)
        self.conn.send_request(1, "/sleep", harness.environ("/sleep", query="dur=0.3"))
        harness.wait_for(lambda: "\nC 0.1 " in "\n" + harness.read_text(trace),
                         message="the app call to start")
        self.conn.send_cancel(1)
        harness.wait_for(lambda: "\nE 0.1 " in "\n" + harness.read_text(trace),
                         message="the app call to end")
        self.assert_nothing_more_for(1)
        self.assertComplete(self.next_request("/hello"))
        self.assert_nothing_more_for(1)

    def test_cancel_right_after_the_request(self):
        # Cancelled before an app thread took it: no output either way.
        self.conn.send_request(1, "/sleep", harness.environ("/sleep", query="dur=0.2"))
        self.conn.send_cancel(1)
        self.conn.send_request(2, "/sleep", harness.environ("/sleep", query="dur=0.3"))
        self.assertEqual(self.conn.read_response(2)[3], "complete")
        self.assertComplete(self.next_request("/hello"))
        self.assert_nothing_more_for(1)

    def test_cancel_during_a_streamed_response(self):
        n = 400
        self.conn.send_request(1, "/slowstream",
                               harness.environ("/slowstream", query=f"n={n}&delay=0.01"))
        # Read the status and a couple of chunks, then cancel.
        got = []
        harness.drain_until(self.conn, lambda f: f[0] == 1 and f[1] == "RESPONSE_BODY" and
                            got.append(f) is None and len(got) >= 2)
        self.conn.send_cancel(1)
        # The app's close() is called soon (at its next yield).
        harness.wait_for(lambda: "/slowstream" in self.closed(), 10,
                         message="close() of the cancelled response")
        # Anything queued for 1 arrived before that answer; nothing comes after it.
        late = [f for f in self.conn.pending if f[0] == 1]
        self.conn.pending.clear()
        self.assertNotIn("RESPONSE_END", [f[1] for f in late])
        self.assertLess(len(got) + len(late), n)
        self.assert_nothing_more_for(1)
        self.assertComplete(self.next_request("/hello"))
        self.assert_nothing_more_for(1)

    def test_cancel_of_finished_and_unknown_requests_is_ignored(self):
        self.assertComplete(request(self.conn, 1, "/hello"))
        self.conn.send_cancel(1)
        self.conn.send_cancel(12345)
        self.assertComplete(request(self.conn, 1, "/hello"))
        self.assertEqual(harness.keepalive_roundtrip(self.conn), [])

    def test_disconnect_mid_response_calls_close(self):
        lb = self.connect(self.port)
        lb.send_request(1, "/slowstream", harness.environ("/slowstream",
                                                          query="n=1000&delay=0.01"))
        harness.drain_until(lb, lambda f: f[0] == 1 and f[1] == "RESPONSE_BODY")
        lb.close()
        harness.wait_for(lambda: "/slowstream" in self.closed(), 10,
                         message="close() after the LB went away")
        self.worker.wait_for_log(r"^I.*load balancer disconnected 127\.0\.0\.1:\d+\(1\): "
                                 r"closed by the load balancer")


class DisconnectLeakTest(harness.E2ETestCase):
    """A burst of 50 requests whose LB disconnects mid-way leaves no fd, thread or temp
    file behind, and every started response is closed."""

    def test_burst_of_aborted_requests(self):
        tmpdir = self.sandbox.mkdir("tmp")
        worker, port = self.start_worker(threads=2, env={"TMPDIR": tmpdir})
        ctl = self.connect(port)
        rnos = iter(range(1, 1000))

        def closed():
            r = request(ctl, next(rnos), "/closed")
            return json.loads(r.body)

        # Warm up every kind of request once, then take the baseline.
        self.assertComplete(request(ctl, next(rnos), "/slowstream?n=2&delay=0"))
        self.assertComplete(request(ctl, next(rnos), "/echo", method="POST",
                                    body=b"y" * (2 << 20)))
        harness.wait_for(lambda: len(closed()) == 1)
        fds, threads = worker.fd_count(), worker.thread_count()
        big = b"z" * (3 << 20)
        started_streams = 0
        for i in range(50):
            lb = self.connect(port)
            kind = i % 3
            if kind == 0:
                # Mid-response: the app has started streaming.
                lb.send_request(1, "/slowstream",
                                harness.environ("/slowstream", query="n=500&delay=0.005"))
                harness.drain_until(lb, lambda f: f[0] == 1 and f[1] == "RESPONSE_BODY")
                started_streams += 1
            elif kind == 1:
                # Mid-body, with the body already spooled to a temp file.
                env = harness.environ("/echo", method="POST", body=big)
                lb.send_request(1, "/echo", env, body=big[:(2 << 20)], end=False)
                harness.wait_for(lambda: any("rlbwi-" in t for t in worker.fd_targets()),
                                 message="the body to be spooled")
            else:
                # While the app is busy with the whole request.
                lb.send_request(1, "/sleep", harness.environ("/sleep", query="dur=0.02"))
            lb.close()

        def settled():
            return (worker.fd_count() <= fds and worker.thread_count() == threads and
                    closed().count("/slowstream") == started_streams + 1)
        harness.wait_for(settled, 20, message=lambda: (
            f"fds {worker.fd_count()} (baseline {fds}: {worker.fd_targets()}), threads "
            f"{worker.thread_count()} (baseline {threads}), closed "
            f"{closed().count('/slowstream')} of {started_streams + 1}"))
        self.assertEqual(os.listdir(tmpdir), [])
        self.assertEqual([t for t in worker.fd_targets() if "rlbwi-" in t], [])
        self.assertTrue(worker.alive())
        self.assertComplete(request(ctl, next(rnos), "/hello"), 200, b"Hello, world!\n")
        self.assertEqual(worker.stop(), 0)


if __name__ == "__main__":
    unittest.main()
