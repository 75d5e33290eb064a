"""zkworker end to end: the worker's admin listener (--admin_address, issue 14) and its
/metrics page, scraped with a real HTTP client and checked by promtool.

The worker runs behind resumelb; the test counts what it sent and checks that the series
move by exactly that: requests by status class, the application-time histogram, busy
threads, résumé classes, load balancer connections. Requests are counted by the
application thread after the response was queued, so a scrape right after the last
response may be a request behind: the tests poll (with a deadline) for the expected value.
With --processes=N, process i serves its own admin listener on ADMIN_PORT+i, which its
replacement (a rolling reload) takes over.
"""

import os
import signal
import socket
import time
import unittest

import harness
import lb_harness
from harness import request, wait_for
from lb_harness import http_request
from metrics_harness import ADMIN_RE, admin_get, assert_promtool_clean, metric, parse_metrics
from supervisor_harness import free_port_run, start_master


def scrape(port):
    status, headers, body = admin_get(port, "/metrics")
    assert status == 200, (status, body)
    return parse_metrics(body.decode())


def total_requests(samples):
    return sum(v for (name, _), v in samples.items() if name == "zkworker_requests_total")


def wait_metrics(port, predicate, message):
    """The first scrape of `port` for which predicate(samples) holds."""
    return wait_for(lambda: (lambda s: s if predicate(s) else None)(scrape(port)),
                    message=message)


class WorkerMetricsTest(harness.E2ETestCase):

    def start(self, threads=2, extra_args=()):
        """A worker with an admin listener on a free port, behind resumelb:
        (cluster, admin port)."""
        proc, port = self.start_worker(threads=threads,
                                       extra_args=["--admin_address=127.0.0.1:0", *extra_args])
        admin = int(proc.wait_for_log(ADMIN_RE).group("port"))
        cluster = lb_harness.start_cluster(self.sandbox, workers=[(proc, port)])
        return cluster, admin

    def test_metrics_pass_promtool_and_count_what_was_sent(self):
        t0 = time.time()
        cluster, admin = self.start(threads=2)
        sent = {"2xx": 0, "4xx": 0, "5xx": 0}
        for i in range(6):
            status, _, _ = http_request(cluster.port, "/hello",
                                        headers={"Host": f"site{i % 2}.example"})
            self.assertEqual(status, 200)
            sent["2xx"] += 1
        status, _, _ = http_request(cluster.port, "/no-such-page",
                                    headers={"Host": "site0.example"})
        self.assertEqual(status, 404)
        sent["4xx"] += 1
        status, _, _ = http_request(cluster.port, "/error", headers={"Host": "site1.example"})
        self.assertEqual(status, 500)
        sent["5xx"] += 1
        n = sum(sent.values())
        wait_metrics(admin, lambda s: total_requests(s) == n, f"{n} requests counted")

        status, headers, body = admin_get(admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"),
                        headers)
        text = body.decode()
        assert_promtool_clean(self, text)
        s = parse_metrics(text)
        for code in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"):
            self.assertEqual(metric(s, "zkworker_requests_total", code=code),
                             sent.get(code, 0), code)
        # The histogram counts every request once, in one bucket; its buckets only grow.
        self.assertEqual(metric(s, "zkworker_app_duration_seconds_count"), n)
        self.assertEqual(metric(s, "zkworker_app_duration_seconds_bucket", le="+Inf"), n)
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in s.items()
                         if name == "zkworker_app_duration_seconds_bucket")
        self.assertEqual(len(buckets), 14)
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertGreater(metric(s, "zkworker_app_duration_seconds_sum"), 0)
        # The loop's side: two threads, none busy, one LB, the two Host classes.
        self.assertEqual(metric(s, "zkworker_app_threads"), 2)
        self.assertEqual(metric(s, "zkworker_app_threads_busy"), 0)
        self.assertEqual(metric(s, "zkworker_requests_in_flight"), 0)
        self.assertEqual(metric(s, "zkworker_balancer_connections"), 1)
        self.assertEqual(metric(s, "zkworker_resume_classes"), 2)
        self.assertEqual(metric(s, "zkworker_draining"), 0)
        # The process.
        proc = cluster.workers[0][0]
        rss = int(harness.read_text(f"/proc/{proc.pid}/statm").split()[1]) * os.sysconf(
            "SC_PAGE_SIZE")
        self.assertGreater(metric(s, "process_resident_memory_bytes"), rss / 4)
        self.assertLess(metric(s, "process_resident_memory_bytes"), rss * 4)
        start = metric(s, "zkworker_start_time_seconds")
        self.assertTrue(t0 - 1 <= start <= time.time(), (t0, start))
        version = harness.run_command([harness.binary("zkworker"), "--version"]).stdout.split()[1]
        self.assertEqual(metric(s, "zkworker_build_info", version=version), 1)

        # More requests move the counters by exactly as many.
        for _ in range(3):
            http_request(cluster.port, "/hello", headers={"Host": "site2.example"})
        s = wait_metrics(admin, lambda s: total_requests(s) == n + 3, f"{n + 3} requests")
        self.assertEqual(metric(s, "zkworker_requests_total", code="2xx"), sent["2xx"] + 3)
        self.assertEqual(metric(s, "zkworker_app_duration_seconds_count"), n + 3)
        self.assertEqual(metric(s, "zkworker_resume_classes"), 3)

    def test_busy_threads_and_in_flight_follow_a_running_request(self):
        cluster, admin = self.start(threads=2)
        # /held-close answers at once, then its close() blocks its thread until
        # /release-close: one thread stays busy with one request in flight.
        status, _, body = http_request(cluster.port, "/held-close")
        self.assertEqual((status, body), (200, b"held\n"))
        s = wait_metrics(admin, lambda s: metric(s, "zkworker_app_threads_busy") == 1,
                         "one busy thread")
        self.assertEqual(metric(s, "zkworker_requests_in_flight"), 1)
        self.assertEqual(total_requests(s), 0)
        status, _, _ = http_request(cluster.port, "/release-close")
        self.assertEqual(status, 200)
        s = wait_metrics(admin, lambda s: total_requests(s) == 2 and
                         metric(s, "zkworker_app_threads_busy") == 0 and
                         metric(s, "zkworker_requests_in_flight") == 0,
                         "both requests finished, no thread busy")
        self.assertEqual(metric(s, "zkworker_requests_total", code="2xx"), 2)

    def test_only_metrics_is_served(self):
        _, admin = self.start(threads=1)
        self.assertEqual(admin_get(admin, "/")[0], 404)
        self.assertEqual(admin_get(admin, "/status.json")[0], 404)
        status, _, body = admin_get(admin, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(admin_get(admin, "/metrics", method="POST")[0], 405)

    def test_admin_address_in_the_ini_file(self):
        admin_port = harness.free_port()
        ini = self.sandbox.write(
            "worker.ini", "[app:main]\nuse = call:plain_app:make_app\n\n[server:main]\n"
                          f"use = egg:zc.resumelb\naddress = 127.0.0.1:{harness.free_port()}\n"
                          f"admin_address = 127.0.0.1:{admin_port}\n")
        proc, port = self.start_worker(config=ini)
        self.assertEqual(int(proc.wait_for_log(ADMIN_RE).group("port")), admin_port)
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/hello"))
        wait_metrics(admin_port, lambda s: metric(s, "zkworker_requests_total", code="2xx") == 1,
                     "the request counted")

    def test_served_while_draining_and_closed_at_exit(self):
        proc, port = self.start_worker(threads=2, extra_args=["--admin_address=127.0.0.1:0"])
        admin = int(proc.wait_for_log(ADMIN_RE).group("port"))
        conn = self.connect(port)
        self.assertComplete(request(conn, 1, "/held-close"))  # its thread stays busy
        wait_metrics(admin, lambda s: metric(s, "zkworker_app_threads_busy") == 1,
                     "one busy thread")
        proc.send_signal(signal.SIGTERM)
        s = wait_metrics(admin, lambda s: metric(s, "zkworker_draining") == 1, "draining")
        self.assertEqual(metric(s, "zkworker_requests_in_flight"), 1)
        self.assertComplete(request(conn, 2, "/release-close"))
        self.assertEqual(proc.wait(), 0)
        self.assertTrue(harness.port_refuses(admin))


class BadAdminAddressTest(harness.E2ETestCase):

    def run_worker(self, *args):
        """Runs a worker that must refuse to start: its one error line."""
        r = harness.run_command([harness.binary("zkworker"), "--app=plain_app:application",
                                 "--address=127.0.0.1:0", f"--pythonpath={harness.APPS_DIR}",
                                 *args], cwd=self.sandbox.dir)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertNotIn("listening", r.stdout + r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"expected one error line, got:\n{r.stderr}")
        return lines[0]

    def test_a_malformed_admin_address(self):
        for value in ("nonsense", "127.0.0.1:notaport", "127.0.0.1:70000"):
            with self.subTest(value=value):
                line = self.run_worker(f"--admin_address={value}")
                self.assertIn("admin_address", line)
                self.assertIn(value, line)

    def test_an_admin_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            line = self.run_worker(f"--admin_address=127.0.0.1:{port}")
        self.assertIn("admin listener", line)
        self.assertIn(str(port), line)

    def test_admin_ports_overlapping_the_data_ports(self):
        # Supervised processes listen with SO_REUSEPORT, which would let both listeners
        # share a port and split its connections: refused at start-up instead.
        line = self.run_worker("--address=127.0.0.1:8000", "--processes=3",
                               "--admin_address=127.0.0.1:8002")
        self.assertIn("admin_address", line)
        self.assertIn("overlap", line)
        line = self.run_worker("--address=127.0.0.1:8000", "--admin_address=:8000")
        self.assertIn("overlap", line)

    def test_processes_past_the_last_admin_port(self):
        line = self.run_worker("--processes=2", "--admin_address=127.0.0.1:65535")
        self.assertIn("admin_address", line)
        self.assertIn("65536", line)


class SupervisedAdminTest(harness.E2ETestCase):

    def test_each_process_serves_its_own_admin_port_and_its_replacement_too(self):
        base = free_port_run(4)  # data ports base, base+1; admin ports base+2, base+3
        admin_base = base + 2
        m = start_master(self.sandbox, 2, [f"--admin_address=127.0.0.1:{admin_base}"],
                         base_port=base)
        # Requests straight to each process's data port: 3 to process 0, 1 to process 1.
        for i, count in enumerate((3, 1)):
            conn = self.connect(m.ports[i])
            for rno in range(1, count + 1):
                self.assertComplete(request(conn, rno, "/hello"))
        for i, count in enumerate((3, 1)):
            wait_metrics(admin_base + i,
                         lambda s, c=count: metric(s, "zkworker_requests_total", code="2xx") == c,
                         f"process {i}'s {count} requests")
        # A rolling reload: each replacement starts while the old process still serves
        # (both listen on the admin port), then serves it alone, counting from zero.
        old_pids = set(m.pids())
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: not (set(m.pids()) & old_pids) and m.wait_serving() and
                 not m.status()["draining"], 60, message="every process replaced")
        for i in range(2):
            s = scrape(admin_base + i)
            self.assertEqual(total_requests(s), 0, f"process {i}")
        self.assertEqual(m.proc.stop(), 0)
        self.assertTrue(harness.port_refuses(admin_base))
        self.assertTrue(harness.port_refuses(admin_base + 1))


if __name__ == "__main__":
    unittest.main()
