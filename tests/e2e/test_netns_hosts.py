"""Workers on separate "hosts": two network namespaces joined to this host by veth pairs, a
zkworker in each registering its namespace address in ZooKeeper, zkresumelb on the host.
One host is cut off (its link down) under load: the LB drops it and no request fails; the
link comes back: the worker is in the pool again and serves. Needs root (ip netns); skipped
otherwise."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from zk_lb_harness import RequestLoop, start_zklb, wait_node  # noqa: E402


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20,
                          check=check)


def netns_available():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and iproute2 (ip netns)"
    probe = f"rlbprobe{os.getpid()}"
    if ip("netns", "add", probe, check=False).returncode != 0:
        return "ip netns add is not permitted here"
    ip("netns", "del", probe, check=False)
    return None


class Host:
    """A network namespace with a veth link to this host: 10.231.N.1 (here) - 10.231.N.2."""

    def __init__(self, n):
        tag = f"{os.getpid() % 100000}{n}"
        self.ns = f"rlbh{tag}"
        self.outer, self.inner = f"rv{tag}h", f"rv{tag}n"
        self.subnet = 200 + (os.getpid() + n) % 50
        self.here = f"10.231.{self.subnet}.1"
        self.there = f"10.231.{self.subnet}.2"
        ip("netns", "add", self.ns)
        ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        ip("link", "set", self.inner, "netns", self.ns)
        ip("addr", "add", f"{self.here}/24", "dev", self.outer)
        ip("link", "set", self.outer, "up")
        self.exec("ip", "addr", "add", f"{self.there}/24", "dev", self.inner)
        self.exec("ip", "link", "set", self.inner, "up")
        self.exec("ip", "link", "set", "lo", "up")

    def exec(self, *argv):
        return ip("netns", "exec", self.ns, *argv)

    def cut(self):
        ip("link", "set", self.outer, "down")

    def restore(self):
        ip("link", "set", self.outer, "up")

    def remove(self):
        ip("link", "del", self.outer, check=False)
        ip("netns", "del", self.ns, check=False)


class NetnsHostsTest(harness.E2ETestCase):

    def setUp(self):
        super().setUp()
        reason = netns_available() or zk_harness.zookeeper_available()
        if reason:
            raise unittest.SkipTest(reason)
        zk_harness.require_kazoo()
        # Reachable from the namespaces: ZooKeeper listens on every address.
        self.zk = zk_harness.ZooKeeperServer(tick_time=500,
                                             extra_config={"clientPortAddress": "0.0.0.0"})
        self.addCleanup(self.zk.cleanup)
        self.zk.start()
        self.hosts = []
        for n in (1, 2):
            h = Host(n)
            self.addCleanup(h.remove)
            self.hosts.append(h)

    def start_worker_on(self, host, root):
        argv = ["ip", "netns", "exec", host.ns, harness.binary("zkworker"),
                "--app=plain_app:application", f"--address={host.there}:0", "--threads=1",
                f"--pythonpath={harness.APPS_DIR}", f"--zookeeper={host.here}:{self.zk.port}",
                f"--path={root}/workers", "--zookeeper_session_timeout=2"]
        proc = self.sandbox.start(argv, name=f"worker-{host.ns}")
        m = proc.wait_for_log(harness.LISTENING_RE)
        return proc, f"{host.there}:{m.group('port')}"

    def test_a_host_cut_off_and_back(self):
        root = "/hosts"
        self.zk.create_tree(root)
        lb = start_zklb(self.sandbox, self.zk.connection_string, root,
                        extra_args=["--worker_timeout=2", "--worker_keepalive=0.5"])
        (p1, name1), (p2, name2) = [self.start_worker_on(h, root) for h in self.hosts]
        lb.wait_pool([name1, name2], timeout=20)
        self.assertEqual(sorted(self.zk.children(root + "/workers/providers")),
                         sorted([name1, name2]))
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(30)
        self.assertEqual({r[2] for r in loop.snapshot() if r[2]}, {p1.pid, p2.pid})

        self.hosts[0].cut()
        # The LB notices the silent link and ZooKeeper expires the worker's session.
        wait_for(lambda: name1 not in lb.pool_names(), 30, message="the cut-off worker dropped")
        self.zk.wait_for_children(root + "/workers/providers", [name2], timeout=30)
        before = loop.count()
        loop.wait_more(30)
        self.assertEqual({r[2] for r in loop.snapshot()[before:]}, {p2.pid})

        self.hosts[0].restore()
        wait_node(self.zk, f"{root}/workers/providers/{name1}", timeout=30)
        lb.wait_pool([name1, name2], timeout=30)
        lb.host_served_by(p1.pid, prefix="back")
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])


if __name__ == "__main__":
    unittest.main()
