"""resumelb end to end: start-up as in the original zc.resumelb README's example, and
request classification / routing (each class settles on one worker; host, re: and none
classifiers; bad specs)."""

import collections
import http.client
import subprocess
import unittest

import harness
import lb_harness
from lb_harness import http_request, pid_answer


class SeedExampleTest(harness.E2ETestCase):

    def test_seed_example_verbatim(self):
        # The original README's example: resumelb -LINFO -a :PORT 127.0.0.1:WPORT
        worker, wport = self.start_worker()
        port = harness.free_port()
        lb = self.sandbox.start([lb_harness.lb_binary(), "-LINFO", "-a", f":{port}",
                                 f"127.0.0.1:{wport}"], name="resumelb")
        m = lb.wait_for_log(lb_harness.LB_LISTENING_RE)
        self.assertEqual(int(m.group("port")), port)
        self.assertEqual(int(m.group("pid")), lb.pid)
        lb.wait_for_log(rf"worker connected 127\.0\.0\.1:{wport}\b")
        out = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-",
                              f"http://127.0.0.1:{port}/hello"],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
        self.assertEqual(body, b"Hello, world!\n")
        # The answer came from that worker: /pid names it.
        status, _, body = http_request(port, "/pid")
        self.assertEqual(status, 200)
        self.assertEqual(pid_answer(body)[0], worker.pid)


# Classes per classifier test: enough that consistent-hash placement reaches 3 workers.
KEYS = 24


class ClassifierTest(harness.E2ETestCase):
    """Three workers shared by the class; each test starts its own LB in front of them.
    Every test uses class names of its own (workers remember classes across LBs)."""

    @classmethod
    def setUpClass(cls):
        sb = cls.class_sandbox()
        cls.workers = lb_harness.start_workers(sb, 3)
        cls.pids = {p.pid for p, _ in cls.workers}

    def start_lb(self, extra_args=()):
        _, port = lb_harness.start_lb(self.sandbox, [p for _, p in self.workers], extra_args)
        return port

    def assert_settles(self, ask, keys, expect_class, rounds=4):
        """ask(key) -> (pid, class). Each key's requests all go to one worker. New classes
        are placed by consistent hashing (balls into bins), so KEYS keys use all 3 workers
        in all but ~1 in 5,000 runs."""
        pids = collections.defaultdict(set)
        for _ in range(rounds):
            for k in keys:
                pid, rclass = ask(k)
                self.assertEqual(rclass, expect_class(k), k)
                self.assertIn(pid, self.pids)
                pids[k].add(pid)
        for k in keys:
            self.assertEqual(len(pids[k]), 1, f"class {expect_class(k)!r} used workers {pids[k]}")
        used = set().union(*pids.values())
        self.assertEqual(used, self.pids, "the classes were not spread over every worker")
        return {k: next(iter(v)) for k, v in pids.items()}

    def test_host_classes_settle_default_classifier(self):
        port = self.start_lb()
        hosts = [f"h{i}.default.example" for i in range(KEYS)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.addCleanup(conn.close)

        def ask(host, www=False):
            conn.request("GET", "/pid", headers={"Host": ("www." if www else "") + host})
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200, body)
            return pid_answer(body)

        chosen = self.assert_settles(ask, hosts, lambda h: h)
        # A leading "www." is removed: the same class, hence the same worker.
        for h in hosts:
            self.assertEqual(ask(h, www=True), (chosen[h], h))

    def test_host_classifier_named(self):
        port = self.start_lb(["-r", "zc.resumelb.lb:host_classifier"])

        def ask(host):
            status, _, body = http_request(port, "/pid", headers={"Host": host})
            self.assertEqual(status, 200, body)
            return pid_answer(body)

        self.assert_settles(ask, [f"www.n{i}.named.example" for i in range(KEYS)],
                            lambda h: h[4:])
        # Case, the port and a trailing dot are not part of the class (issue 12; the original
        # kept them), and only a leading "www." goes.
        self.assertEqual(ask("www.Mixed.Named.example:8080")[1], "mixed.named.example")
        self.assertEqual(ask("WWW.upper.named.example.")[1], "upper.named.example")
        self.assertEqual(ask("sub.www.named.example")[1], "sub.www.named.example")

    def test_re_classifier_python_spelling(self):
        # Verbatim zc.resumelb spelling of a path classifier.
        port = self.start_lb(["-r", 'zc.resumelb.lb:re_classifier("PATH_INFO",r"/(?P<class>[^/]+)")'])

        def ask(segment):
            status, _, body = http_request(port, f"/{segment}/pid",
                                           headers={"Host": "same.host.example"})
            self.assertEqual(status, 200, body)
            return pid_answer(body)

        self.assert_settles(ask, [f"py{i}" for i in range(KEYS)], lambda s: s)
        # /pid itself: the class is "pid".
        status, _, body = http_request(port, "/pid")
        self.assertEqual(pid_answer(body)[1], "pid")

    def test_re_classifier_short_form_on_a_header(self):
        port = self.start_lb(["-r", r"re:HTTP_X_TENANT:^(?P<class>[a-z0-9]+)-"])

        def ask(tenant):
            headers = {"Host": "one.host.example"}
            if tenant is not None:
                headers["X-Tenant"] = tenant
            status, _, body = http_request(port, "/pid", headers=headers)
            self.assertEqual(status, 200, body)
            return pid_answer(body)

        self.assert_settles(ask, [f"t{i}-x" for i in range(KEYS)], lambda t: t.split("-")[0])
        # No match, or no such key: the empty class.
        self.assertEqual(ask("NOMATCH")[1], "")
        self.assertEqual(ask(None)[1], "")

    def test_none_classifier(self):
        for spec in ("none", "zc.resumelb.classlesspool:classifier"):
            with self.subTest(spec=spec):
                port = self.start_lb(["-r", spec])
                for host in ("a.none.example", "www.b.none.example"):
                    status, _, body = http_request(port, "/pid", headers={"Host": host})
                    self.assertEqual(status, 200, body)
                    self.assertEqual(pid_answer(body)[1], "")


class BadClassifierTest(unittest.TestCase):

    def test_invalid_specs_refused_at_startup(self):
        specs = [
            "bogus",
            "zc.resumelb.lb:no_such_classifier",
            "re:PATH_INFO",                                   # no regex part
            "re:PATH_INFO:(?P<class>[",                       # invalid regex
            "re:PATH_INFO:^/(unclosed",                       # invalid regex
            "re:PATH_INFO:^/[^/]+",                           # no class group
            'zc.resumelb.lb:re_classifier("PATH_INFO",r"/(?P<class>[^/]+")',   # bad regex
            'zc.resumelb.lb:re_classifier("PATH_INFO")',      # missing argument
            'zc.resumelb.lb:re_classifier(PATH_INFO, r"/(?P<class>x)")',  # not a string
        ]
        for spec in specs:
            with self.subTest(spec=spec):
                r = lb_harness.run_lb(["-a", "127.0.0.1:0", "-r", spec, "127.0.0.1:1"])
                self.assertNotEqual(r.returncode, 0, r)
                lines = [l for l in r.stderr.splitlines() if l.strip()]
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertRegex(lines[0], r"(?i)classifier|regex")
                self.assertNotIn("listening", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
