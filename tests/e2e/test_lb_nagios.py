"""rlb-nagios end to end, against a live resumelb: OK, WARNING, CRITICAL and UNKNOWN, with
perfdata (-m), and the original plugin's faults fixed (an age-only check, no workers)."""

import re
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import Background, http_request


def nagios(*args):
    return harness.run_command([harness.binary("rlb-nagios"), *args])


class NagiosTest(harness.E2ETestCase):

    def test_ok_with_perfdata(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        r = nagios("-b3", "-B9", "-x9", "-X19", "-a1", "-A2", "-w1", "-W0", "-m",
                   cluster.status_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "OK 2 0 0 0|workers=2 mean_backlog=0 max_backlog=0 "
                                   "max_age=0.0s\n")

    def test_warning_and_critical_on_workers(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        r = nagios("-w2", "-W1", cluster.status_path)
        self.assertEqual((r.returncode, r.stdout), (1, "too few workers (2)\n"))
        r = nagios("-w8", "-W3", "-m", cluster.status_path)
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stdout, r"^too few workers \(2\)\|workers=2 mean_backlog=\S+ "
                                   r"max_backlog=0 max_age=0\.0s\n$")

    def test_backlog_and_age_of_requests_in_flight(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=4)
        slow = [Background(http_request, cluster.port, "/sleep?dur=3") for _ in range(3)]
        wait_for(lambda: cluster.status()["backlog"] == 3, message="3 requests in flight")
        # An age-only check (the original refused it) warns once the oldest is 1 s old...
        wait_for(lambda: nagios("-a1", cluster.status_path).returncode == 1,
                 message="age warning")
        r = nagios("-a1", "-A30", cluster.status_path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"^max age too high \(\d+\.\d\)\n$")
        # ...and the backlog of the worker is critical past -X.
        r = nagios("-x2", "-X3", cluster.status_path)
        self.assertEqual((r.returncode, r.stdout), (2, "max backlog high (3)\n"))
        r = nagios("-x2", "-X9", "-m", cluster.status_path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"^max backlog high \(3\)\|workers=1 .*max_backlog=3 ")
        for b in slow:
            self.assertEqual(b.result()[0], 200)
        r = nagios("-x2", "-X3", cluster.status_path)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_no_workers_is_checked_not_a_crash(self):
        lb, _ = lb_harness.start_lb(self.sandbox, [], ["-s", self.sandbox.path("s.sock")],
                                    worker_addrs=[f"127.0.0.1:{harness.free_port()}"])
        r = nagios("-w1", "-W0", "-m", self.sandbox.path("s.sock"))
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertEqual(r.stdout, "too few workers (0)|workers=0 mean_backlog=0 "
                                   "max_backlog=0 max_age=0.0s\n")

    def test_unknown(self):
        r = nagios("-w1", self.sandbox.path("missing.sock"))
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stdout.startswith("UNKNOWN: cannot read the status of "), r.stdout)
        cluster = lb_harness.start_cluster(self.sandbox, 1)
        r = nagios(cluster.status_path)
        self.assertEqual((r.returncode, r.stdout),
                         (3, "UNKNOWN: You need to request metrics and/or alert settings\n"))
        r = nagios("-q", "1", cluster.status_path)
        self.assertEqual(r.returncode, 3)

    def test_help(self):
        r = nagios("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("-w, --minimum-worker-warn=N", r.stdout)
        self.assertIn("3 UNKNOWN", r.stdout)


if __name__ == "__main__":
    unittest.main()
