"""zkworker end to end: start-up from a Paste Deploy ini, keep-alives, connection handling
and the SIGTERM drain."""

import itertools
import json
import os
import signal
import time
import unittest

import harness
from harness import request


class DrainTest(harness.E2ETestCase):

    def setUp(self):
        self.rnos = itertools.count(2)

    def test_sigterm_drains(self):
        path = self.sandbox.path("resume.json")
        worker, port = self.start_worker(threads=2, extra_args=[f"--resume_file={path}"])
        a = self.connect(port)
        idle = self.connect(port)
        a.send_request(1, "slow", harness.environ("/sleep", query="dur=1.0"))
        # Wait until the slow request is really running in the app.
        harness.wait_for(lambda: request(a, next(self.rnos), "/maxactive").body == b"1\n",
                         message="the slow request to start")
        self.assertFalse(os.path.exists(path))
        worker.send_signal(signal.SIGTERM)
        # Both LBs are told to go away, and new connections are refused.
        for conn in (a, idle):
            harness.drain_until(conn, lambda f: f[1] == "GOAWAY", timeout=5)
        harness.wait_for(lambda: harness.port_refuses(port), 5,
                         message="new connections to be refused")
        self.assertTrue(worker.alive())
        # The request in flight completes normally.
        status, _, body, outcome = a.read_response(1, timeout=10)
        self.assertEqual((status, body, outcome), ("200 OK", b"slept\n", "complete"))
        self.assertEqual(worker.wait(10), 0)
        # Then the worker closed the connections and saved its résumé.
        for conn in (a, idle):
            with self.assertRaises(ConnectionError):
                while True:
                    conn.read_frame(timeout=5)
        with open(path) as f:
            saved = json.load(f)
        self.assertEqual(sorted(saved), ["/maxactive", "slow"])
        self.assertLess(saved["slow"], 1.0)
        worker.wait_for_log(r"exiting")

    def test_sigterm_when_idle(self):
        worker, port = self.start_worker()
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/hello"))
        self.assertEqual(worker.stop(signal.SIGTERM, timeout=10), 0)
        harness.drain_until(conn, lambda f: f[1] == "GOAWAY", timeout=5)
        with self.assertRaises(ConnectionError):
            conn.read_frame(timeout=5)

    def test_sigint_also_drains(self):
        worker, port = self.start_worker()
        self.connect(port)
        self.assertEqual(worker.stop(signal.SIGINT, timeout=10), 0)


class ConnectionTest(harness.E2ETestCase):

    def test_keepalive_is_answered(self):
        worker, port = self.start_worker()
        conn = self.connect(port)
        for _ in range(3):
            self.assertEqual(harness.keepalive_roundtrip(conn), [])

    def test_keepalive_is_answered_while_the_app_is_busy(self):
        # The answer comes from the event loop, not from the (only, busy) app thread.
        trace = self.sandbox.path("trace")
        worker, port = self.start_worker(threads=1, extra_args=[f"--tracelog={trace}",
                                                                "--tracelog_key=rlb.trace"])
        conn = self.connect(port)
        conn.send_request(1, "slow", harness.environ("/sleep", query="dur=1.5"))
        harness.wait_for(lambda: "\nC 0.1 " in "\n" + harness.read_text(trace),
                         message="the app call to start")
        t0 = time.monotonic()
        before = harness.keepalive_roundtrip(conn, timeout=1.0)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(before, [])
        self.assertEqual(conn.read_response(1)[3], "complete")

    def test_several_lbs_and_connection_ids(self):
        path = self.sandbox.path("trace")
        worker, port = self.start_worker(threads=2, extra_args=[f"--tracelog={path}",
                                                                "--tracelog_key=rlb.trace"])
        conns = [self.connect(port) for _ in range(3)]
        for i, conn in enumerate(conns):
            self.assertComplete(request(conn, 5, "/hello"))
        worker.wait_for_log(r"load balancer connected 127\.0\.0\.1:\d+\(2\)")
        # Ids are reused after a disconnect: the smallest free one.
        conns[1].close()
        worker.wait_for_log(r"load balancer disconnected 127\.0\.0\.1:\d+\(1\)")
        again = self.connect(port)
        self.assertComplete(request(again, 9, "/hello"))
        with open(path) as f:
            ids = [line.split()[1] for line in f if line.startswith("B ")]
        self.assertEqual(ids, ["0.5", "1.5", "2.5", "1.9"])

    def test_request_numbers_may_be_reused_once_finished(self):
        worker, port = self.start_worker()
        conn = self.connect(port)
        for _ in range(3):
            self.assertComplete(request(conn, 1, "/hello"))
        self.assertComplete(request(conn, 0xFFFFFFFF, "/hello"))

    def test_request_number_is_free_once_the_response_ended(self):
        # RESPONSE_END frees the number even while the app's close() still runs: the
        # worker must accept a REQUEST reusing it (a race CI once hit with /hello).
        worker, port = self.start_worker(threads=2)
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/held-close"))
        self.assertComplete(request(conn, 1, "/release-close", timeout=10), body=b"released\n")


class PasteDeployTest(harness.E2ETestCase):
    """`zkworker CONFIG.ini`: [app:main] through PasteDeploy, [server:main] options."""

    def write_ini(self, app_section, server_extra="", name="app.ini"):
        text = (f"[DEFAULT]\ngreeting = hi\n\n[app:main]\n{app_section}\n\n"
                f"[server:main]\nuse = egg:zc.resumelb\naddress = 127.0.0.1:0\n"
                f"pythonpath = {harness.APPS_DIR}\n{server_extra}\n")
        return self.sandbox.write(name, text)

    def check_app(self, port, history):
        conn = self.connect(port)
        r = request(conn, 1, "/config")
        self.assertComplete(r)
        conf = json.loads(r.body)
        self.assertEqual(conf["local"], {"color": "blue"})
        self.assertIn("__file__", conf["global"])
        self.assertComplete(request(conn, 2, "/hello"), 200, b"Hello, world!\n")
        for rno in range(3, history + 1):
            self.assertComplete(request(conn, rno, "/hello"))
        # history requests in all: exactly then the résumé is sent.
        (_, _, resume), _ = harness.drain_until(conn, lambda f: f[1] == "RESUME", timeout=5)
        self.assertEqual(sorted(resume), ["/config", "/hello"])

    def test_call_factory(self):
        ini = self.write_ini("use = call:plain_app:make_app\ncolor = blue",
                             "history = 3\nthreads = 2")
        worker, port = self.start_worker(config=ini, pythonpath=None)
        self.assertIn("2 threads", worker.output())
        self.check_app(port, 3)

    def test_egg_less_app_factory(self):
        ini = self.write_ini("paste.app_factory = plain_app:make_app\ncolor = blue",
                             "history = 4")
        worker, port = self.start_worker(config=ini, pythonpath=None)
        self.check_app(port, 4)

    def test_checked_in_example(self):
        ini = os.path.join(harness.APPS_DIR, "paste_test.ini")
        worker, port = self.start_worker(config=ini, pythonpath=None)
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/config"))
        self.assertComplete(request(conn, 2, "/hello"))
        (_, _, resume), _ = harness.drain_until(conn, lambda f: f[1] == "RESUME", timeout=5)
        self.assertEqual(sorted(resume), ["/config", "/hello"])

    def test_command_line_overrides_the_file(self):
        ini = self.write_ini("use = call:plain_app:make_app\ncolor = blue", "history = 50")
        worker, port = self.start_worker(config=ini, pythonpath=None,
                                         extra_args=["--history=2"])
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/hello"))
        self.assertComplete(request(conn, 2, "/hello"))
        (_, _, resume), _ = harness.drain_until(conn, lambda f: f[1] == "RESUME", timeout=5)
        self.assertEqual(sorted(resume), ["/hello"])

    def test_here_interpolation_and_resume_file(self):
        ini = self.write_ini("use = call:plain_app:make_app\ncolor = blue",
                             "history = 1\nresume_file = %(here)s/state.json")
        worker, port = self.start_worker(config=ini, pythonpath=None)
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/hello"))
        path = self.sandbox.path("state.json")
        harness.wait_for(lambda: os.path.exists(path), 5, message=path)
        with open(path) as f:
            self.assertEqual(sorted(json.load(f)), ["/hello"])


if __name__ == "__main__":
    unittest.main()
