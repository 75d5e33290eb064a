"""Authenticated worker links in the ZooKeeper deployment: zkresumelb and zkworker with the
same --link_secret_file serve; a rogue address registered in a world-writable tree (a
listener that cannot prove the secret) is refused and never pooled, so every request goes
to the real worker and the rogue never receives a REQUEST (docs/operations.md,
"Authenticating worker links")."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import zk_harness  # noqa: E402
from test_link_auth import REFUSAL_NOT_AUTHENTICATED, RogueWorker  # noqa: E402
from zk_lb_harness import start_zklb, start_zkworker, wait_node  # noqa: E402


class ZkLinkAuthTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def test_rogue_registration_is_refused(self):
        root = "/linkauth"
        secret = self.sandbox.write("link.secret", "zk link secret\n")
        os.chmod(secret, 0o600)
        hosts = self.zk_server.connection_string
        self.zk_server.ensure_path(root + "/workers/providers")
        good = start_zkworker(self.sandbox, hosts, root + "/workers",
                              extra_args=[f"--link_secret_file={secret}"])
        wait_node(self.zk_server, good.node, timeout=15)
        rogue = RogueWorker()
        self.addCleanup(rogue.stop)
        rogue_name = f"127.0.0.1:{rogue.port}"
        self.zk_server.zk.create(f"{root}/workers/providers/{rogue_name}", b'{"pid": 1}',
                                 ephemeral=True)
        lb = start_zklb(self.sandbox, hosts, root,
                        extra_args=[f"--link_secret_file={secret}"])
        lb.wait_pool([good.name], timeout=15)
        lb.proc.wait_for_log(rf"worker {rogue_name} {REFUSAL_NOT_AUTHENTICATED}", timeout=15)
        for i in range(10):
            self.assertEqual(lb.pid_of_answer(host=f"h{i}.test"), good.pid)
        self.assertEqual(lb.pool_names(), [good.name])
        harness.wait_for(lambda: rogue.connections >= 2, 15, message="the LB retried")
        self.assertNotIn("REQUEST", rogue.received)


if __name__ == "__main__":
    unittest.main()
