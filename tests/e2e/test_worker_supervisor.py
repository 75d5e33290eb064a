"""zkworker --processes: a master supervising N worker processes behind resumelb.

Real processes throughout: the master, its processes and a resumelb naming
127.0.0.1:PORT..PORT+N-1; requests go through the LB (RequestLoop records every outcome).
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import lb_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from supervisor_harness import start_master  # noqa: E402
from zk_lb_harness import RequestLoop  # noqa: E402

VERSIONED_APP = """\
import os
import time
VERSION = {version}


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/sleep':
        time.sleep(float(environ.get('QUERY_STRING', 'dur=0.1').split('=')[1]))
        body = b'slept\\n'
    elif path == '/version':
        body = ('%d %d\\n' % (os.getpid(), VERSION)).encode()
    else:
        body = ('%d %s\\n' % (os.getpid(), environ['zc.resumelb.request_class'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"""

# /grow?mb=N keeps N more MB alive (written, so resident) in the answering process.
GROWING_APP = """\
import os
_kept = []


def application(environ, start_response):
    if environ['PATH_INFO'] == '/grow':
        mb = int(environ['QUERY_STRING'].split('=')[1])
        _kept.append(b'x' * (mb << 20))
    body = ('%d %s\\n' % (os.getpid(), environ['zc.resumelb.request_class'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"""

RSS_LIMIT_MB = 150


class SupervisorTest(harness.E2ETestCase):

    def lb_for(self, master):
        lb, port = lb_harness.start_lb(self.sandbox, master.ports)
        return lb, port

    def test_processes_serve_through_resumelb(self):
        m = start_master(self.sandbox, 3)
        pids = set(m.pids())
        self.assertEqual(len(pids), 3)
        lb, port = self.lb_for(m)
        seen = set()
        hosts = [f"h{i}.test" for i in range(30)]

        def all_seen():
            for h in hosts:
                code, _, body = lb_harness.http_request(port, "/pid", headers={"Host": h})
                self.assertEqual(code, 200, body)
                seen.add(lb_harness.pid_answer(body)[0])
            return seen == pids
        wait_for(all_seen, message=lambda: f"answers from every process {pids} (saw {seen})")
        st = m.status()
        self.assertEqual([s["process"]["address"] for s in st["slots"]],
                         [f"127.0.0.1:{p}" for p in m.ports])
        self.assertGreater(sum(s["process"]["requests"] for s in st["slots"]), 0)
        self.assertTrue(all(s["process"]["rss_bytes"] > 0 for s in st["slots"]))

    def test_sigkill_respawns_and_rejoins_the_pool(self):
        m = start_master(self.sandbox, 2)
        lb, port = self.lb_for(m)
        victim = m.pids()[1]
        mark_lb, mark_m = lb.mark(), m.proc.mark()
        os.kill(victim, signal.SIGKILL)
        m.proc.wait_for_log(rf"process 1 \(pid {victim}\) killed by signal 9 .*respawning now",
                            since=mark_m)
        st = m.wait_serving()
        self.assertNotEqual(st["slots"][1]["process"]["pid"], victim)
        self.assertEqual(st["slots"][1]["restarts"], 1)
        new_pid = st["slots"][1]["process"]["pid"]
        lb.wait_for_log(rf"worker connected 127\.0\.0\.1:{m.ports[1]}\b", since=mark_lb)

        def answered_by_new():
            for i in range(20):
                code, _, body = lb_harness.http_request(port, "/pid",
                                                        headers={"Host": f"k{i}.test"})
                if code == 200 and lb_harness.pid_answer(body)[0] == new_pid:
                    return True
            return False
        wait_for(answered_by_new, message="the respawned process answering through the LB")

    def test_max_requests_recycles_without_failures(self):
        m = start_master(self.sandbox, 2, ["--max_requests=50", "--max_requests_jitter=10"])
        lb, port = self.lb_for(m)
        loop = RequestLoop(port, pace=0)
        try:
            wait_for(lambda: sum(s["recycles"] for s in m.status()["slots"]) >= 4, 60,
                     message="4 recycles")
            loop.wait_more(20)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertGreater(len(results), 200)
        self.assertEqual(sum(s["restarts"] for s in m.status()["slots"]), 0)
        m.proc.wait_for_log(r"served \d+ requests, max_requests (5\d|60); starting its "
                            r"replacement")

    def test_reload_on_rss_recycles_the_grown_process_without_failures(self):
        appdir = self.sandbox.mkdir("app")
        with open(os.path.join(appdir, "growing_app.py"), "w") as f:
            f.write(GROWING_APP)
        m = start_master(self.sandbox, 2, [f"--reload_on_rss={RSS_LIMIT_MB}"],
                         app="growing_app:application", pythonpath=appdir)
        limit = RSS_LIMIT_MB << 20
        st = m.status()
        rss = [s["process"]["rss_bytes"] for s in st["slots"]]
        self.assertTrue(all(0 < r < limit // 2 for r in rss), f"fresh processes' RSS {rss}")
        lb, port = self.lb_for(m)
        loop = RequestLoop(port, pace=0)
        try:
            loop.wait_more(50)
            pids = m.pids()  # stable until a process grows
            mark = m.proc.mark()
            # Past the limit by a margin whatever the answering process already holds.
            code, _, body = lb_harness.http_request(
                port, f"/grow?mb={RSS_LIMIT_MB + 20}", headers={"Host": "grow.test"}, timeout=30)
            self.assertEqual(code, 200, body)
            grown = lb_harness.pid_answer(body)[0]
            index = pids.index(grown)
            reason = rf"\(RSS \d+ MB over reload_on_rss {RSS_LIMIT_MB} MB\)"
            m.proc.wait_for_log(rf"started process {index} \(pid \d+\) .* to replace pid "
                                rf"{grown} {reason}", since=mark)
            m.proc.wait_for_log(rf"process {index} \(pid {grown}\) replaced {reason}; "
                                r"draining it", since=mark)
            # Replaced, and the grown process has drained and exited.
            wait_for(lambda: grown not in m.pids() and m.wait_serving() and
                     not m.status()["draining"], 60, message="the grown process replaced")
            loop.wait_more(50)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        st = m.status()
        self.assertEqual([s["recycles"] for s in st["slots"]],
                         [1 if i == index else 0 for i in range(2)])
        self.assertEqual(sum(s["restarts"] for s in st["slots"]), 0)
        self.assertTrue(all(s["process"]["rss_bytes"] < limit for s in st["slots"]))
        self.assertFalse(os.path.exists(f"/proc/{grown}") and
                         "zombie" not in harness.read_text(f"/proc/{grown}/status"),
                         f"the grown process {grown} still running")

    def test_harakiri_kills_a_stuck_request_and_respawns(self):
        m = start_master(self.sandbox, 3, ["--harakiri=2"], threads=1)
        lb, port = self.lb_for(m)
        loop = RequestLoop(port)
        try:
            t0 = time.monotonic()
            code, _, body = lb_harness.http_request(port, "/sleep?dur=10",
                                                    headers={"Host": "stuck.test"}, timeout=30)
            elapsed = time.monotonic() - t0
            loop.wait_more(20)
        finally:
            results = loop.stop()
        self.assertEqual(code, 502, body)
        # Killed after 2 s; the LB retries it once (a second kill makes it a query of
        # death, never retried again): well under the 10 s the request wanted.
        self.assertLess(elapsed, 8.0)
        self.assertEqual(RequestLoop.failures(results), [])
        line = m.proc.wait_for_log(r"harakiri: killing process \d \(pid \d+\): GET stuck\.test "
                                   r"/sleep running for [\d.]+ s")
        self.assertIsNotNone(line)
        lb.wait_for_log(r"suspected query of death: GET")
        st = m.wait_serving()
        self.assertGreaterEqual(st["harakiri"], 1)
        self.assertLessEqual(st["harakiri"], 2)
        self.assertEqual(sum(s["restarts"] for s in st["slots"]), st["harakiri"])

    def test_sighup_rolling_reload_picks_up_new_code_without_failures(self):
        appdir = self.sandbox.mkdir("app")
        path = os.path.join(appdir, "versioned_app.py")
        with open(path, "w") as f:
            f.write(VERSIONED_APP.format(version=1))
        m = start_master(self.sandbox, 3, app="versioned_app:application", pythonpath=appdir)
        old_pids = set(m.pids())
        lb, port = self.lb_for(m)
        loop = RequestLoop(port, pace=0)
        try:
            loop.wait_more(50)
            with open(path, "w") as f:
                f.write(VERSIONED_APP.format(version=2))
            # A deploy within the second of the first import, with a file of the same
            # size, would look unchanged to Python's bytecode cache (mtime + size).
            st = os.stat(path)
            os.utime(path, (st.st_atime + 10, st.st_mtime + 10))
            m.proc.send_signal(signal.SIGHUP)
            # Replaced, and the old processes have drained and exited (until then one
            # may still take a request the LB sent before it read the GOAWAY).
            wait_for(lambda: not (set(m.pids()) & old_pids) and m.wait_serving() and
                     not m.status()["draining"], 60, message="every process replaced")
            loop.wait_more(50)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        for i in range(20):
            code, _, body = lb_harness.http_request(port, "/version",
                                                    headers={"Host": f"v{i}.test"})
            self.assertEqual(code, 200)
            self.assertTrue(body.endswith(b" 2\n"), body)
        st = m.status()
        self.assertEqual(st["reloads"], 1)
        self.assertEqual([s["recycles"] for s in st["slots"]], [1, 1, 1])

    def test_sigterm_drains_every_process_and_exits_0(self):
        m = start_master(self.sandbox, 2)
        pids = m.pids()
        conn = self.sandbox.connect(m.ports[0])
        conn.send_request(1, "slow", harness.environ("/sleep", query="dur=2"))
        wait_for(lambda: m.status()["slots"][0]["process"]["running"] == 1,
                 message="the slow request running")
        m.proc.send_signal(signal.SIGTERM)
        status, _, body, outcome = conn.read_response(1, timeout=10)
        self.assertEqual((status[:3], body, outcome), ("200", b"slept\n", "complete"))
        self.assertEqual(m.proc.wait(15), 0)
        for pid in pids:
            self.assertFalse(os.path.exists(f"/proc/{pid}") and
                             "zombie" not in harness.read_text(f"/proc/{pid}/status"),
                             f"process {pid} still running")
        self.assertIn("every process has exited; exiting 0", m.proc.output())

    def test_preload_forks_processes_that_serve_and_respawn(self):
        m = start_master(self.sandbox, 2, ["--preload"])
        self.assertTrue(m.status()["preload"])
        lb, port = self.lb_for(m)
        victim = m.pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in m.pids(), message="the killed process replaced")
        m.wait_serving()
        loop = RequestLoop(port, pace=0)
        try:
            loop.wait_more(50)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertEqual(m.proc.stop(), 0)

    def test_a_broken_app_stops_the_master_with_status_2(self):
        m = start_master(self.sandbox, 2, app="no_such_module:application", wait=False)
        self.assertEqual(m.proc.wait(15), 2)
        self.assertIn("before it could serve; stopping", m.proc.output())

    def test_options_need_processes(self):
        r = harness.run_command([harness.binary("zkworker"), "--app=plain_app:application",
                                 "--address=127.0.0.1:0", "--harakiri=5"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("harakiri needs processes", r.stderr)


if __name__ == "__main__":
    unittest.main()
