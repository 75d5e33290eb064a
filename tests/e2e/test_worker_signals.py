"""zkworker end to end: the signals operators send (docs/operations.md, "Signals").

SIGHUP reopens the tracelog (logrotate renames the file, then sends SIGHUP: the next
records go to a new file at the configured path) and the worker keeps serving; SIGUSR1 and
SIGUSR2 are ignored. Only SIGTERM/SIGINT end the worker (gracefully) - and SIGKILL.
"""

import os
import signal
import unittest

import harness
from harness import request
from test_worker_tracelog import parse


class WorkerSignalsTest(harness.E2ETestCase):

    def test_sighup_reopens_the_tracelog_and_loses_no_request(self):
        path = self.sandbox.path("trace.log")
        # raw_application: the validator forbids the tracelog object in the environ.
        worker, port = self.start_worker(app="plain_app:raw_application", threads=2,
                                         extra_args=[f"--tracelog={path}"])
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/hello"))
        # Requests in flight while the file is rotated.
        env = harness.environ("/sleep", query="dur=1")
        for rno in (2, 3):
            conn.send_request(rno, "slow", env)
        harness.wait_for(lambda: [r for r in parse(harness.read_text(path)) if r[0] == "C"
                                  and r[1].endswith((".2", ".3"))][1:], 10,
                         message="both slow requests running")
        os.rename(path, path + ".1")  # what logrotate does
        mark = worker.mark()
        worker.send_signal(signal.SIGHUP)
        worker.wait_for_log(r"received SIGHUP: reopening log files", since=mark)
        harness.wait_for(lambda: os.path.exists(path), 10, message="a new tracelog")
        for rno in (2, 3):
            status, _, body, outcome = conn.read_response(rno, timeout=10)
            self.assertEqual((status[:3], body, outcome), ("200", b"slept\n", "complete"))
        self.assertComplete(request(conn, 4, "/hello"))
        self.assertTrue(worker.alive())
        self.assertEqual(worker.stop(), 0)

        old = parse(harness.read_text(path + ".1"))
        new = parse(harness.read_text(path))
        ids = lambda records, code: [r[1] for r in records if r[0] == code]  # noqa: E731
        # Before the rename: start, request 1, the slow ones begun. After: the slow ones
        # finished (their E records), request 4 and the stop.
        self.assertEqual(old[0][:2], ("S", "0"))
        self.assertEqual(ids(old, "B"), ["0.1", "0.2", "0.3"])
        self.assertEqual(sorted(ids(new, "E")), ["0.2", "0.3", "0.4"])
        self.assertEqual(ids(new, "B"), ["0.4"])
        self.assertEqual(new[-1][:2], ("X", "0"))
        # Every record once, in one file or the other.
        self.assertEqual(sorted(ids(old + new, "E")), ["0.1", "0.2", "0.3", "0.4"])

    def test_sighup_repeated_and_without_tracelog(self):
        worker, port = self.start_worker()
        conn = self.connect(port)
        for i in range(3):
            mark = worker.mark()
            worker.send_signal(signal.SIGHUP)
            worker.wait_for_log(r"received SIGHUP", since=mark)
            self.assertComplete(request(conn, i + 1, "/hello"))
        self.assertEqual(worker.stop(), 0)

    def test_sigusr1_and_sigusr2_are_ignored(self):
        worker, port = self.start_worker(extra_args=["--log_level=DEBUG"])
        conn = self.connect(port)
        for rno, sig in ((1, signal.SIGUSR1), (2, signal.SIGUSR2), (3, signal.SIGUSR1)):
            mark = worker.mark()
            worker.send_signal(sig)
            worker.wait_for_log(rf"ignoring signal {int(sig)}\b", since=mark)
            self.assertComplete(request(conn, rno, "/hello"))
            self.assertTrue(worker.alive())
        # Still registered for a graceful stop.
        self.assertEqual(worker.stop(), 0)


if __name__ == "__main__":
    unittest.main()
