"""resumelb end to end: failure containment (docs/operations.md, "Failures").

* A query of death -- a GET that kills every worker it reaches -- costs at most two
  workers: it is retried once, then answered 502 with one ERROR line naming it, and the
  third worker never sees it.
* A client that closes its connection while its request waits for a worker, or while the
  application runs, cancels the request: it leaves the queue (the application never sees
  it) or the worker is sent CANCEL; the access log records 499 with the time spent, and
  the connection is no longer counted.
"""

import re
import time
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import RawConn, request_bytes


def access_lines(path):
    return harness.read_text(path).splitlines()


class QueryOfDeathTest(harness.E2ETestCase):

    def test_a_crashing_get_costs_at_most_two_workers(self):
        sb = self.sandbox
        traces = [sb.path(f"trace{i}.log") for i in range(3)]
        workers = [sb.start_worker(app="plain_app:raw_application", extra_args=[f"--tracelog={t}"])
                   for t in traces]
        c = lb_harness.start_cluster(sb, workers=workers)
        started = time.monotonic()
        conn = RawConn(c.port, timeout=30)
        self.addCleanup(conn.close)
        conn.send(request_bytes("GET", "/crash"))
        self.assertEqual(conn.read_response().code, 502)
        self.assertLess(time.monotonic() - started, 20)
        wait_for(lambda: sum(1 for p, _ in workers if not p.alive()) == 2, 10,
                 message="two workers dead")
        survivors = [i for i, (p, _) in enumerate(workers) if p.alive()]
        self.assertEqual(len(survivors), 1)
        self.assertNotIn("/crash", harness.read_text(traces[survivors[0]]))
        self.assertEqual(len(c.lb.log_lines(r"^E.*suspected query of death: GET \S+ /crash")), 1)
        st = c.status()["totals"]
        self.assertEqual((st["retries"], st["502"], st["queries_of_death"]), (1, 1, 1), st)
        # The survivor serves everything else.
        conn.send(request_bytes("GET", "/hello"))
        self.assertEqual(conn.read_response().code, 200)


class ClientAbortTest(harness.E2ETestCase):

    def test_client_gone_while_waiting_for_a_worker(self):
        sb = self.sandbox
        trace = sb.path("trace.log")
        access = sb.path("access.log")
        wport = harness.free_port()
        status_path = sb.path("status.sock")
        lb, port = lb_harness.start_lb(sb, [], ["-s", status_path, "-l", access],
                                       wait_workers=False,
                                       worker_addrs=[lb_harness.worker_name(wport)])
        s = RawConn(port)
        s.send(request_bytes("GET", "/hello?abandoned=1"))
        wait_for(lambda: lb_harness.read_status(status_path)["totals"]["requests"] == 1, 10)
        s.close()
        wait_for(lambda: any(" 499 " in line for line in access_lines(access)), 10,
                 message="a 499 line in the access log")
        st = lb_harness.read_status(status_path)
        self.assertEqual((st["totals"]["client_aborts"], st["totals"]["connections_open"]),
                         (1, 0), st["totals"])
        # A worker that appears afterwards never gets the abandoned request.
        sb.start_worker(app="plain_app:raw_application",
                        extra_args=[f"--tracelog={trace}", f"--address=127.0.0.1:{wport}"])
        lb.wait_for_log(r"worker connected " + re.escape(lb_harness.worker_name(wport)))
        s2 = RawConn(port)
        self.addCleanup(s2.close)
        s2.send(request_bytes("GET", "/hello?second=1"))
        self.assertEqual(s2.read_response().code, 200)
        wait_for(lambda: "second=1" in harness.read_text(trace), 10)
        self.assertNotIn("abandoned", harness.read_text(trace))

    def test_client_gone_while_the_app_runs(self):
        sb = self.sandbox
        access = sb.path("access.log")
        c = lb_harness.start_cluster(sb, lb_args=["-l", access])
        wname = lb_harness.worker_name(c.workers[0][1])
        s = RawConn(c.port)
        s.send(request_bytes("GET", "/sleep?dur=8"))
        wait_for(lambda: lb_harness.worker_detail(c.status(), wname)["in_flight"] == 1, 10)
        time.sleep(0.3)  # some time spent, for the access log to show
        s.close()
        # The LB forgets the request at once (CANCEL to the worker), long before the 8 s.
        wait_for(lambda: lb_harness.worker_detail(c.status(), wname)["in_flight"] == 0, 5,
                 message="the request cancelled")
        wait_for(lambda: any(" 499 " in line for line in access_lines(access)), 5)
        line = [l for l in access_lines(access) if " 499 " in l][0]
        m = re.search(r'" 499 0 (?P<secs>[\d.]+) ', line)
        self.assertIsNotNone(m, line)
        self.assertGreaterEqual(float(m["secs"]), 0.2, line)
        st = c.status()
        self.assertEqual((st["totals"]["client_aborts"], st["totals"]["connections_open"],
                          st["backlog"]), (1, 0, 0), st)

    def test_half_close_is_kept_when_asked(self):
        """--cancel_on_client_close=false: EOF after a complete request is a half-close."""
        c = lb_harness.start_cluster(self.sandbox, lb_args=["--cancel_on_client_close=false"])
        s = RawConn(c.port)
        self.addCleanup(s.close)
        s.send(request_bytes("GET", "/sleep?dur=0.5"))
        s.shut_wr()
        r = s.read_response()
        self.assertEqual((r.code, r.body), (200, b"slept\n"))


if __name__ == "__main__":
    unittest.main()
