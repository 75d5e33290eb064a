"""resumelb end to end: worker names resolve off the event loop (docs/operations.md,
"Failures").

The LB runs in a mount namespace of its own whose /etc/resolv.conf names a DNS server that
never answers and whose /etc/hosts the test controls. A worker registered by a name that
resolves nowhere must not slow the requests served by the other workers, and the LB must
connect to it within the reconnect back-off of the name becoming resolvable. (Needs root for
the namespace and the port-53 socket; skipped otherwise.)
"""

import os
import re
import shutil
import socket
import time
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import RawConn, request_bytes


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "needs root and unshare(1) for a private /etc/resolv.conf")
class SlowResolverTest(harness.E2ETestCase):

    def test_an_unresolvable_name_does_not_stall_the_loop(self):
        sb = self.sandbox
        # A DNS server that receives and never answers.
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind(("127.0.0.77", 53))
        self.addCleanup(dns.close)
        resolv = sb.write("resolv.conf", "nameserver 127.0.0.77\noptions timeout:5 attempts:2\n")
        hosts = sb.write("hosts", "127.0.0.1 localhost\n")
        good, good_port = sb.start_worker()
        slow, slow_port = sb.start_worker()
        status_path = sb.path("status.sock")
        name = f"slow-worker.example:{slow_port}"
        script = (f"mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf"
                  f" && exec {lb_harness.lb_binary()} -LINFO -a 127.0.0.1:0 -s {status_path}"
                  f" --connect_timeout=1 127.0.0.1:{good_port} {name}")
        lb = sb.start(["unshare", "--mount", "--", "sh", "-c", script], name="resumelb")
        m = lb.wait_for_log(lb_harness.LB_LISTENING_RE)
        port = int(m.group("port"))
        lb.wait_for_log(rf"worker connected 127\.0\.0\.1:{good_port}\b")
        lb.wait_for_log(r"worker slow-worker\.example:\d+ unreachable: cannot resolve")
        # Requests keep flowing at full speed while lookups hang.
        conn = RawConn(port)
        self.addCleanup(conn.close)
        latencies = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            t = time.monotonic()
            conn.send(request_bytes("GET", "/hello"))
            self.assertEqual(conn.read_response().code, 200)
            latencies.append(time.monotonic() - t)
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        self.assertLess(p99, 0.1, f"p99 {p99:.3f} s over {len(latencies)} requests")
        st = lb_harness.read_status(status_path)
        detail = lb_harness.worker_detail(st, name)
        self.assertFalse(detail["connected"])
        self.assertIn("cannot resolve", detail["last_error"])
        # The name becomes resolvable (same inode: the bind mount sees it).
        became = time.monotonic()
        with open(hosts, "a") as f:
            f.write("127.0.0.1 slow-worker.example\n")
        lb.wait_for_log(r"worker connected slow-worker\.example:\d+", timeout=10)
        # Within the reconnect back-off (2 s) plus one connect timeout, with room to spare.
        self.assertLess(time.monotonic() - became, 6)
        wait_for(lambda: lb_harness.worker_detail(lb_harness.read_status(status_path),
                                                  name)["last_error"] is None, 5)


class NameResolutionTest(harness.E2ETestCase):

    def test_a_worker_given_by_host_name(self):
        """A name (not an IP literal) goes through the asynchronous resolver and connects."""
        sb = self.sandbox
        w, wport = sb.start_worker()
        lb, port = lb_harness.start_lb(sb, [], wait_workers=False,
                                       worker_addrs=[f"localhost:{wport}"])
        lb.wait_for_log(rf"worker connected localhost:{wport}\b")
        conn = RawConn(port)
        self.addCleanup(conn.close)
        conn.send(request_bytes("GET", "/hello"))
        self.assertEqual(conn.read_response().code, 200)

    def test_an_unknown_name_is_reported_once_and_retried(self):
        sb = self.sandbox
        status_path = sb.path("status.sock")
        lb, port = lb_harness.start_lb(sb, [], ["-s", status_path], wait_workers=False,
                                       worker_addrs=["no-such-host.invalid:1"])
        lb.wait_for_log(r"^W.*worker no-such-host\.invalid:1 unreachable: cannot resolve")
        detail = lb_harness.worker_detail(lb_harness.read_status(status_path),
                                          "no-such-host.invalid:1")
        self.assertIn("cannot resolve", detail["last_error"])
        self.assertIsInstance(detail["last_error_time"], float)
        # Retried every <= 2 s, but the same reason is logged once a minute, not each time.
        time.sleep(3)
        self.assertEqual(len(lb.log_lines(r"unreachable: cannot resolve")), 1)


if __name__ == "__main__":
    unittest.main()
