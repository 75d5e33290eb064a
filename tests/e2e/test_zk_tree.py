"""End-to-end tests of deploy/zk-tree against a real (throwaway) ZooKeeper server."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import zk_harness  # noqa: E402

ZK_TREE = os.path.join(harness.SOURCE_DIR, "deploy", "zk-tree")


class ZkTreeTest(zk_harness.ZooKeeperTestCase):

    def zk_tree(self, *args, zookeeper=None, timeout=30):
        argv = [harness.PYTHON, ZK_TREE, "--zookeeper",
                self.zk_server.connection_string if zookeeper is None else zookeeper, *args]
        return harness.run_command(argv, timeout=timeout)

    def ok(self, *args):
        r = self.zk_tree(*args)
        self.assertEqual(r.returncode, 0, f"zk-tree {args}: {r.stdout}{r.stderr}")
        return r

    def fails(self, code, *args, zookeeper=None):
        r = self.zk_tree(*args, zookeeper=zookeeper)
        self.assertEqual(r.returncode, code, f"zk-tree {args}: {r.stdout}{r.stderr}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one error line, got {r.stderr!r}")
        self.assertTrue(lines[0].startswith("zk-tree: error: "), lines[0])
        self.assertNotIn("Traceback", r.stderr)
        return lines[0]

    def raw(self, path):
        return self.zk_server.get_data(path)

    def data(self, path):
        return json.loads(self.raw(path).decode())

    def stat(self, path):
        return self.zk_server.zk.exists(path)

    # ------------------------------------------------------------------ creation

    def test_creates_the_tree(self):
        self.ok("--path", "/create/lb")
        for p in ("/create/lb", "/create/lb/providers", "/create/lb/workers",
                  "/create/lb/workers/providers"):
            self.assertIsNotNone(self.stat(p), p)
        self.assertEqual(self.data("/create/lb"), {})
        self.assertEqual(self.data("/create/lb/workers"), {})
        self.assertEqual(self.zk_server.children("/create/lb"), ["providers", "workers"])
        # Persistent nodes, not ephemeral ones.
        self.assertEqual(self.stat("/create/lb/workers/providers").ephemeralOwner, 0)

    def test_default_path_is_lb(self):
        self.ok()
        self.assertEqual(self.zk_server.children("/lb"), ["providers", "workers"])
        self.assertEqual(self.zk_server.children("/lb/workers"), ["providers"])

    def test_second_run_is_idempotent(self):
        args = ("--path", "/idem", "--lb-setting", "variance=2",
                "--worker-setting", "history=50")
        self.ok(*args)
        paths = ("/idem", "/idem/providers", "/idem/workers", "/idem/workers/providers")
        before = {p: self.stat(p) for p in paths}
        r = self.ok(*args)
        self.assertNotIn("created", r.stdout)
        self.assertNotIn("updated", r.stdout)
        for p in paths:
            after = self.stat(p)
            self.assertEqual(after.czxid, before[p].czxid, p)
            self.assertEqual(after.version, before[p].version, f"{p} was rewritten")
        # A run without settings keeps the settings.
        self.ok("--path", "/idem")
        self.assertEqual(self.data("/idem"), {"variance": 2.0})
        self.assertEqual(self.data("/idem/workers"), {"history": 50})

    def test_existing_providers_are_kept(self):
        self.ok("--path", "/keep")
        c = self.zk_server.client()
        c.create("/keep/workers/providers/127.0.0.1:7001", b'{"pid": 1}', ephemeral=True)
        self.ok("--path", "/keep", "--worker-setting", "history=10")
        self.assertEqual(self.zk_server.children("/keep/workers/providers"), ["127.0.0.1:7001"])

    # ------------------------------------------------------------------ settings

    def test_settings_are_stored_as_json_numbers(self):
        self.ok("--path", "/num", "--lb-setting", "variance=2", "backlog_history=20",
                "unskilled_score=0.5", "--worker-setting", "history=500", "max_skill_age=5e3")
        lb = json.loads(self.raw("/num"))
        self.assertEqual(lb, {"variance": 2.0, "backlog_history": 20, "unskilled_score": 0.5})
        self.assertIsInstance(lb["variance"], float)
        self.assertIsInstance(lb["backlog_history"], int)
        self.assertIn(b'"backlog_history": 20', self.raw("/num"))  # a number, not "20"
        workers = self.data("/num/workers")
        self.assertEqual(workers, {"history": 500, "max_skill_age": 5000})
        self.assertIsInstance(workers["history"], int)
        self.assertIsInstance(workers["max_skill_age"], int)

    def test_unknown_settings_are_stored_with_a_warning(self):
        r = self.ok("--path", "/unknown", "--worker-setting", "threads=1", "note=hello world")
        self.assertIn("warning", r.stderr)
        self.assertEqual(self.data("/unknown/workers"), {"threads": 1, "note": "hello world"})

    def test_merge_keeps_other_keys(self):
        self.ok("--path", "/merge", "--lb-setting", "variance=2", "backlog_history=20")
        self.ok("--path", "/merge", "--lb-setting", "unskilled_score=0.25", "variance=3")
        self.assertEqual(self.data("/merge"),
                         {"variance": 3.0, "backlog_history": 20, "unskilled_score": 0.25})
        # Data written by someone else is merged too.
        self.zk_server.set_json("/merge/workers", {"history": 7, "custom": "x"})
        self.ok("--path", "/merge", "--worker-setting", "max_skill_age=70")
        self.assertEqual(self.data("/merge/workers"),
                         {"history": 7, "custom": "x", "max_skill_age": 70})

    def test_replace_drops_other_keys(self):
        self.ok("--path", "/repl", "--lb-setting", "variance=2", "backlog_history=20",
                "--worker-setting", "history=9")
        self.ok("--path", "/repl", "--replace", "--lb-setting", "unskilled_score=2")
        self.assertEqual(self.data("/repl"), {"unskilled_score": 2.0})
        self.assertEqual(self.data("/repl/workers"), {})

    def test_empty_value_removes_a_key(self):
        self.ok("--path", "/rm", "--lb-setting", "variance=2", "backlog_history=20")
        self.ok("--path", "/rm", "--lb-setting", "variance=")
        self.assertEqual(self.data("/rm"), {"backlog_history": 20})

    def test_non_json_data_needs_replace(self):
        self.zk_server.zk.create("/garbage", b"not json", makepath=True)
        self.fails(1, "--path", "/garbage")
        self.assertEqual(self.raw("/garbage"), b"not json")
        self.ok("--path", "/garbage", "--replace", "--lb-setting", "variance=1")
        self.assertEqual(self.data("/garbage"), {"variance": 1.0})

    # ------------------------------------------------------------------ links

    def test_workers_link(self):
        self.ok("--path", "/linked/lb", "--workers-link", "../app",
                "--worker-setting", "history=32", "max_skill_age=90")
        self.assertEqual(self.data("/linked/lb"), {"workers ->": "../app"})
        self.assertIsNone(self.stat("/linked/lb/workers"))
        self.assertIsNotNone(self.stat("/linked/lb/providers"))
        self.assertEqual(self.data("/linked/app"), {"history": 32, "max_skill_age": 90})
        self.assertIsNotNone(self.stat("/linked/app/providers"))
        # Later runs without the flag follow the link instead of shadowing it.
        self.ok("--path", "/linked/lb", "--worker-setting", "history=33",
                "--lb-setting", "variance=2")
        self.assertIsNone(self.stat("/linked/lb/workers"))
        self.assertEqual(self.data("/linked/app"), {"history": 33, "max_skill_age": 90})
        self.assertEqual(self.data("/linked/lb"), {"workers ->": "../app", "variance": 2.0})
        # --replace keeps the link.
        self.ok("--path", "/linked/lb", "--replace")
        self.assertEqual(self.data("/linked/lb"), {"workers ->": "../app"})

    def test_absolute_workers_link(self):
        self.ok("--path", "/abs/lb", "--workers-link", "/abs-app/workers")
        self.assertEqual(self.data("/abs/lb"), {"workers ->": "/abs-app/workers"})
        self.assertIsNotNone(self.stat("/abs-app/workers/providers"))

    def test_link_over_a_real_workers_node_is_refused(self):
        self.ok("--path", "/real")
        line = self.fails(1, "--path", "/real", "--workers-link", "../app")
        self.assertIn("/real/workers", line)
        self.assertEqual(self.data("/real"), {})

    def test_link_loop_is_refused(self):
        self.fails(2, "--path", "/loop", "--workers-link", "workers")
        self.assertIsNone(self.stat("/loop"))

    # ------------------------------------------------------------------ show

    def test_show(self):
        self.ok("--path", "/shown/lb", "--lb-setting", "variance=2",
                "--worker-setting", "history=5")
        c = self.zk_server.client()
        c.create("/shown/lb/workers/providers/127.0.0.1:7002", b'{"pid": 42}', ephemeral=True)
        out = self.ok("--path", "/shown/lb", "--show").stdout
        self.assertIn("/shown/lb\n", out)
        self.assertIn("variance = 2.0", out)
        self.assertIn("history = 5", out)
        self.assertIn("/127.0.0.1:7002  # ephemeral", out)
        self.assertIn("pid = 42", out)

    def test_show_alone_changes_nothing(self):
        self.fails(1, "--path", "/nothing-here", "--show")
        self.assertIsNone(self.stat("/nothing-here"))

    def test_show_follows_links(self):
        self.ok("--path", "/sl/lb", "--workers-link", "../app", "--worker-setting", "history=3")
        out = self.ok("--path", "/sl/lb", "--show").stdout
        self.assertIn("workers -> ../app", out)
        self.assertIn("/sl/app\n", out)
        self.assertIn("history = 3", out)

    # ------------------------------------------------------------------ errors

    def test_unreachable_zookeeper_fails_fast_with_one_line(self):
        port = harness.free_port()
        start = time.monotonic()
        line = self.fails(1, "--path", "/x", "--timeout", "3", zookeeper=f"127.0.0.1:{port}")
        self.assertLess(time.monotonic() - start, 10)
        self.assertIn(f"127.0.0.1:{port}", line)

    def test_bad_zookeeper_address(self):
        self.fails(2, zookeeper="127.0.0.1:notaport")
        self.fails(2, zookeeper="")

    def test_bad_input(self):
        self.fails(2, "--lb-setting", "variance")           # no '='
        self.fails(2, "--lb-setting", "variance=fast")      # not a number
        self.fails(2, "--worker-setting", "history=1.5")    # not an integer
        self.fails(2, "--worker-setting", "history=0")
        self.fails(2, "--lb-setting", "workers ->=x")       # link syntax is not a setting
        self.fails(2, "--path", "lb")
        self.fails(2, "--path", "/lb/")
        self.fails(2, "--path", "/a/../b")
        self.fails(2, "--no-such-option")
        self.assertIsNone(self.stat("/a"))

    def test_help(self):
        r = self.ok("--help")
        self.assertIn("--workers-link", r.stdout)


if __name__ == "__main__":
    unittest.main()
