"""ZooKeeper end to end: settings edited in ZooKeeper change a running zkresumelb (variance,
backlog_history, unskilled_score in PATH's JSON) and a running zkworker (history,
max_skill_age in its path's JSON) without a restart; a removed key (or null) reverts to the
LB's default, and to the worker's own flag or ini value, else its default. Unknown keys get
one warning per change; data with an invalid value is refused as a whole, and the LB's
status document lists what it refused.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import request, wait_for  # noqa: E402
from zk_lb_harness import start_zklb, start_zkworker, wait_node  # noqa: E402

DEFAULTS = {"variance": 1.0, "backlog_history": 9, "unskilled_score": 1.0}


class ZkLbSettingsTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    @property
    def hosts(self):
        return self.zk_server.connection_string

    def wait_settings(self, lb, values, sources, rejected=None):
        """Waits until the status shows these values (pool and settings) and sources, and
        these rejected values (none: no "rejected" key)."""
        want = {k: {"value": v, "source": sources[k]} for k, v in values.items()}
        if rejected:
            want["rejected"] = rejected
        last = [None]

        def check():
            st = lb.status()
            last[0] = (st["settings"], {k: st["pool"][k] for k in values})
            return st if st["settings"] == want and last[0][1] == values else None
        return wait_for(check, 10, message=lambda: f"settings {want} (last: {last[0]})")

    def test_lb_settings_change_live_and_removed_keys_revert(self):
        self.zk_server.create_tree("/ls")
        lb = start_zklb(self.sandbox, self.hosts, "/ls")
        w = start_zkworker(self.sandbox, self.hosts, "/ls/workers")
        lb.wait_pool([w.name])
        default = dict.fromkeys(DEFAULTS, "default")
        zk = dict.fromkeys(DEFAULTS, "zookeeper")
        self.wait_settings(lb, DEFAULTS, default)

        self.zk_server.set_json("/ls", {"variance": 2.5, "backlog_history": 7,
                                        "unskilled_score": 0.5})
        self.wait_settings(lb, {"variance": 2.5, "backlog_history": 7, "unskilled_score": 0.5},
                           zk)
        lb.proc.wait_for_log(r"settings: variance=2\.5 backlog_history=7 unskilled_score=0\.5")

        # Removing one key reverts that one only.
        self.zk_server.set_json("/ls", {"backlog_history": 7, "unskilled_score": 0.5})
        self.wait_settings(lb, {"variance": 1.0, "backlog_history": 7, "unskilled_score": 0.5},
                           dict(zk, variance="default"))

        # Numbers given as text; backlog_history truncates like Python's int().
        self.zk_server.set_json("/ls", {"variance": "4", "backlog_history": "6.2",
                                        "other": "ignored"})
        self.wait_settings(lb, {"variance": 4.0, "backlog_history": 6, "unskilled_score": 1.0},
                           dict(zk, unskilled_score="default"))

        # Invalid settings are refused as a whole: the previous ones stay, and the status
        # document says what was refused and why.
        for bad, rejected in (
                ({"variance": -1}, {"variance": 'pool setting variance="-1": must be > 0'}),
                ({"backlog_history": 0},
                 {"backlog_history": 'pool setting backlog_history="0": must be >= 1'}),
                ({"variance": "fast"},
                 {"variance": 'pool setting variance="fast": not a finite number'}),
                ({"variance": [1]}, {"variance": "pool setting variance=[1]: not a number"})):
            mark = lb.proc.mark()
            self.zk_server.set_json("/ls", bad)
            lb.proc.wait_for_log(r"settings unchanged", since=mark)
            self.wait_settings(lb, {"variance": 4.0, "backlog_history": 6,
                                    "unskilled_score": 1.0},
                               dict(zk, unskilled_score="default"), rejected)
        mark = lb.proc.mark()
        self.zk_server.zk.set("/ls", b"not json")
        lb.proc.wait_for_log(r"/ls: data is not a JSON object; settings unchanged", since=mark)
        self.wait_settings(lb, {"variance": 4.0, "backlog_history": 6, "unskilled_score": 1.0},
                           dict(zk, unskilled_score="default"),
                           {"/ls": "data is not a JSON object"})

        # Every key removed: all defaults again. Empty data means the same.
        self.zk_server.set_json("/ls", {})
        self.wait_settings(lb, DEFAULTS, default)
        self.zk_server.set_json("/ls", {"variance": 3})
        self.wait_settings(lb, dict(DEFAULTS, variance=3.0), dict(default, variance="zookeeper"))
        self.zk_server.zk.set("/ls", b"")
        self.wait_settings(lb, DEFAULTS, default)

        # Same process all along, still serving.
        self.assertTrue(lb.proc.alive())
        self.assertEqual(lb.pid_of_answer(), w.pid)

    def test_null_is_the_default_unknown_keys_warn_rejected_values_are_listed(self):
        self.zk_server.create_tree("/lrules", lb_settings={"variance": 2,
                                                           "unskilled_score": 0.5})
        lb = start_zklb(self.sandbox, self.hosts, "/lrules")
        zk = dict.fromkeys(DEFAULTS, "zookeeper")
        self.wait_settings(lb, dict(DEFAULTS, variance=2.0, unskilled_score=0.5),
                           dict(zk, backlog_history="default"))

        # null means "not set here": the default, not a rejected value.
        mark = lb.proc.mark()
        self.zk_server.set_json("/lrules", {"variance": None, "unskilled_score": 0.5})
        self.wait_settings(lb, dict(DEFAULTS, unskilled_score=0.5),
                           dict(dict.fromkeys(DEFAULTS, "default"), unskilled_score="zookeeper"))
        self.assertEqual(lb.proc.log_lines(r"settings unchanged", since=mark), [])

        # Unknown keys (a misspelt one): one WARNING line naming them, per change of the
        # node's data; the known keys apply.
        mark = lb.proc.mark()
        self.zk_server.set_json("/lrules", {"varience": 3, "backlog_history": 5,
                                            "colour": "red"})
        self.wait_settings(lb, dict(DEFAULTS, backlog_history=5),
                           dict(dict.fromkeys(DEFAULTS, "default"), backlog_history="zookeeper"))
        lb.proc.wait_for_log(r"settings: variance=1 backlog_history=5 ", since=mark)
        warnings = lb.proc.log_lines(r"unknown load balancer setting", since=mark)
        self.assertEqual(len(warnings), 1, warnings)
        self.assertRegex(warnings[0], r"^W.*/lrules: ignoring unknown load balancer settings: "
                                      r"colour, varience$")  # the node's order (sorted keys)
        # The same data written again is no news: no second warning.
        mark = lb.proc.mark()
        self.zk_server.set_json("/lrules", {"varience": 3, "backlog_history": 5,
                                            "colour": "red"})
        lb.proc.wait_for_log(r"settings: variance=1 backlog_history=5 ", since=mark)
        self.assertEqual(lb.proc.log_lines(r"unknown load balancer setting", since=mark), [])

        # One invalid value among valid ones: nothing applies (the old values stay), the
        # status lists the rejected value until valid data replaces it.
        mark = lb.proc.mark()
        self.zk_server.set_json("/lrules", {"variance": 0, "backlog_history": 8})
        lb.proc.wait_for_log(r'/lrules: pool setting variance="0": must be > 0; settings '
                             r"unchanged", since=mark)
        self.wait_settings(lb, dict(DEFAULTS, backlog_history=5),
                           dict(dict.fromkeys(DEFAULTS, "default"), backlog_history="zookeeper"),
                           {"variance": 'pool setting variance="0": must be > 0'})
        self.zk_server.set_json("/lrules", {"variance": 3, "backlog_history": 8})
        self.wait_settings(lb, dict(DEFAULTS, variance=3.0, backlog_history=8),
                           dict(zk, unskilled_score="default"))
        self.assertTrue(lb.proc.alive())

    def test_settings_present_at_start_apply(self):
        self.zk_server.create_tree("/lstart", lb_settings={"unskilled_score": 0.25,
                                                           "backlog_history": 20})
        lb = start_zklb(self.sandbox, self.hosts, "/lstart")
        self.wait_settings(lb, {"variance": 1.0, "backlog_history": 20, "unskilled_score": 0.25},
                           {"variance": "default", "backlog_history": "zookeeper",
                            "unskilled_score": "zookeeper"})

    def test_settings_node_deleted_and_recreated(self):
        # The watch survives the node's deletion: re-creating it applies its data.
        self.zk_server.create_tree("/lgone", lb_settings={"variance": 2})
        lb = start_zklb(self.sandbox, self.hosts, "/lgone")
        self.wait_settings(lb, dict(DEFAULTS, variance=2.0),
                           dict(dict.fromkeys(DEFAULTS, "default"), variance="zookeeper"))
        self.zk_server.delete("/lgone")
        wait_for(lambda: not self.zk_server.exists("/lgone"), 10)
        self.zk_server.create_tree("/lgone", lb_settings={"variance": 5})
        self.wait_settings(lb, dict(DEFAULTS, variance=5.0),
                           dict(dict.fromkeys(DEFAULTS, "default"), variance="zookeeper"))


class ZkWorkerSettingsTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    @property
    def hosts(self):
        return self.zk_server.connection_string

    @staticmethod
    def resumes_after(conn, rno, rclass):
        """Sends one /hello request of `rclass`; returns the RESUME frames the worker sent
        up to its answer to a KEEPALIVE sent after the response."""
        resp = request(conn, rno, "/hello", rclass=rclass)
        assert resp.code == 200 and resp.outcome == "complete", resp
        return [f[2] for f in harness.keepalive_roundtrip(conn) if f[1] == "RESUME"]

    def check_resumes(self, conn, rno, steps):
        """Sends one /hello request per (class, expected résumé classes or None) step and
        checks the RESUME frames: exactly the expected ones, in order, each after its own
        request or at most one request later. (The worker writes a response's end from the
        application thread and sends a résumé that is due from its loop thread just after,
        so the answer to a KEEPALIVE that follows the response may come first.) Returns the
        last request number."""
        got = []  # (step index, sorted classes)
        for i, (cls, _) in enumerate(steps):
            rno += 1
            got += [(i, sorted(r)) for r in self.resumes_after(conn, rno, cls)]
        want = [(i, w) for i, (_, w) in enumerate(steps) if w is not None]
        deadline = time.monotonic() + 10
        while len(got) < len(want) and time.monotonic() < deadline:  # the last one, late
            got += [(len(steps), sorted(f[2])) for f in harness.keepalive_roundtrip(conn)
                    if f[1] == "RESUME"]
        self.assertEqual([g for _, g in got], [w for _, w in want], f"résumés {got}")
        for (at, _), (due, _) in zip(got, want):
            self.assertIn(at - due, (0, 1), f"résumés {got}, expected {want}")
        return rno

    def test_history_changes_when_the_resume_is_sent(self):
        self.zk_server.create_tree("/ws")
        w = start_zkworker(self.sandbox, self.hosts, "/ws/workers")
        wait_node(self.zk_server, w.node)
        w.proc.wait_for_log(r"settings: history=9999 max_skill_age=99990\b")
        conn = self.sandbox.connect(w.port)   # an LB of our own
        self.assertEqual(conn.first_resume, {})
        # Default history (9999): no résumé after a few requests.
        rno = self.check_resumes(conn, 0, [("a", None), ("a", None), ("b", None)])

        mark = w.proc.mark()
        self.zk_server.set_json("/ws/workers", {"history": 2})
        w.proc.wait_for_log(r"settings: history=2 max_skill_age=20\b", since=mark)
        # Now every 2 requests (generations 4, 6, 8: the count goes on across the change).
        rno = self.check_resumes(conn, rno, [
            ("c", ["a", "b", "c"]), ("a", None), ("d", ["a", "b", "c", "d"]), ("a", None),
            ("e", ["a", "b", "c", "d", "e"]), ("a", None)])

        # max_skill_age from ZooKeeper prunes classes unseen for that many requests.
        mark = w.proc.mark()
        self.zk_server.set_json("/ws/workers", {"history": 2, "max_skill_age": 3})
        w.proc.wait_for_log(r"settings: history=2 max_skill_age=3\b", since=mark)
        # Request 10 (class a) sends; classes last seen before generation 10 - 3 go: only
        # e (8) and a (10) remain. At 12: a (10), f (11), g (12).
        rno = self.check_resumes(conn, rno, [("a", ["a", "e"]), ("f", None),
                                             ("g", ["a", "f", "g"])])

        # Keys removed: the defaults (9999, 10 x 9999) again, so no more résumés.
        mark = w.proc.mark()
        self.zk_server.set_json("/ws/workers", {})
        w.proc.wait_for_log(r"settings: history=9999 max_skill_age=99990\b", since=mark)
        rno = self.check_resumes(conn, rno, [(c, None) for c in ("a", "b", "c", "d")])

        # Invalid data: refused, the settings stay.
        mark = w.proc.mark()
        self.zk_server.set_json("/ws/workers", {"history": 2})
        w.proc.wait_for_log(r"settings: history=2 max_skill_age=20\b", since=mark)
        for bad in ({"history": 0}, {"history": "often"}, {"max_skill_age": -5}):
            mark = w.proc.mark()
            self.zk_server.set_json("/ws/workers", bad)
            w.proc.wait_for_log(r"settings unchanged", since=mark)
            self.assertEqual(w.proc.log_lines(r"settings: history=", since=mark), [])
        self.assertTrue(w.proc.alive())

    def test_ini_values_are_the_fallback_null_is_missing_unknown_keys_warn(self):
        # deploy/examples/zk-worker.ini: a key missing in ZooKeeper "reverts to the value
        # below" (the ini's), not to the built-in default.
        self.zk_server.create_tree("/wf")
        ini = self.sandbox.write("fallback.ini", f"""\
[app:main]
use = call:plain_app:make_app

[server:main]
use = egg:zc.resumelb#zk
zookeeper = {self.hosts}
path = /wf/workers
address = 127.0.0.1:0
history = 500
pythonpath = {harness.APPS_DIR}
""")
        proc, port = self.sandbox.start_worker(config=ini, pythonpath=None)
        wait_node(self.zk_server, f"/wf/workers/providers/127.0.0.1:{port}")
        proc.wait_for_log(r"settings: history=500 max_skill_age=5000\b")
        self.assertEqual(proc.log_lines(r"settings: history=9999"), [])

        mark = proc.mark()
        self.zk_server.set_json("/wf/workers", {"history": 3, "max_skill_age": 7})
        proc.wait_for_log(r"settings: history=3 max_skill_age=7\b", since=mark)
        # null means "not set here": the ini's value (history) or the default (10 x history).
        mark = proc.mark()
        self.zk_server.set_json("/wf/workers", {"history": None, "max_skill_age": None})
        proc.wait_for_log(r"settings: history=500 max_skill_age=5000\b", since=mark)
        self.assertEqual(proc.log_lines(r"settings unchanged", since=mark), [])

        # Unknown keys: one WARNING line naming them, per change of the node.
        mark = proc.mark()
        self.zk_server.set_json("/wf/workers", {"histroy": 2, "history": 4, "colour": "red"})
        proc.wait_for_log(r"settings: history=4 max_skill_age=40\b", since=mark)
        warnings = proc.log_lines(r"unknown worker setting", since=mark)
        self.assertEqual(len(warnings), 1, warnings)
        self.assertRegex(warnings[0], r"^W.*/wf/workers: ignoring unknown worker settings: "
                                      r"colour, histroy$")  # the node's order (set_json sorts)
        mark = proc.mark()
        self.zk_server.set_json("/wf/workers", {"history": 4})
        proc.wait_for_log(r"settings: history=4 max_skill_age=40\b", since=mark)
        self.assertEqual(proc.log_lines(r"unknown worker setting", since=mark), [])
        # Every key removed: the ini's value again.
        mark = proc.mark()
        self.zk_server.set_json("/wf/workers", {})
        proc.wait_for_log(r"settings: history=500 max_skill_age=5000\b", since=mark)
        self.assertTrue(proc.alive())

    def test_flag_values_are_the_fallback_too(self):
        self.zk_server.create_tree("/wflag", worker_settings={"max_skill_age": 11})
        w = start_zkworker(self.sandbox, self.hosts, "/wflag/workers",
                           extra_args=["--history=40"])
        w.proc.wait_for_log(r"settings: history=40 max_skill_age=11\b")
        mark = w.proc.mark()
        self.zk_server.set_json("/wflag/workers", {})
        w.proc.wait_for_log(r"settings: history=40 max_skill_age=400\b", since=mark)

    def test_lb_sees_resumes_sent_under_the_new_history(self):
        self.zk_server.create_tree("/wl")
        lb = start_zklb(self.sandbox, self.hosts, "/wl")
        w = start_zkworker(self.sandbox, self.hosts, "/wl/workers")
        lb.wait_pool([w.name])
        w.proc.wait_for_log(r"settings: history=9999\b")
        for i in range(4):
            self.assertEqual(lb.pid_of_answer(host=f"c{i}.test"), w.pid)
        self.assertEqual(lb.detail(w.name)["resume_size"], 0)
        self.assertEqual(lb.detail(w.name)["requests"], 4)
        mark = w.proc.mark()
        self.zk_server.set_json("/wl/workers", {"history": 2})
        w.proc.wait_for_log(r"settings: history=2\b", since=mark)
        for i in range(4, 6):
            self.assertEqual(lb.pid_of_answer(host=f"c{i}.test"), w.pid)
        # The 6th request (a multiple of 2) made the worker send its six classes.
        wait_for(lambda: lb.detail(w.name)["resume_size"] == 6, 10,
                 message=lambda: f"a 6-class résumé at the LB ({lb.detail(w.name)})")
        got = harness.run_command([harness.binary("get-worker-resume"), w.name])
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(sorted(re.findall(r'"(c\d)\.test"', got.stdout)),
                         [f"c{i}" for i in range(6)])


if __name__ == "__main__":
    unittest.main()
