"""resumelb end to end: operations: the status server (-s), the access log (-l), the
SIGTERM drain, bad command lines and --help."""

import json
import os
import re
import signal
import socket
import stat
import time
import unittest

import harness
import lb_harness
from harness import wait_for
from lb_harness import Background, RawConn, http_request, request_bytes, worker_name

ACCESS_RE = re.compile(
    r'^(?P<client>\S+) - - \[(?P<when>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) '
    r'(?P<version>HTTP/1\.[01])" (?P<status>\d{3}) (?P<bytes>\d+) (?P<duration>\d+\.\d+) '
    r'(?P<worker>\S*) "(?P<host>[^"]*)" "(?P<class>[^"]*)" "(?P<user_agent>[^"]*)"$')


class StatusServerTest(harness.E2ETestCase):

    def test_socket_is_owner_only(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1)
        st = os.stat(cluster.status_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.getuid())

    def test_stale_socket_file_is_replaced(self):
        path = self.sandbox.path("stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()   # leaves a dead socket file behind, as a crashed LB would
        worker, wport = self.sandbox.start_worker()
        lb_harness.start_lb(self.sandbox, [wport], ["-s", path])
        self.assertEqual(len(lb_harness.read_status(path)["workers"]), 1)

    def test_status_document(self):
        # One worker comes with a saved résumé of 3 classes.
        resume = self.sandbox.write("resume.json", json.dumps({"a": 5.0, "b": 2.0, "c": 1.0}))
        workers = [self.sandbox.start_worker(extra_args=[f"--resume_file={resume}"])]
        workers += lb_harness.start_workers(self.sandbox, 2)
        cluster = lb_harness.start_cluster(self.sandbox, workers=workers)
        names = sorted(worker_name(p) for _, p in workers)

        st = cluster.status()
        for key in ("backlog", "mean_backlog", "workers", "workers_ex", "worker_details",
                    "pool", "totals"):
            self.assertIn(key, st)
        self.assertEqual(st["backlog"], 0)
        self.assertIsInstance(st["mean_backlog"], (int, float, type(None)))
        # workers: [name, backlog, mean backlog, oldest start or null], sorted by name.
        self.assertEqual([row[0] for row in st["workers"]], names)
        for row in st["workers"]:
            self.assertEqual(len(row), 4, row)
            self.assertEqual(row[1], 0)
            self.assertIsInstance(row[2], (int, float))
            self.assertIsNone(row[3])
        self.assertEqual([row[0] for row in st["workers_ex"]], names)
        for row in st["workers_ex"]:
            self.assertEqual(len(row), 2)
            self.assertIsInstance(row[1], int)
        # Pool settings: resumelb's defaults (the balanced pool; variance 4 as in the
        # original's CLI, used by -p classic and -p resume).
        self.assertEqual(st["pool"]["kind"], "balanced")
        self.assertEqual((st["pool"]["variance"], st["pool"]["backlog_history"],
                          st["pool"]["unskilled_score"]), (4.0, 9, 1.0))
        # Per-worker details.
        details = {d["name"]: d for d in st["worker_details"]}
        self.assertEqual(sorted(details), names)
        self.assertEqual(details[worker_name(workers[0][1])]["resume_size"], 3)
        for d in details.values():
            self.assertEqual(d["requests"], 0)
            self.assertTrue(d["connected"])
            self.assertTrue(d["in_pool"])
        for key in ("requests", "retries", "502", "503"):
            self.assertEqual(st["totals"][key], 0, key)

        # Counters move with traffic.
        for i in range(6):
            self.assertEqual(http_request(cluster.port, "/hello",
                                          headers={"Host": f"c{i}.example"})[0], 200)
        st = cluster.status()
        self.assertEqual(st["totals"]["requests"], 6)
        self.assertEqual(sum(d["requests"] for d in st["worker_details"]), 6)
        self.assertEqual((st["totals"]["retries"], st["totals"]["502"], st["totals"]["503"]),
                         (0, 0, 0))

        # A request in flight shows in the backlog, with its start time.
        before = time.time()
        bg = Background(http_request, cluster.port, "/sleep?dur=1")
        busy = wait_for(lambda: [r for r in cluster.status()["workers"] if r[1] == 1], 10,
                        message="the request to be in flight")
        st = cluster.status()
        self.assertEqual(st["backlog"], 1)
        self.assertEqual(len(busy), 1)
        self.assertIsInstance(busy[0][3], float)
        self.assertGreaterEqual(busy[0][3], before - 0.01)
        self.assertLessEqual(busy[0][3], time.time())
        self.assertGreater(st["mean_backlog"], 0)
        self.assertEqual(bg.result(10)[0], 200)
        wait_for(lambda: cluster.status()["backlog"] == 0, 5)
        self.assertTrue(all(r[3] is None for r in cluster.status()["workers"]))

    def test_pool_settings_from_flags(self):
        worker, wport = self.sandbox.start_worker()
        path = self.sandbox.path("s.sock")
        lb_harness.start_lb(self.sandbox, [wport], [
            "-s", path, "--variance=2.5", "--backlog_history=6", "--unskilled_score=0.5"])
        pool = lb_harness.read_status(path)["pool"]
        self.assertEqual((pool["kind"], pool["variance"], pool["backlog_history"],
                          pool["unskilled_score"]), ("balanced", 2.5, 6, 0.5))
        path2 = self.sandbox.path("s2.sock")
        _, port = lb_harness.start_lb(self.sandbox, [wport], ["-s", path2, "-p", "classless"])
        self.assertEqual(lb_harness.read_status(path2)["pool"]["kind"], "classless")
        self.assertEqual(http_request(port, "/hello")[0], 200)


class AccessLogTest(harness.E2ETestCase):

    def do_requests(self, port):
        self.assertEqual(http_request(port, "/hello")[0], 200)
        self.assertEqual(http_request(port, "/echo?x=1", method="POST", body=b"12345")[0], 200)
        self.assertEqual(http_request(port, "/nope")[0], 404)
        self.assertEqual(http_request(port, "/hello", method="HEAD")[0], 200)
        self.assertEqual(http_request(port, "/sleep?dur=0.2")[0], 200)

    def check_lines(self, lines, wport):
        parsed = []
        for line in lines:
            m = ACCESS_RE.match(line)
            self.assertIsNotNone(m, f"unexpected access log line {line!r}")
            parsed.append(m.groupdict())
        got = [(p["method"], p["path"], p["status"], p["bytes"]) for p in parsed]
        echo_len = None
        for p in parsed:
            if p["path"] == "/echo?x=1":
                echo_len = p["bytes"]
        self.assertEqual(got, [
            ("GET", "/hello", "200", "14"),
            ("POST", "/echo?x=1", "200", echo_len),
            ("GET", "/nope", "404", "10"),
            ("HEAD", "/hello", "200", "0"),
            ("GET", "/sleep?dur=0.2", "200", "6"),
        ])
        self.assertGreater(int(echo_len), 60)
        for p in parsed:
            self.assertEqual(p["client"], "127.0.0.1")
            self.assertEqual(p["worker"], worker_name(wport))
            self.assertLess(float(p["duration"]), 5)
        self.assertGreaterEqual(float(parsed[-1]["duration"]), 0.2)

    def test_access_log_file(self):
        path = self.sandbox.path("access.log")
        worker, wport = self.sandbox.start_worker()
        lb, port = lb_harness.start_lb(self.sandbox, [wport], ["-l", path])
        self.do_requests(port)
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 5 else None)(
            harness.read_text(path).splitlines()), 5, message="5 access log lines")
        self.check_lines(lines, wport)

    def test_access_log_stdout(self):
        worker, wport = self.sandbox.start_worker()
        lb, port = lb_harness.start_lb(self.sandbox, [wport], ["-l", "-"])
        self.do_requests(port)
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 5 else None)(
            lb.log_lines(r'^\S+ - - \[')), 5, message="5 access log lines on stdout")
        self.check_lines(lines, wport)


class DrainTest(harness.E2ETestCase):

    def test_sigterm_drains_requests_in_flight(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1, threads=2)
        idle = RawConn(cluster.port)
        self.addCleanup(idle.close)
        idle.send(request_bytes("GET", "/hello"))
        self.assertEqual(idle.read_response().code, 200)
        bg = Background(http_request, cluster.port, "/sleep?dur=1.5", timeout=30)
        wait_for(lambda: cluster.status()["backlog"] == 1, 10,
                 message="the request to be in flight")
        cluster.lb.send_signal(signal.SIGTERM)
        # New connections are refused and the status socket goes away at once ...
        wait_for(lambda: harness.port_refuses(cluster.port), 5,
                 message="new connections to be refused")
        wait_for(lambda: not os.path.exists(cluster.status_path), 5,
                 message="the status socket file to be removed")
        # ... idle keep-alive connections are closed ...
        self.assertTrue(idle.closed_by_peer(5))
        # ... while the request in flight is still running, and then completes.
        self.assertFalse(bg.done(), "the request finished before the checks: make it slower")
        self.assertTrue(cluster.lb.alive())
        status, headers, body = bg.result(20)
        self.assertEqual((status, body), (200, b"slept\n"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(cluster.lb.wait(10), 0)
        cluster.lb.wait_for_log(r"exiting")

    def test_sigterm_when_idle(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1)
        self.assertEqual(cluster.lb.stop(signal.SIGTERM, timeout=10), 0)
        self.assertFalse(os.path.exists(cluster.status_path))



class GetLbStatusTest(harness.E2ETestCase):
    """get-lb-status, the tool that reads the status socket."""

    def run_tool(self, *args):
        return harness.run_command([harness.binary("get-lb-status"), *args])

    def test_json_is_the_document(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        r = self.run_tool("--json", cluster.status_path)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        doc = json.loads(r.stdout)
        self.assertEqual(list(doc), list(cluster.status()))
        self.assertEqual(len(doc["workers"]), 2)

    def test_report(self):
        cluster = lb_harness.start_cluster(self.sandbox, 2)
        r = self.run_tool(cluster.status_path)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], f"status for {cluster.status_path}")
        self.assertIn("backlog: 0, mean backlog:", lines[1])
        self.assertIn("workers: 2,", lines[2])
        for _, port in cluster.workers:
            self.assertRegex(r.stdout, rf"(?m)^\s+{re.escape(worker_name(port))}\s+0\s")

    def test_missing_and_silent_sockets(self):
        cluster = lb_harness.start_cluster(self.sandbox, 1)
        missing = self.sandbox.path("missing.sock")
        silent = self.sandbox.path("silent.sock")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(silent)
            s.listen()   # accepts (in the backlog) but never answers: the deadline ends it
            start = time.monotonic()
            r = self.run_tool("--json", "--timeout=0.5", missing, silent, cluster.status_path)
            elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r)
        self.assertLess(elapsed, 4)
        errors = r.stderr.splitlines()
        self.assertEqual(len(errors), 2, r.stderr)
        self.assertIn(missing, errors[0])
        self.assertIn(silent, errors[1])
        self.assertIn("no answer in time", errors[1])
        self.assertEqual(json.loads(r.stdout)["workers"][0][0], worker_name(cluster.workers[0][1]))

    def test_bad_command_lines(self):
        for args in ([], ["--timeout=0", "x.sock"], ["--no_such_flag", "x.sock"]):
            with self.subTest(args=args):
                r = self.run_tool(*args)
                self.assertNotEqual(r.returncode, 0, r)
                self.assertEqual(r.stdout, "")
        r = self.run_tool("--help")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("Usage: get-lb-status", r.stdout)
        r = self.run_tool("--helpfull")
        self.assertNotIn("SetUsageMessage", r.stdout + r.stderr)


class CommandLineTest(unittest.TestCase):

    def assert_one_error_line(self, args):
        r = lb_harness.run_lb(args)
        self.assertNotEqual(r.returncode, 0, r)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertEqual(r.stdout, "")
        return lines[0]

    def test_bad_flags(self):
        cases = [
            ["--no_such_option", "127.0.0.1:1"],
            ["--no-such-option=3", "127.0.0.1:1"],
            ["-Z", "127.0.0.1:1"],
            ["-a", "nonsense", "127.0.0.1:1"],
            ["-a", "127.0.0.1:99999", "127.0.0.1:1"],
            ["-a", "127.0.0.1:http", "127.0.0.1:1"],
            ["foo"],
            ["127.0.0.1:notaport"],
            ["127.0.0.1:1", "bad:address:here"],
            [],
            ["-a", "127.0.0.1:0"],
            ["--max_connections=-1", "127.0.0.1:1"],
            ["--max_classes=0", "127.0.0.1:1"],
            ["--worker_timeout=abc", "127.0.0.1:1"],
            ["-p", "nosuchpool", "127.0.0.1:1"],
            ["-L", "LOUD", "127.0.0.1:1"],
            ["-e", "/nonexistent/outage.html", "127.0.0.1:1"],
            ["-a"],
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assert_one_error_line(args)

    def test_no_worker_addresses_message(self):
        line = self.assert_one_error_line(["-a", "127.0.0.1:0"])
        self.assertIn("worker address", line)

    def test_address_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            line = self.assert_one_error_line(["-a", f"127.0.0.1:{port}", "127.0.0.1:1"])
            self.assertIn(str(port), line)

    def test_help_documents_every_option(self):
        for flag in ("--help", "-h"):
            r = lb_harness.run_lb([flag])
            self.assertEqual(r.returncode, 0, r)
            self.assertIn("Usage: resumelb", r.stdout)
        text = r.stdout
        # Every flag the binary defines (from gflags' own listing) is documented ...
        xml = lb_harness.run_lb(["--helpxml"]).stdout
        defined = re.findall(r"<flag><file>[^<]*lb_command_line\.cc</file><name>(\w+)</name>", xml)
        self.assertGreater(len(defined), 20, xml[:500])
        zk_only = {"single_version"}   # zkresumelb's -v; resumelb has no worker versions
        for name in sorted(set(defined) - zk_only):
            self.assertRegex(text, rf"--{name}\b", f"--{name} is not in --help")
        # ... and so are the short forms.
        for short in "arplLestmbh":
            self.assertRegex(text, rf"(?m)^\s+-{short}, --\w+", f"-{short} is not in --help")


if __name__ == "__main__":
    unittest.main()
