"""resumelb and zkresumelb end to end: the signals operators send (docs/operations.md,
"Signals").

SIGHUP reopens the access log (logrotate renames the file, then sends SIGHUP through
`systemctl reload`: the next lines go to a new file at the configured path) and re-reads
the disconnect page (-e); the LB keeps serving and loses no request. SIGUSR1 and SIGUSR2
are ignored. Only SIGTERM/SIGINT end the LB (gracefully) - and SIGKILL.
"""

import os
import re
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import lb_harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from lb_harness import Background, http_request  # noqa: E402
from zk_lb_harness import start_zklb, start_zkworker  # noqa: E402

# The request line of an access log line: "GET /pid?n=12 HTTP/1.1" 200
REQUEST_RE = re.compile(r'"(?P<method>\S+) (?P<path>\S+) HTTP/1\.\d" (?P<status>\d{3}) ')


def logged_paths(path):
    """The (path, status) of each line of the access log at `path` ([] when missing)."""
    if not os.path.exists(path):
        return []
    out = []
    for line in harness.read_text(path).splitlines():
        m = REQUEST_RE.search(line)
        assert m, f"unexpected access log line {line!r}"
        out.append((m.group("path"), m.group("status")))
    return out


class NumberedRequests:
    """GET /pid?n=I through the LB, I = 0, 1, ..., one after the other from a thread until
    stop(); records each status (None for a failure)."""

    def __init__(self, port):
        self.port = port
        self.results = []  # (n, status or error text)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        n = 0
        while not self._stop.is_set():
            try:
                status = http_request(self.port, f"/pid?n={n}", timeout=20)[0]
            except Exception as e:  # noqa: BLE001 - recorded as a failure
                status = repr(e)
            self.results.append((n, status))
            n += 1
            self._stop.wait(0.002)

    def wait_more(self, count):
        target = len(self.results) + count
        wait_for(lambda: len(self.results) >= target, 20,
                 message=f"{count} more requests (have {len(self.results)})")

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        return list(self.results)


class Lb:
    """An LB under test: its process, HTTP port, workers {name: Process} and status()."""

    def __init__(self, proc, port, workers, status):
        self.proc = proc
        self.port = port
        self.workers = workers
        self.status = status

    def busy(self, count):
        """The names of the workers with requests in flight, once they hold `count`."""
        rows = [row for row in self.status()["workers"] if row[1] > 0]
        return [row[0] for row in rows] if sum(row[1] for row in rows) == count else None


class SignalChecks:
    """The checks, for the LB the test case's start_lb_with() starts."""

    def start_lb_with(self, lb_args) -> Lb:
        """Starts the LB with `lb_args` and a status socket in front of two workers."""
        raise NotImplementedError

    def test_sighup_during_traffic_reopens_the_access_log_and_loses_no_request(self):
        path = self.sandbox.path("access.log")
        lb = self.start_lb_with(["-l", path])
        loop = NumberedRequests(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(30)
        # Slow requests in flight across the rotation: logged when they end, in the new file.
        slow = [Background(http_request, lb.port, f"/sleep?dur=1&s={i}", timeout=20)
                for i in range(2)]
        wait_for(lambda: lb.busy(2) or lb.busy(3), 10, message="the slow requests running")
        os.rename(path, path + ".1")  # what logrotate does
        mark = lb.proc.mark()
        lb.proc.send_signal(signal.SIGHUP)
        lb.proc.wait_for_log(r"received SIGHUP: reopening log files", since=mark)
        lb.proc.wait_for_log(r"SIGHUP: log files reopened", since=mark)
        loop.wait_more(30)
        for bg in slow:
            self.assertEqual(bg.result(20)[0], 200)
        results = loop.stop()
        self.assertEqual([r for r in results if r[1] != 200], [], "requests failed")
        self.assertTrue(lb.proc.alive())
        self.assertEqual(lb.proc.stop(), 0)

        old = logged_paths(path + ".1")
        new = logged_paths(path)
        self.assertGreaterEqual(len(old), 30)
        self.assertGreaterEqual(len(new), 30)
        # Every request once, in one file or the other; the old file's lines come first.
        numbered = [p for p, _ in old + new if p.startswith("/pid")]
        self.assertEqual(numbered, [f"/pid?n={n}" for n, _ in results])
        self.assertEqual(sorted(p for p, _ in new if p.startswith("/sleep")),
                         ["/sleep?dur=1&s=0", "/sleep?dur=1&s=1"])
        self.assertEqual({s for _, s in old + new}, {"200"})

    def test_sighup_rereads_the_disconnect_page(self):
        page = self.sandbox.write("outage.html", b"<html>first page</html>\n")
        lb = self.start_lb_with(["-e", page])

        def post_and_kill():
            """A POST (never retried) whose worker is killed: the LB answers 502."""
            bg = Background(http_request, lb.port, "/sleep?dur=10", method="POST", body=b"x",
                            timeout=30)
            victim = wait_for(lambda: lb.busy(1), 10, message="the POST running")[0]
            lb.workers[victim].kill()
            status, _, body = bg.result(30)
            self.assertEqual(status, 502, body)
            return body

        self.assertEqual(post_and_kill(), b"<html>first page</html>\n")
        with open(page, "wb") as f:
            f.write(b"<html>second page</html>\n")
        mark = lb.proc.mark()
        lb.proc.send_signal(signal.SIGHUP)
        lb.proc.wait_for_log(r"SIGHUP: log files reopened", since=mark)
        self.assertEqual(post_and_kill(), b"<html>second page</html>\n")
        # A page that cannot be read: the previous one stays, the LB goes on.
        os.remove(page)
        mark = lb.proc.mark()
        lb.proc.send_signal(signal.SIGHUP)
        lb.proc.wait_for_log(r"keeping the previous page", since=mark)
        self.assertTrue(lb.proc.alive())
        self.assertEqual(lb.proc.stop(), 0)

    def test_sigusr1_sigusr2_and_repeated_sighup_leave_the_lb_serving(self):
        lb = self.start_lb_with(["-LDEBUG"])
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGUSR1,
                    signal.SIGHUP):
            mark = lb.proc.mark()
            lb.proc.send_signal(sig)
            if sig == signal.SIGHUP:
                lb.proc.wait_for_log(r"SIGHUP: log files reopened", since=mark)
            else:
                lb.proc.wait_for_log(rf"ignoring signal {int(sig)}\b", since=mark)
            self.assertEqual(http_request(lb.port, "/hello")[0], 200)
            self.assertTrue(lb.proc.alive())
        # Still registered for a graceful stop.
        self.assertEqual(lb.proc.stop(), 0)


class ResumelbSignalsTest(SignalChecks, harness.E2ETestCase):

    def start_lb_with(self, lb_args):
        workers = [self.sandbox.start_worker() for _ in range(2)]
        status = self.sandbox.path(f"status-{len(self.sandbox.processes)}.sock")
        proc, port = lb_harness.start_lb(self.sandbox, [p for _, p in workers],
                                         ["-s", status, *lb_args])
        wait_for(lambda: os.path.exists(status), 10, message="the status socket")
        return Lb(proc, port, {lb_harness.worker_name(p): w for w, p in workers},
                  lambda: lb_harness.read_status(status))


class ZkResumelbSignalsTest(SignalChecks, zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def start_lb_with(self, lb_args):
        hosts = self.zk_server.connection_string
        root = f"/sig{len(self.sandbox.processes)}"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, hosts, root, extra_args=lb_args)
        workers = [start_zkworker(self.sandbox, hosts, root + "/workers") for _ in range(2)]
        lb.wait_pool([w.name for w in workers])
        return Lb(lb.proc, lb.port, {w.name: w.proc for w in workers}, lb.status)


if __name__ == "__main__":
    unittest.main()
