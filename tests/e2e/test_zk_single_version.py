"""ZooKeeper end to end: single-version mode (zkresumelb -v).

Only the workers of the version run by the strictly largest number of connected workers
get requests; ties keep the current version; versionless workers are a group of their
own; a rolling upgrade moves the traffic without a single failed request.
"""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lb_harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from zk_lb_harness import RequestLoop, start_zklb, start_zkworker, wait_node  # noqa: E402


class ZkSingleVersionTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    @property
    def hosts(self):
        return self.zk_server.connection_string

    def add_worker(self, root, version, lb=None):
        w = start_zkworker(self.sandbox, self.hosts, root + "/workers", version=version)
        wait_node(self.zk_server, w.node)
        if lb is not None:
            # Known to the LB (connected, résumé received), whether in the pool or not.
            wait_for(lambda: (lb.detail(w.name) or {}).get("connected"), 10,
                     message=f"the LB connected to {w.name}")
            self.assertEqual(lb.detail(w.name)["version"], version)
        return w

    def wait_version(self, lb, version, names):
        def check():
            st = lb.status()
            if st["pool"]["active_version"] != version:
                return None
            return st if sorted(r[0] for r in st["workers"]) == sorted(names) else None
        return wait_for(check, 10, message=lambda: f"version {version!r} with {sorted(names)} "
                        f"(status pool {lb.status()['pool']}, workers {lb.pool_names()})")

    def served_by(self, lb, n=24):
        return {lb.pid_of_answer(host=f"h{i}.test") for i in range(n)}

    def test_rolling_upgrade_moves_traffic_without_failures(self):
        root = "/roll"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        v1 = [self.add_worker(root, "1", lb) for _ in range(2)]
        st = self.wait_version(lb, "1", [w.name for w in v1])
        self.assertTrue(st["pool"]["single_version"])
        self.assertEqual(len(lb.proc.log_lines(r"VERSION: 1$")), 1)
        v1_pids = {w.pid for w in v1}

        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)

        # 1 and then 2 workers of version 2: not (strictly) more, nothing moves.
        v2 = []
        for _ in range(2):
            v2.append(self.add_worker(root, "2", lb))
            self.wait_version(lb, "1", [w.name for w in v1])
            self.assertFalse(lb.detail(v2[-1].name)["in_pool"])
            loop.wait_more(10)
            self.assertTrue(self.served_by(lb) <= v1_pids)
        self.assertEqual(lb.proc.log_lines(r"VERSION: 2"), [])

        # A slow request in flight on a version-1 worker when the majority moves finishes.
        slow = lb_harness.Background(lb.get, "/sleep?dur=1.5", "slow.test")
        wait_for(lambda: lb.status()["backlog"] >= 1, 5, message="the slow request dispatched")

        # The third version-2 worker makes version 2 the majority.
        before_switch = loop.count()
        v2.append(self.add_worker(root, "2", lb))
        self.wait_version(lb, "2", [w.name for w in v2])
        lb.proc.wait_for_log(r"VERSION: 2$")
        v2_pids = {w.pid for w in v2}
        for w in v1:
            self.assertFalse(lb.detail(w.name)["in_pool"])
            self.assertTrue(lb.detail(w.name)["connected"])
        # The loop sends one request at a time: the one in flight now may have been
        # dispatched before the switch; every later one after it.
        after_switch = loop.count() + 1
        loop.wait_more(30)
        self.assertTrue(self.served_by(lb) <= v2_pids)
        code, _, body = slow.result(10)
        self.assertEqual((code, body), (200, b"slept\n"))

        # The old workers are stopped: nothing fails, the version stays.
        for w in v1:
            w.proc.send_signal(signal.SIGTERM)
        for w in v1:
            self.assertEqual(w.proc.wait(15), 0)
        wait_for(lambda: all(lb.detail(w.name) is None for w in v1), 10,
                 message="the old workers' links gone")
        self.wait_version(lb, "2", [w.name for w in v2])
        loop.wait_more(20)
        results = loop.stop()

        self.assertEqual(RequestLoop.failures(results), [], "requests failed during the upgrade")
        self.assertGreater(len(results), 100)
        pids_before = {r[2] for r in results[:before_switch]}
        pids_after = {r[2] for r in results[after_switch:]}
        self.assertTrue(pids_before <= v1_pids, pids_before)
        self.assertEqual(pids_before, v1_pids, "both version-1 workers served before")
        self.assertTrue(pids_after <= v2_pids, pids_after)
        self.assertEqual(len(pids_after), 3, "every version-2 worker serves after the switch")
        self.assertEqual(len(lb.proc.log_lines(r"VERSION: ")), 2)

    def test_versionless_workers_are_a_group_of_their_own(self):
        root = "/nover"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        none1 = self.add_worker(root, None, lb)
        st = self.wait_version(lb, None, [none1.name])
        self.assertTrue(st["pool"]["single_version"])
        lb.proc.wait_for_log(r"VERSION: None$")
        self.assertIsNone(lb.detail(none1.name)["version"])

        # Two workers of version 1 outnumber the single versionless one.
        v1 = [self.add_worker(root, "1", lb) for _ in range(2)]
        self.wait_version(lb, "1", [w.name for w in v1])
        self.assertTrue(self.served_by(lb) <= {w.pid for w in v1})
        self.assertFalse(lb.detail(none1.name)["in_pool"])

        # One more versionless worker: a tie (2:2), version 1 stays.
        none2 = self.add_worker(root, None, lb)
        self.wait_version(lb, "1", [w.name for w in v1])
        # A third: versionless workers are the majority and get the requests.
        none3 = self.add_worker(root, None, lb)
        nones = [none1, none2, none3]
        self.wait_version(lb, None, [w.name for w in nones])
        self.assertEqual(len(lb.proc.log_lines(r"VERSION: None$")), 2)
        self.assertTrue(self.served_by(lb) <= {w.pid for w in nones})

    def test_active_group_shrinking_hands_over_only_when_outnumbered(self):
        root = "/shrink"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        a = [self.add_worker(root, "a", lb) for _ in range(2)]
        self.wait_version(lb, "a", [w.name for w in a])
        b = self.add_worker(root, "b", lb)
        self.wait_version(lb, "a", [w.name for w in a])
        # One "a" worker goes: 1:1, a tie, "a" stays.
        a[0].proc.send_signal(signal.SIGTERM)
        self.assertEqual(a[0].proc.wait(15), 0)
        self.wait_version(lb, "a", [a[1].name])
        self.assertEqual(self.served_by(lb, 10), {a[1].pid})
        # The last "a" worker dies: "b" takes over.
        a[1].proc.kill()
        self.wait_version(lb, "b", [b.name])
        self.assertEqual(self.served_by(lb, 10), {b.pid})

    def test_status_shows_active_version(self):
        root = "/svstat"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        st = wait_for(lambda: (lambda s: s if s["zookeeper"]["workers_path"] else None)(
            lb.status()), 10, message="workers path")
        self.assertTrue(st["pool"]["single_version"])
        self.assertIsNone(st["pool"]["active_version"])  # no worker yet
        w = self.add_worker(root, "7.1", lb)
        st = self.wait_version(lb, "7.1", [w.name])
        self.assertEqual(st["zookeeper"]["state"], "connected")
        self.assertEqual(st["zookeeper"]["workers_path"], "/svstat/workers/providers")
        d = lb_harness.worker_detail(st, w.name)
        self.assertEqual((d["version"], d["in_pool"], d["connected"]), ("7.1", True, True))


if __name__ == "__main__":
    unittest.main()
