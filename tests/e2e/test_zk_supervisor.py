"""zkworker --processes in ZooKeeper mode behind zkresumelb: each process takes a free port
and registers it; a killed process's replacement registers a new address and joins the
LB's pool; a rolling reload never empties the pool and fails no request."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from supervisor_harness import start_master  # noqa: E402
from zk_lb_harness import RequestLoop, start_zklb  # noqa: E402


class ZkSupervisorTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def start(self, root, n):
        self.zk_server.create_tree(root)
        hosts = self.zk_server.connection_string
        m = start_master(self.sandbox, n, ["--zookeeper=" + hosts, "--path=" + root + "/workers",
                                           "--zookeeper_session_timeout=4"],
                         address="127.0.0.1:0")
        lb = start_zklb(self.sandbox, hosts, root)
        return m, lb

    def names(self, m):
        return sorted(s["process"]["address"] for s in m.status()["slots"])

    def test_processes_register_and_a_killed_one_is_replaced_in_the_pool(self):
        m, lb = self.start("/zsup", 3)
        names = self.names(m)
        self.assertEqual(len(set(names)), 3)
        lb.wait_pool(names)
        victim = m.pids()[2]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in m.pids(), message="the killed process replaced")
        m.wait_serving()
        new_names = self.names(m)
        self.assertEqual(len(set(new_names)), 3)
        lb.wait_pool(new_names, timeout=30)
        loop = RequestLoop(lb.port, pace=0)
        try:
            loop.wait_more(30)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])

    def test_rolling_reload_under_load_fails_nothing(self):
        m, lb = self.start("/zreload", 2)
        lb.wait_pool(self.names(m))
        old = set(m.pids())
        loop = RequestLoop(lb.port, pace=0)
        try:
            loop.wait_more(30)
            m.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: not (set(m.pids()) & old) and m.wait_serving(), 60,
                     message="every process replaced")
            lb.wait_pool(self.names(m), timeout=30)
            loop.wait_more(30)
        finally:
            results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertEqual(m.proc.stop(), 0)


if __name__ == "__main__":
    unittest.main()
