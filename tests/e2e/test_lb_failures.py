"""resumelb end to end: failures around the load balancer: workers killed mid-request
(retry / 502), slow-reading clients (the LB buffers, the worker is free), an empty pool
(503 after --worker_wait_timeout, or success when a worker appears) and a stopped worker
(dropped by the keep-alive deadline, back after SIGCONT)."""

import json
import os
import signal
import time
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import Background, RawConn, http_request, request_bytes, worker_entry, worker_name


def busy_worker(cluster):
    """The name of the (only) worker with a request in flight, per the status document."""
    rows = [row for row in cluster.status()["workers"] if row[1] > 0]
    return rows[0][0] if len(rows) == 1 else None


class WorkerKilledTest(harness.E2ETestCase):

    def test_sigkill_during_slow_get_is_retried_elsewhere(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        t0 = time.monotonic()
        bg = Background(http_request, cluster.port, "/sleep?dur=1", timeout=30)
        victim = wait_for(lambda: busy_worker(cluster), 10, message="the request to be dispatched")
        cluster.worker_by_name(victim).kill()
        status, _, body = bg.result(30)
        self.assertEqual((status, body), (200, b"slept\n"))
        st = cluster.status()
        self.assertEqual(st["totals"]["retries"], 1, st)
        self.assertEqual(st["totals"]["502"], 0, st)
        self.assertIsNone(worker_entry(st, victim), st)
        cluster.lb.wait_for_log(rf"{victim} disconnected, retrying GET /sleep\?dur=1")
        # The survivor answers new requests.
        self.assertEqual(http_request(cluster.port, "/hello")[0], 200)
        self.assertLess(time.monotonic() - t0, 15)

    def test_sigkill_mid_response_truncates_visibly(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        c = RawConn(cluster.port)
        self.addCleanup(c.close)
        c.send(request_bytes("GET", "/slowstream?n=100&delay=0.02"))
        self.assertEqual(c.read_head()[1], 200)   # the response has started ...
        victim = wait_for(lambda: busy_worker(cluster) or [
            d["name"] for d in cluster.status()["worker_details"] if d["in_flight"]][0], 5)
        cluster.worker_by_name(victim).kill()     # ... and its worker dies
        # No retry once the status was relayed: the client sees a cut-off chunked body
        # (no final chunk) and a closed connection, never a clean end.
        with self.assertRaises(ConnectionError):
            while True:
                size = int(c._read_line(), 16)
                if size == 0:
                    break
                c._read_exact(size + 2)
        st = cluster.status()
        self.assertEqual((st["totals"]["retries"], st["totals"]["truncated"]), (0, 1), st)

    def post_and_kill(self, lb_args=()):
        cluster = lb_harness.start_cluster(self.sandbox, 1, lb_args=lb_args)
        bg = Background(http_request, cluster.port, "/sleep?dur=5", method="POST",
                        body=b"some form data", timeout=30)
        victim = wait_for(lambda: busy_worker(cluster), 10, message="the POST to be dispatched")
        cluster.worker_by_name(victim).kill()
        status, headers, body = bg.result(30)
        self.assertEqual(status, 502, body)
        self.assertEqual(headers["content-type"], "text/html; charset=UTF-8")
        self.assertEqual(headers["content-length"], str(len(body)))
        st = cluster.status()
        self.assertEqual((st["totals"]["502"], st["totals"]["retries"]), (1, 0), st)
        return body

    def test_sigkill_during_post_gives_502_with_default_message(self):
        body = self.post_and_kill()
        self.assertEqual(body, lb_harness.DEFAULT_DISCONNECT_MESSAGE)
        self.assertEqual(len(body), 159)

    def test_sigkill_during_post_gives_502_with_disconnect_message_file(self):
        page = "<html><body>Custom outage page \u2713</body></html>\n".encode()
        path = self.sandbox.write("outage.html", page)
        body = self.post_and_kill(["-e", path])
        self.assertEqual(body, page)


class ClientGoneTest(harness.E2ETestCase):

    def test_client_disconnect_mid_response_cancels_the_worker_request(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=1)
        name = worker_name(cluster.workers[0][1])
        c = RawConn(cluster.port)
        self.addCleanup(c.close)
        # 200 chunks 20 ms apart: 4 s of streaming if nobody stops it.
        c.send(request_bytes("GET", "/slowstream?n=200&delay=0.02"))
        self.assertEqual(c.read_head()[1], 200)
        c.close()
        t0 = time.monotonic()

        def released():
            st = cluster.status()
            return (st["backlog"] == 0 and lb_harness.worker_detail(st, name)["in_flight"] == 0)
        wait_for(released, 5, message="the LB to forget the request")
        # The worker (one thread) stopped streaming: it answers at once, and the app's
        # iterable was closed.
        status, _, body = http_request(cluster.port, "/closed", timeout=10)
        self.assertEqual(status, 200)
        self.assertIn("/slowstream", json.loads(body))
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_upload_cut_short(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=1)
        name = worker_name(cluster.workers[0][1])
        c = RawConn(cluster.port)
        c.send(request_bytes("POST", "/echo", [("Content-Length", "1000000")]) + b"x" * 5000)
        wait_for(lambda: lb_harness.worker_detail(cluster.status(), name)["in_flight"] == 1, 5,
                 message="the upload to be dispatched")
        c.close()
        wait_for(lambda: lb_harness.worker_detail(cluster.status(), name)["in_flight"] == 0, 5,
                 message="the LB to cancel the request")
        status, _, body = http_request(cluster.port, "/hello", timeout=5)
        self.assertEqual((status, body), (200, b"Hello, world!\n"))
        self.assertEqual(cluster.status()["backlog"], 0)

    def test_app_errors(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=1)
        # Before the response started: the worker's 500 is relayed.
        status, _, body = http_request(cluster.port, "/error")
        self.assertEqual((status, body), (500, b"A system error occurred"))
        # After the headers: the client must be able to tell the body is incomplete (no
        # final chunk; the connection is dropped).
        c = RawConn(cluster.port)
        self.addCleanup(c.close)
        c.send(request_bytes("GET", "/error-after-headers"))
        with self.assertRaises(ConnectionError):
            c.read_response()
        self.assertEqual(cluster.status()["totals"]["truncated"], 1)
        self.assertEqual(http_request(cluster.port, "/hello")[0], 200)


class SlowClientTest(harness.E2ETestCase):

    def test_slow_reading_client_does_not_hold_the_worker(self):
        size = 30000000
        bufdir = self.sandbox.mkdir("buffers")
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=1,
                                           lb_args=[f"--buffer_dir={bufdir}"])
        name = worker_name(cluster.workers[0][1])
        slow = RawConn(cluster.port, rcvbuf=8192)
        self.addCleanup(slow.close)
        slow.send(request_bytes("GET", f"/big?size={size}"))
        # While the slow client reads nothing, the single-threaded worker serves others.
        t0 = time.monotonic()
        status, _, body = http_request(cluster.port, "/hello", timeout=15)
        self.assertEqual((status, body), (200, b"Hello, world!\n"))
        self.assertLess(time.monotonic() - t0, 10)

        # The worker has sent everything: no backlog, nothing in flight, for that worker.
        def worker_done():
            st = cluster.status()
            detail = lb_harness.worker_detail(st, name)
            return (worker_entry(st, name)[1] == 0 and detail["in_flight"] == 0
                    and st["backlog"] == 0)
        wait_for(worker_done, 15, message="the worker to finish sending the response")
        # ... and the LB holds the rest in a (deleted) temp file in --buffer_dir.
        wait_for(lambda: any(t.startswith(bufdir) for t in cluster.lb.fd_targets()), 5,
                 message="a response buffer file in --buffer_dir")
        self.assertEqual(os.listdir(bufdir), [])  # unlinked while in use

        # Now the client reads all of it, intact.
        r = slow.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(len(r.body), size)
        self.assertEqual(lb_harness.sha256(r.body), lb_harness.big_sha256(size))
        wait_for(lambda: not any(t.startswith(bufdir) for t in cluster.lb.fd_targets()), 5,
                 message="the buffer file to be closed")


class EmptyPoolTest(harness.E2ETestCase):

    def test_no_worker_gives_503_after_worker_wait_timeout(self):
        dead = f"127.0.0.1:{harness.free_port()}"
        status_path = self.sandbox.path("status.sock")
        access = self.sandbox.path("access.log")
        lb, port = lb_harness.start_lb(self.sandbox, [], ["-s", status_path, "-l", access,
                                                          "--worker_wait_timeout=1"],
                                       worker_addrs=[dead])
        t0 = time.monotonic()
        status, headers, body = http_request(port, "/hello", timeout=20)
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 503, body)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertEqual(headers["content-type"], "text/html; charset=UTF-8")
        st = lb_harness.read_status(status_path)
        self.assertEqual(st["totals"]["503"], 1, st)
        self.assertEqual(st["workers"], [])
        # The LB's own answer is logged too (with no worker).
        line = wait_for(lambda: harness.read_text(access).strip(), 5)
        self.assertRegex(line, r'"GET /hello HTTP/1.1" 503 \d+ \d+\.\d+ - "[^"]*" "[^"]*" "[^"]*"$')

    def test_request_succeeds_when_a_worker_appears_within_the_wait(self):
        wport = harness.free_port()
        status_path = self.sandbox.path("status.sock")
        lb, port = lb_harness.start_lb(self.sandbox, [], ["-s", status_path,
                                                          "--worker_wait_timeout=20"],
                                       worker_addrs=[worker_name(wport)])
        t0 = time.monotonic()
        bg = Background(http_request, port, "/pid", timeout=30)
        wait_for(lambda: lb_harness.read_status(status_path)["totals"]["requests"] == 1, 10,
                 message="the request to arrive")
        self.assertFalse(bg.done())
        worker, _ = self.sandbox.start_worker(extra_args=[f"--address=127.0.0.1:{wport}"])
        status, _, body = bg.result(25)
        self.assertEqual(status, 200, body)
        self.assertEqual(lb_harness.pid_answer(body)[0], worker.pid)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(lb_harness.read_status(status_path)["totals"]["503"], 0)


class StoppedWorkerTest(harness.E2ETestCase):

    def test_sigstopped_worker_leaves_the_pool_and_rejoins_after_sigcont(self):
        cluster = lb_harness.start_cluster(
            self.sandbox, 2, lb_args=["--worker_timeout=2", "--worker_keepalive=0.5"])
        (stopped, sport), (other, oport) = cluster.workers
        sname = worker_name(sport)
        stopped.send_signal(signal.SIGSTOP)
        self.addCleanup(stopped.send_signal, signal.SIGCONT)
        t0 = time.monotonic()

        def gone():
            st = cluster.status()
            return worker_entry(st, sname) is None and not lb_harness.worker_detail(
                st, sname)["in_pool"]
        wait_for(gone, 10, message="the stopped worker to leave the pool")
        self.assertLess(time.monotonic() - t0, 6)
        self.assertIsNotNone(worker_entry(cluster.status(), worker_name(oport)))
        # Requests go to the other worker meanwhile.
        for _ in range(3):
            status, _, body = http_request(cluster.port, "/pid", timeout=10)
            self.assertEqual((status, lb_harness.pid_answer(body)[0]), (200, other.pid))

        stopped.send_signal(signal.SIGCONT)
        wait_for(lambda: worker_entry(cluster.status(), sname) is not None, 15,
                 message="the worker to rejoin the pool after SIGCONT")
        self.assertTrue(lb_harness.worker_detail(cluster.status(), sname)["in_pool"])


if __name__ == "__main__":
    unittest.main()
