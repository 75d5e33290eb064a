"""ZooKeeper digest authentication and ACLs: deploy/zk-tree --auth creates a tree that only
authenticated clients may change; zkworker and zkresumelb with zookeeper_auth register in
it, those without cannot (one clear error line, and they keep running); with --acl private
an LB without credentials cannot even discover the workers (docs/operations.md, "Securing
ZooKeeper")."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from zk_lb_harness import start_zklb, start_zkworker, wait_node, zkresumelb_binary  # noqa: E402

AUTH = "digest:rlb:s3cret:with:colons"
ZK_TREE = os.path.join(harness.SOURCE_DIR, "deploy", "zk-tree")


class ZkAuthTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def zk_tree(self, *args):
        r = subprocess.run([harness.PYTHON, ZK_TREE, "-z", self.zk_server.connection_string,
                            *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def secure_tree(self, root, acl="world-read"):
        self.zk_tree("--path", root, "--auth", AUTH, "--acl", acl)

    def test_only_authenticated_workers_and_lbs_register(self):
        root = "/sec"
        self.secure_tree(root)
        from kazoo.exceptions import NoAuthError
        # An anonymous client may read but not create.
        self.assertEqual(self.zk_server.children(root + "/workers"), ["providers"])
        with self.assertRaises(NoAuthError):
            self.zk_server.zk.create(root + "/workers/providers/rogue.example:1", b"{}")
        hosts = self.zk_server.connection_string

        good = start_zkworker(self.sandbox, hosts, root + "/workers",
                              extra_args=[f"--zookeeper_auth={AUTH}"], name="authed")
        wait_node(self.zk_server, good.node, timeout=15)
        acl, _ = self.zk_server.zk.get_acls(good.node)
        self.assertEqual(sorted((a.id.scheme, a.perms) for a in acl),
                         [("digest", 31), ("world", 1)], acl)

        anon = start_zkworker(self.sandbox, hosts, root + "/workers", name="anonymous")
        anon.proc.wait_for_log(r"^E.*cannot register .*" + anon.node.rsplit("/", 1)[1] +
                               r".*the tree needs credentials: zookeeper_auth", timeout=15)
        self.assertFalse(self.zk_server.exists(anon.node))

        # An LB without credentials still discovers the workers (world-read) but cannot
        # register itself; one with them does both.
        lb_anon = start_zklb(self.sandbox, hosts, root, name="lb-anon")
        lb_anon.wait_pool([good.name], timeout=15)
        lb_anon.proc.wait_for_log(r"^E.*cannot register .*the tree needs credentials",
                                  timeout=15)
        self.assertEqual(lb_anon.pid_of_answer(host="a.test"), good.pid)
        lb = start_zklb(self.sandbox, hosts, root, extra_args=[f"--zookeeper_auth={AUTH}"],
                        name="lb-authed")
        lb.wait_pool([good.name], timeout=15)
        wait_node(self.zk_server, lb.node, timeout=15)
        # Said once, not once per retry.
        self.assertEqual(len(anon.proc.log_lines(r"cannot register")), 1)
        self.assertTrue(anon.proc.popen.poll() is None)

    def test_private_tree_hides_the_workers_from_anonymous_lbs(self):
        root = "/private"
        self.secure_tree(root, "private")
        hosts = self.zk_server.connection_string
        secret = self.sandbox.path("zk.auth")
        with open(secret, "w") as f:
            f.write(AUTH + "\n")
        os.chmod(secret, 0o600)
        w = start_zkworker(self.sandbox, hosts, root + "/workers",
                           extra_args=[f"--zookeeper_auth=file:{secret}"])
        lb = start_zklb(self.sandbox, hosts, root,
                        extra_args=[f"--zookeeper_auth=file:{secret}"], name="lb-authed")
        lb.wait_pool([w.name], timeout=15)
        anon = start_zklb(self.sandbox, hosts, root, name="lb-anon")
        wait_for(lambda: anon.status()["zookeeper"]["state"] == "connected", 15,
                 message="the anonymous LB connected")
        # It cannot read the tree: no workers, and no crash.
        self.assertEqual(anon.pool_names(), [])
        self.assertEqual(lb.pid_of_answer(host="p.test"), w.pid)
        self.assertTrue(anon.proc.popen.poll() is None)

    def test_bad_credentials_are_one_error_line(self):
        hosts = self.zk_server.connection_string
        for bad in ("rlb:secret", "digest:rlb", "digest::pw", "digest:rlb:", "sasl:x:y",
                    "file:/nonexistent/zk.auth"):
            for argv in ([zkresumelb_binary(), f"--zookeeper_auth={bad}", hosts, "/x"],
                         [harness.binary("zkworker"), "--app=plain_app:application",
                          f"--zookeeper={hosts}", "--path=/x/workers",
                          f"--zookeeper_auth={bad}"]):
                r = harness.run_command(argv, timeout=20)
                self.assertNotEqual(r.returncode, 0, (argv, r.stderr))
                self.assertIn("zookeeper_auth", r.stderr, (argv, r.stderr))
                self.assertNotIn("secret", r.stderr.replace("rlb:secret", ""), r.stderr)


if __name__ == "__main__":
    unittest.main()
