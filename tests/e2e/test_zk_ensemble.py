"""zkresumelb and zkworkers against a 3-server ZooKeeper ensemble on loopback (each given all
three addresses): the leader killed under load costs no request and the clients keep their
sessions; a quorum lost for longer than the session timeout costs no request either (the LB
keeps serving the workers it knows), and membership works again once the quorum is back.
docs/operations.md, "Running at scale", says how to size an ensemble."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import zk_harness  # noqa: E402
from zk_lb_harness import RequestLoop, start_zklb, start_zkworker, wait_node  # noqa: E402


class ZkEnsembleTest(harness.E2ETestCase):

    def setUp(self):
        super().setUp()
        zk_harness.require_kazoo()
        reason = zk_harness.zookeeper_available()
        if reason:
            raise unittest.SkipTest(reason)
        self.ens = zk_harness.ZooKeeperEnsemble(3, tick_time=500)
        self.addCleanup(self.ens.cleanup)
        self.ens.start()

    def start_cluster(self, root, session_timeout):
        self.ens.create_tree(root)
        hosts = self.ens.connection_string
        lb = start_zklb(self.sandbox, hosts, root, session_timeout=session_timeout)
        workers = [start_zkworker(self.sandbox, hosts, root + "/workers",
                                  session_timeout=session_timeout) for _ in range(2)]
        lb.wait_pool([w.name for w in workers])
        return lb, workers

    def assert_membership_works(self, lb, root, workers, session_timeout):
        """A worker started now joins the LB's pool and is given classes."""
        w = start_zkworker(self.sandbox, self.ens.connection_string, root + "/workers",
                           session_timeout=session_timeout, name="late-worker")
        wait_node(self.ens, w.node, timeout=15)
        lb.wait_pool([x.name for x in workers] + [w.name], timeout=15)
        lb.host_served_by(w.pid, prefix="late")

    def test_leader_killed_under_load_fails_nothing(self):
        root = "/leader"
        lb, workers = self.start_cluster(root, session_timeout=4)
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)
        procs = [lb.proc] + [w.proc for w in workers]
        marks = {p.name: p.mark() for p in procs}
        old = self.ens.leader()
        old.kill()
        new = self.ens.leader()
        self.assertIsNot(new, old)
        loop.wait_more(30)
        # The sessions move to a surviving server: nobody saw them expire.
        for p in procs:
            self.assertEqual(p.log_lines(r"session expired", since=marks[p.name]), [])
        self.assert_membership_works(lb, root, workers, 4)
        loop.wait_more(20)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertGreater(len(results), 70)

    def test_quorum_lost_longer_than_the_session_timeout(self):
        root = "/quorum"
        lb, workers = self.start_cluster(root, session_timeout=2)
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)
        mark = lb.proc.mark()
        # Two of three down: the third refuses clients (no quorum), so nobody can reach
        # ZooKeeper; the LB says so once the outage is past the 2 s sessions.
        down = [s for s in self.ens.servers if s is not self.ens.servers[0]]
        for s in down:
            s.kill()
        lb.proc.wait_for_log(r"not reachable for [3-9] s", since=mark, timeout=20)
        loop.wait_more(30)   # still serving: the LB keeps the workers it knows
        self.assertEqual(sorted(r[0] for r in lb.status()["workers"]),
                         sorted(w.name for w in workers))
        for s in down:
            s.start(port=s.port, wait=False)
        for s in self.ens.servers:
            s.wait_ready()
        # Registrations are back (the same sessions or new ones) and the LB is connected.
        for w in workers:
            wait_node(self.ens, w.node, timeout=30)
        harness.wait_for(lambda: lb.status()["zookeeper"]["state"] == "connected", 30,
                         message="the LB connected to ZooKeeper again")
        self.assert_membership_works(lb, root, workers, 2)
        loop.wait_more(20)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertGreater(len(results), 70)


if __name__ == "__main__":
    unittest.main()
