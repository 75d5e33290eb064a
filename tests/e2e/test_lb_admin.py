"""resumelb end to end: the operator's toolkit: the admin listener (--admin_address) with
/metrics (checked by promtool), /status.json and the status page (in headless Chromium),
the richer status document, the access log's new fields and JSON format, --version and
--check, and the status socket's mode and group."""

import json
import os
import re
import shutil
import socket
import stat
import time
import unittest

import cdp_browser
import harness
import lb_harness
from harness import wait_for
from lb_harness import http_request, worker_name
from metrics_harness import ADMIN_RE, admin_get, assert_promtool_clean, metric, parse_metrics


def start_admin_cluster(sandbox, n_workers=2, lb_args=(), workers=None):
    """Workers and an LB with a status socket and an admin listener; (cluster, admin port)."""
    cluster = lb_harness.start_cluster(sandbox, n_workers, workers=workers,
                                       lb_args=["--admin_address=127.0.0.1:0", *lb_args])
    m = cluster.lb.wait_for_log(ADMIN_RE)
    return cluster, int(m.group("port"))


class AdminListenerTest(harness.E2ETestCase):

    def test_metrics_pass_promtool_and_count_requests(self):
        cluster, admin = start_admin_cluster(self.sandbox, 2)
        for i in range(6):
            status, _, _ = http_request(cluster.port, "/hello",
                                        headers={"Host": f"site{i % 2}.example"})
            self.assertEqual(status, 200)
        status, headers, body = admin_get(admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        assert_promtool_clean(self, text)
        s = parse_metrics(text)
        self.assertEqual(metric(s, "resumelb_requests_total", code="2xx"), 6)
        self.assertEqual(metric(s, "resumelb_request_duration_seconds_count"), 6)
        self.assertEqual(metric(s, "resumelb_request_duration_seconds_bucket", le="+Inf"), 6)
        self.assertEqual(metric(s, "resumelb_class_requests_total", **{"class": "site0.example"}), 3)
        self.assertEqual(metric(s, "resumelb_class_requests_total", **{"class": "site1.example"}), 3)
        self.assertEqual(metric(s, "resumelb_class_requests_total", **{"class": "other"}), 0)
        for _, port in cluster.workers:
            self.assertEqual(metric(s, "resumelb_worker_up", worker=worker_name(port)), 1)
            self.assertEqual(metric(s, "resumelb_worker_in_pool", worker=worker_name(port)), 1)
        self.assertEqual(sum(metric(s, "resumelb_worker_requests_total", worker=worker_name(p))
                             for _, p in cluster.workers), 6)
        self.assertEqual(metric(s, "resumelb_gateway_errors_total", code="503", cause="no_worker"),
                         0)
        self.assertEqual(metric(s, "resumelb_setting", setting="variance"), 4)
        self.assertGreater(metric(s, "resumelb_response_body_bytes_total"), 0)
        self.assertEqual(metric(s, "resumelb_response_buffer_bytes", medium="memory"), 0)

    def test_class_series_are_bounded(self):
        cluster, admin = start_admin_cluster(self.sandbox, 1, lb_args=["--metrics_classes=3"])
        for i in range(12):
            http_request(cluster.port, "/", headers={"Host": f"c{i}.example"})
        for _ in range(5):  # one class busier than the others
            http_request(cluster.port, "/", headers={"Host": "busy.example"})
        s = parse_metrics(admin_get(admin, "/metrics")[2].decode())
        classes = {dict(labels)["class"]: v for (name, labels), v in s.items()
                   if name == "resumelb_class_requests_total"}
        self.assertIn("other", classes)
        self.assertLessEqual(len(classes), 4, classes)
        self.assertEqual(sum(classes.values()), 17)
        # The status document reports the same classes, with the workers that serve them.
        st = json.loads(admin_get(admin, "/status.json")[2])
        self.assertLessEqual(len(st["classes"]), 3)
        self.assertEqual(sum(c["requests"] for c in st["classes"]) +
                         st["other_classes"]["requests"], 17)

    def test_status_json_is_the_status_document(self):
        cluster, admin = start_admin_cluster(self.sandbox, 2)
        http_request(cluster.port, "/hello", headers={"Host": "a.example"})
        status, headers, body = admin_get(admin, "/status.json")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        over_http = json.loads(body)
        on_socket = cluster.status()
        self.assertEqual(list(over_http), list(on_socket))
        for key in ("version", "start_time", "uptime", "classes", "requests_by_status",
                    "latency_seconds"):
            self.assertIn(key, on_socket)
        version = lb_harness.run_lb(["--version"]).stdout.split("\n")[0].split()[-1]
        self.assertEqual(on_socket["version"], version)
        self.assertLess(abs(on_socket["start_time"] + on_socket["uptime"] - time.time()), 5)
        # The class -> worker map: the class's worker has it in its résumé once it reports
        # one (the worker's résumé follows its history; the LB assigned it meanwhile).
        self.assertEqual(on_socket["classes"][0]["class"], "a.example")
        self.assertEqual(on_socket["requests_by_status"]["2xx"], 1)
        for d in on_socket["worker_details"]:
            self.assertEqual(d["state"], "ready")
            self.assertEqual(d["failures"], 0)

    def test_get_lb_status_table(self):
        cluster, _ = start_admin_cluster(self.sandbox, 2)
        http_request(cluster.port, "/hello", headers={"Host": "t.example"})
        tool = harness.binary("get-lb-status")
        r = harness.run_command([tool, "--format=table", cluster.status_path])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"resumelb \d+\.\d+\.\d+, up \d+ s, backlog 0, 1 requests")
        self.assertIn("WORKER", r.stdout)
        for _, p in cluster.workers:
            self.assertRegex(r.stdout, rf"(?m)^{re.escape(worker_name(p))} +ready +yes ")
        self.assertRegex(r.stdout, r"(?m)^t\.example +1 ")
        # Not on a terminal, the default is still the original's report.
        r = harness.run_command([tool, cluster.status_path])
        self.assertTrue(r.stdout.startswith("status for "), r.stdout)

    def test_bounds_and_errors(self):
        cluster, admin = start_admin_cluster(self.sandbox, 1)
        self.assertEqual(admin_get(admin, "/nope")[0], 404)
        self.assertEqual(admin_get(admin, "/metrics", method="POST")[0], 405)
        status, headers, body = admin_get(admin, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(headers["content-length"]), 0)
        with socket.create_connection(("127.0.0.1", admin), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400 "))
        # Connections beyond the limit are closed at once; the held ones time out.
        held = [socket.create_connection(("127.0.0.1", admin), timeout=10) for _ in range(8)]
        try:
            time.sleep(0.2)  # let the LB accept them all
            with socket.create_connection(("127.0.0.1", admin), timeout=10) as extra:
                self.assertEqual(extra.recv(100), b"")
            start = time.monotonic()
            self.assertEqual(held[0].recv(100), b"")
            self.assertLess(time.monotonic() - start, 8)
        finally:
            for s in held:
                s.close()
        self.assertEqual(admin_get(admin, "/metrics")[0], 200)
        # The data path was never disturbed.
        self.assertEqual(http_request(cluster.port, "/hello")[0], 200)

    def test_off_by_default(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1)
        self.assertEqual(cluster.lb.log_lines(r"admin listener"), [])


class StatusPageTest(harness.E2ETestCase):

    def rows(self, page):
        return page.evaluate(
            "Array.from(document.querySelectorAll('#workers tbody tr')).map("
            "tr => Array.from(tr.cells).map(td => td.textContent))")

    def test_page_shows_workers_and_follows_them(self):
        w1 = self.sandbox.start_worker()
        late_port = harness.free_port()
        lb, port = lb_harness.start_lb(self.sandbox, [w1[1]], [
            "--admin_address=127.0.0.1:0"], worker_addrs=[worker_name(w1[1]),
                                                          worker_name(late_port)],
            wait_workers=False)
        lb.wait_for_log(r"worker connected " + re.escape(worker_name(w1[1])))
        admin = int(lb.wait_for_log(ADMIN_RE).group("port"))
        status, headers, body = admin_get(admin, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["content-type"])
        self.assertNotRegex(body.decode(), r'(src|href)="(https?:)?//')  # self-contained
        for _ in range(3):
            http_request(port, "/hello", headers={"Host": "page.example"})

        with cdp_browser.HeadlessBrowser() as browser:
            page = browser.open(f"http://127.0.0.1:{admin}/")

            def state_of(name):
                for row in self.rows(page):
                    if row[0] == name:
                        return row[1]
                return None

            wait_for(lambda: state_of(worker_name(w1[1])) == "ready", message="first worker ready")
            self.assertNotEqual(state_of(worker_name(late_port)), "ready")
            classes = page.evaluate("Array.from(document.querySelectorAll('#classes tbody tr'))"
                                    ".map(tr => tr.cells[0].textContent)")
            self.assertIn("page.example", classes)
            self.assertRegex(page.evaluate("document.getElementById('version').textContent"),
                             r"^\d+\.\d+\.\d+")
            # A worker joins...
            self.sandbox.start_worker(extra_args=[f"--address=127.0.0.1:{late_port}"])
            wait_for(lambda: state_of(worker_name(late_port)) == "ready",
                     message="the late worker shown ready")
            # ...and one leaves.
            w1[0].stop()
            wait_for(lambda: state_of(worker_name(w1[1])) not in ("ready", None),
                     message="the stopped worker shown down")
            # Updated every second: the chart has samples.
            updates = int(page.evaluate("document.body.dataset.updates"))
            wait_for(lambda: int(page.evaluate("document.body.dataset.updates")) >= updates + 2,
                     message="two more updates")
            self.assertEqual(browser.errors, [])


class AccessLogTest(harness.E2ETestCase):

    def test_text_format_adds_host_class_user_agent_and_parse_errors(self):
        log = self.sandbox.path("access.log")
        cluster = lb_harness.start_cluster(self.sandbox, 1, lb_args=["-l", log])
        http_request(cluster.port, "/hello?q=1", headers={"Host": "WWW.Shop.example:80",
                                                        "User-Agent": 'probe "1"'})
        with socket.create_connection(("127.0.0.1", cluster.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
            s.recv(1000)
        wait_for(lambda: len(harness.read_text(log).splitlines()) >= 2, message="two lines")
        first, second = harness.read_text(log).splitlines()[:2]
        self.assertRegex(first, r'"GET /hello\?q=1 HTTP/1\.1" 200 \d+ \d+\.\d+ 127\.0\.0\.1:\d+ '
                                r'"WWW\.Shop\.example:80" "shop\.example" "probe \\x221\\x22"$')
        self.assertRegex(second, r'^127\.0\.0\.1 - - \[[^\]]+\] "-" 400 0 \d+\.\d+ - "-" "-" "-"$')

    def test_json_format(self):
        log = self.sandbox.path("access.jsonl")
        cluster = lb_harness.start_cluster(self.sandbox, 1, lb_args=[
            "-l", log, "--access_log_format=json"])
        http_request(cluster.port, "/hello", headers={"Host": "j.example", "User-Agent": "ua/1"})
        wait_for(lambda: harness.read_text(log).strip(), message="a line")
        rec = json.loads(harness.read_text(log).splitlines()[0])
        self.assertEqual((rec["method"], rec["url"], rec["status"], rec["host"], rec["class"],
                          rec["user_agent"], rec["protocol"]),
                         ("GET", "/hello", 200, "j.example", "j.example", "ua/1", "HTTP/1.1"))
        self.assertEqual(rec["worker"], worker_name(cluster.workers[0][1]))
        self.assertIsNone(rec["error"])

    def test_bad_format_is_refused(self):
        r = lb_harness.run_lb(["--access_log_format=xml", "127.0.0.1:1"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--access_log_format", r.stderr)


class VersionAndCheckTest(harness.E2ETestCase):

    def test_version_names_the_libraries(self):
        for program in ("resumelb", "zkresumelb"):
            r = harness.run_command([harness.binary(program), "--version"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, rf"^{program} \d+\.\d+\.\d+\n")
            for lib in ("libuv", "llhttp", "ZooKeeper C client"):
                self.assertRegex(r.stdout, rf"(?m)^{lib} \d+\.\d+")

    def test_check_validates_without_binding(self):
        port = harness.free_port()
        sock = self.sandbox.path("check.sock")
        r = lb_harness.run_lb(["--check", "-a", f"127.0.0.1:{port}", "-s", sock, "127.0.0.1:1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(sock))
        self.assertTrue(harness.port_refuses(port))
        for bad in (["--backlog_history=0"], ["-l", "/nonexistent-dir/access.log"],
                    ["-s", "/nonexistent-dir/lb.sock"], ["--admin_address=nonsense"],
                    ["--status_socket_group=no-such-group-rlb"]):
            r = lb_harness.run_lb(["--check", *bad, "127.0.0.1:1"])
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))
            self.assertIn("error", r.stderr)
        r = harness.run_command([harness.binary("zkresumelb"), "--check", "127.0.0.1:1", "/lb"])
        self.assertEqual(r.returncode, 0, r.stderr)


class StatusSocketAccessTest(harness.E2ETestCase):

    def test_mode_and_group_let_a_monitoring_user_read(self):
        if os.getuid() != 0:
            self.skipTest("needs root to run a reader as another user")
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            self.skipTest("setpriv is not installed (util-linux)")
        group = "nogroup"
        import grp
        gid = grp.getgrnam(group).gr_gid
        # The socket's directory must be reachable by the reader.
        directory = self.sandbox.mkdir("run")
        os.chmod(self.sandbox.path(), 0o755)
        os.chmod(directory, 0o755)
        sock = os.path.join(directory, "lb.sock")
        worker = self.sandbox.start_worker()
        lb_harness.start_lb(self.sandbox, [worker[1]], [
            "-s", sock, "--status_socket_mode=0660", f"--status_socket_group={group}"])
        st = os.stat(sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, gid)
        reader = [setpriv, "--reuid=nobody", f"--regid={gid}", "--clear-groups",
                  harness.binary("get-lb-status"), "--json", sock]
        r = harness.run_command(reader)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["workers"]), 1)
        # A reader of another group is refused.
        r = harness.run_command([setpriv, "--reuid=nobody", "--regid=54321", "--clear-groups",
                                 harness.binary("get-lb-status"), "--json", sock])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ermission denied", r.stderr)

    def test_bad_mode_is_refused(self):
        for mode in ("0400", "999", "rw", "01777"):
            r = lb_harness.run_lb([f"--status_socket_mode={mode}", "127.0.0.1:1"])
            self.assertEqual(r.returncode, 2, mode)
            self.assertIn("--status_socket_mode", r.stderr)


if __name__ == "__main__":
    unittest.main()
