"""ZooKeeper end to end: faults. ZooKeeper unreachable at start, killed and restarted
under traffic (a short outage keeps the sessions; a long one expires them), sessions
expired by freezing zkresumelb or a zkworker, registration flapping, and children that
vanish between listing and reading.

Sessions are short (2-4 s) and the servers' tickTime is 500 ms, so the server grants
them ([2, 20] x tickTime). After every fault the tests check that registrations are back
and that the watches still work: a worker added afterwards is discovered and a settings
change still applies.
"""

import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lb_harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import free_port, wait_for  # noqa: E402
from zk_lb_harness import (RequestLoop, node_data, node_owner, start_zklb,  # noqa: E402
                           start_zkworker, wait_no_node, wait_node)

TICK = 500
# Warning and error lines (glog's W/E/F prefixes) and anything the ZooKeeper C client
# prints itself (ZOO_ERROR@..., ZOO_WARN@...).
ZK_NOISE_RE = r"^[WEF]\d{8} |ZOO_(ERROR|WARN|INFO|DEBUG)"


class ZkTestBase(zk_harness.ZooKeeperTestCase):
    zk_tick_time = TICK

    def new_server(self):
        """A ZooKeeper server of this test's own (to kill and restart)."""
        zk = zk_harness.ZooKeeperServer(tick_time=TICK, prefix="rlb-zk-fault-")
        self.addCleanup(zk.cleanup)
        return zk

    def wait_status(self, lb, pred, what, timeout=15):
        last = [None]

        def check():
            last[0] = lb.status()
            return last[0] if pred(last[0]) else None
        return wait_for(check, timeout, message=lambda: f"{what} (last zookeeper status: "
                        f"{(last[0] or {}).get('zookeeper')})")

    def assert_watches_work(self, zk, lb, root, workers, session_timeout):
        """A worker added now is discovered (children watch) and a settings change applies
        (data watch) - on the LB and on the workers."""
        w = start_zkworker(self.sandbox, zk.connection_string, root + "/workers",
                           session_timeout=session_timeout, name="late-worker")
        wait_node(zk, w.node)
        lb.wait_pool([x.name for x in workers] + [w.name], timeout=10)
        lb.host_served_by(w.pid, prefix="late")
        value = 1.5 + len(lb.proc.log_lines(r"settings: variance="))
        zk.set_json(root, {"variance": value})
        self.wait_status(lb, lambda s: s["settings"]["variance"] == {
            "value": value, "source": "zookeeper"}, f"variance {value} from ZooKeeper")
        marks = [x.proc.mark() for x in workers]
        zk.set_json(root + "/workers", {"history": 77})
        for x, mark in zip(workers, marks):
            x.proc.wait_for_log(r"settings: history=77 max_skill_age=770\b", since=mark)
        return w


class ZkServerFaultTest(ZkTestBase):
    """Faults of the ZooKeeper server itself (each test runs its own server)."""

    def test_unreachable_at_start_then_comes_up(self):
        port = free_port()
        hosts = f"127.0.0.1:{port}"
        lb = start_zklb(self.sandbox, hosts, "/up", session_timeout=4)
        st = lb.status()
        self.assertEqual(st["zookeeper"]["state"], "connecting")
        self.assertIsNone(st["zookeeper"]["workers_path"])
        self.assertEqual(st["zookeeper"]["sessions"], 0)
        w = start_zkworker(self.sandbox, hosts, "/up/workers", session_timeout=4)
        # A request made now waits for a worker (the LB listens at once).
        early = lb_harness.Background(lb.get, "/pid", "early.test")
        warning = (r"^W.*ZooKeeper at " + re.escape(hosts) +
                   r" not reachable for \d+ s; still trying")
        lb.proc.wait_for_log(warning, timeout=10)
        w.proc.wait_for_log(warning, timeout=10)
        self.assertFalse(early.done())
        # One clear warning, not a flood: no line per reconnection attempt from the client
        # library, no other warnings (the documented rate is one warning per 10 s).
        for proc in (lb.proc, w.proc):
            noise = proc.log_lines(ZK_NOISE_RE)
            self.assertLessEqual(len(noise), 2, f"{proc.name} logged {len(noise)} warning "
                                 f"lines in ~3 s without ZooKeeper:\n" + "\n".join(noise[:10]))

        zk = self.new_server()
        zk.start(port=port)
        zk.create_tree("/up")
        wait_node(zk, w.node, timeout=15)
        wait_node(zk, lb.node, timeout=15)
        lb.wait_pool([w.name], timeout=10)
        code, _, body = early.result(15)
        self.assertEqual(code, 200, body)
        self.assertEqual(lb_harness.pid_answer(body)[0], w.pid)
        st = self.wait_status(lb, lambda s: s["zookeeper"]["state"] == "connected",
                              "connected")
        self.assertEqual(st["zookeeper"]["sessions"], 1)
        self.assertEqual(st["zookeeper"]["workers_path"], "/up/workers/providers")
        self.assert_watches_work(zk, lb, "/up", [w], 4)

    def start_cluster(self, zk, root, session_timeout, n=2):
        zk.create_tree(root)
        lb = start_zklb(self.sandbox, zk.connection_string, root,
                        session_timeout=session_timeout)
        workers = [start_zkworker(self.sandbox, zk.connection_string, root + "/workers",
                                  session_timeout=session_timeout) for _ in range(n)]
        lb.wait_pool([w.name for w in workers])
        owners = {x.node: wait_node(zk, x.node) for x in [lb, *workers]}
        return lb, workers, owners

    def test_short_outage_under_traffic_keeps_sessions(self):
        zk = self.new_server()
        zk.start()
        lb, workers, owners = self.start_cluster(zk, "/short", session_timeout=4)
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)
        marks = {p.name: p.mark() for p in [lb.proc] + [w.proc for w in workers]}
        zk.restart(kill=True)
        for p in [lb.proc] + [w.proc for w in workers]:
            p.wait_for_log(r"ZooKeeper connection lost", since=marks[p.name])
            p.wait_for_log(r"ZooKeeper connection restored", since=marks[p.name], timeout=15)
            self.assertEqual(p.log_lines(r"session expired", since=marks[p.name]), [])
        # Same sessions: the registrations are the same nodes.
        for node, owner in owners.items():
            self.assertEqual(node_owner(zk, node), owner, node)
        st = self.wait_status(lb, lambda s: s["zookeeper"]["state"] == "connected",
                              "connected")
        self.assertEqual(st["zookeeper"]["sessions"], 1)
        loop.wait_more(20)
        self.assert_watches_work(zk, lb, "/short", workers, 4)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])

    def test_outage_longer_than_session_timeout_same_port(self):
        # The server is down for longer than the 2 s sessions. A restarted standalone
        # server reloads its sessions with fresh timeouts, so the clients may well keep
        # theirs; either way everything must be back.
        zk = self.new_server()
        zk.start()
        lb, workers, owners = self.start_cluster(zk, "/long", session_timeout=2)
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)
        mark = lb.proc.mark()
        zk.kill()
        lb.proc.wait_for_log(r"not reachable for [3-9] s", since=mark, timeout=15)
        loop.wait_more(20)
        zk.start(port=zk.port)
        for node in owners:
            wait_node(zk, node, timeout=15)
        self.wait_status(lb, lambda s: s["zookeeper"]["state"] == "connected", "connected")
        self.assert_watches_work(zk, lb, "/long", workers, 2)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])

    def test_outage_that_expires_the_sessions(self):
        # The server is away long enough for every session to expire: it comes back on
        # another port first (unreachable for the clients, like a partition) until it has
        # expired the sessions and deleted their ephemeral nodes, then on its own port.
        zk = self.new_server()
        zk.start()
        root = "/expire"
        lb, workers, owners = self.start_cluster(zk, root, session_timeout=2)
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        loop.wait_more(20)
        marks = {p.name: p.mark() for p in [lb.proc] + [w.proc for w in workers]}
        home = zk.port
        zk.kill()
        zk.start(port=free_port())
        zk.wait_for_children(root + "/workers/providers", 0, timeout=20)
        zk.wait_for_children(root + "/providers", 0, timeout=20)
        loop.wait_more(20)   # still serving: the LB keeps its workers
        zk.stop()
        zk.start(port=home)
        for p in [lb.proc] + [w.proc for w in workers]:
            p.wait_for_log(r"ZooKeeper session expired; starting a new session",
                           since=marks[p.name], timeout=20)
        for node, owner in owners.items():
            self.assertNotEqual(wait_node(zk, node, timeout=15, owner_not=owner), owner)
        self.assertEqual(node_data(zk, lb.node), {"pid": lb.pid})
        for w in workers:
            self.assertEqual(node_data(zk, w.node), {"pid": w.pid})
        st = self.wait_status(lb, lambda s: s["zookeeper"]["sessions"] == 2 and
                              s["zookeeper"]["state"] == "connected", "a second session")
        self.assertEqual(sorted(r[0] for r in st["workers"]), sorted(w.name for w in workers))
        loop.wait_more(20)
        self.assert_watches_work(zk, lb, root, workers, 2)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])
        self.assertGreater(len(results), 80)


class ZkClientFaultTest(ZkTestBase):
    """Faults on the client side, on the class's server."""

    @property
    def hosts(self):
        return self.zk_server.connection_string

    def test_lb_frozen_past_its_session_timeout(self):
        zk = self.zk_server
        root = "/frozenlb"
        zk.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, session_timeout=2)
        w = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        lb.wait_pool([w.name])
        owner = wait_node(zk, lb.node)
        mark = lb.proc.mark()
        with zk_harness.paused(lb.pid):
            wait_no_node(zk, lb.node, timeout=20)   # the server expired the session
        lb.proc.wait_for_log(r"ZooKeeper session expired; starting a new session",
                             since=mark, timeout=15)
        self.assertNotEqual(wait_node(zk, lb.node, owner_not=owner, timeout=15), owner)
        self.assertEqual(node_data(zk, lb.node), {"pid": lb.pid})
        self.wait_status(lb, lambda s: s["zookeeper"]["sessions"] == 2 and
                         s["zookeeper"]["state"] == "connected", "a second session")
        self.assertEqual(lb.pid_of_answer(), w.pid)
        self.assert_watches_work(zk, lb, root, [w], None)

    def test_worker_frozen_past_its_session_timeout(self):
        zk = self.zk_server
        root = "/frozenw"
        zk.create_tree(root)
        # A long worker timeout: the LB keeps its connection while the worker is frozen.
        lb = start_zklb(self.sandbox, self.hosts, root, extra_args=["--worker_timeout=60"])
        w = start_zkworker(self.sandbox, self.hosts, root + "/workers", session_timeout=2)
        lb.wait_pool([w.name])
        owner = wait_node(zk, w.node)
        mark = w.proc.mark()
        with zk_harness.paused(w.pid):
            wait_no_node(zk, w.node, timeout=20)
        w.proc.wait_for_log(r"ZooKeeper session expired; starting a new session",
                            since=mark, timeout=15)
        self.assertNotEqual(wait_node(zk, w.node, owner_not=owner, timeout=15), owner)
        self.assertEqual(node_data(zk, w.node), {"pid": w.pid})
        lb.wait_pool([w.name])
        self.assertEqual(lb.pid_of_answer(), w.pid)
        # The worker's settings watch was re-armed in its new session.
        self.assert_watches_work(zk, lb, root, [w], 2)
        # One connection from the LB all along.
        self.assertEqual(len(w.connected_lines()), 1, w.connected_lines())

    def test_flapping_registration_keeps_the_one_connection(self):
        zk = self.zk_server
        root = "/flap"
        zk.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root)
        w = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        w2 = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        lb.wait_pool([w.name, w2.name])
        for i in range(48):
            lb.pid_of_answer(host=f"f{i % 24}.test")
        # A client can have its whole response before the LB has read the worker's
        # RESPONSE_END: wait for the last request to be counted as done.
        before_status = wait_for(lambda: (lambda st: st if all(
            d["in_flight"] == 0 for d in st["worker_details"]) else None)(lb.status()), 10,
            message="no request in flight")
        before = lb_harness.worker_detail(before_status, w.name)
        row = lb_harness.worker_entry(before_status, w.name)
        self.assertEqual(len(w.connected_lines()), 1)
        data = zk.get_data(w.node)
        marker = f"{root}/workers/providers/127.0.0.1:{free_port()}"
        for _ in range(3):
            zk.zk.delete(w.node)
            # A marker added after the deletion: once the LB knows it, the LB has seen a
            # list without the worker.
            zk.zk.create(marker, b'{"pid": 1}', ephemeral=True)
            wait_for(lambda: lb.detail(marker.rsplit("/", 1)[1]) is not None, 10,
                     message="the LB to see the marker")
            d = lb.detail(w.name)
            self.assertTrue(d["connected"] and d["in_pool"], d)
            self.assertIn(w.name, lb.pool_names())
            zk.zk.create(w.node, data, ephemeral=True)
            zk.zk.delete(marker)
            wait_for(lambda: lb.detail(marker.rsplit("/", 1)[1]) is None, 10,
                     message="the LB to drop the marker")
        after_status = lb.status()
        after = lb_harness.worker_detail(after_status, w.name)
        self.assertEqual(after, before)
        self.assertEqual(lb_harness.worker_entry(after_status, w.name), row)
        self.assertEqual(len(w.connected_lines()), 1, w.connected_lines())
        self.assertEqual(len(lb.proc.log_lines(r"worker connected " + re.escape(w.name))), 1)
        self.assertEqual(lb.proc.log_lines(r"worker disconnected " + re.escape(w.name)), [])
        pids = {lb.pid_of_answer(host=f"f{i % 24}.test") for i in range(48)}
        self.assertIn(w.pid, pids)
        # Gone for good: deleted and the worker stops - the LB does not reconnect.
        zk.zk.delete(w.node)
        w.proc.kill()
        lb.wait_pool([w2.name], timeout=5)
        wait_for(lambda: lb.detail(w.name) is None, 5, message="the link dropped")

    def test_children_vanishing_between_listing_and_reading(self):
        # In single-version mode the LB reads every child's data after listing them.
        zk = self.zk_server
        root = "/vanish"
        zk.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        w = start_zkworker(self.sandbox, self.hosts, root + "/workers", version="1")
        lb.wait_pool([w.name])
        loop = RequestLoop(lb.port)
        self.addCleanup(loop.stop)
        providers = root + "/workers/providers"
        churn_client = zk.client()
        errors = []

        def churn():
            try:
                for i in range(150):
                    names = [f"{providers}/127.0.0.1:{1 + (i * 5 + k) % 1000}" for k in range(4)]
                    names.append(f"{providers}/bogus-{i}")
                    creates = [churn_client.create_async(n, b'{"pid": 1, "version": "1"}',
                                                         ephemeral=True) for n in names]
                    for c in creates:
                        c.get(10)
                    deletes = [churn_client.delete_async(n) for n in names]
                    for d in deletes:
                        d.get(10)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        t = threading.Thread(target=churn)
        t.start()
        t.join(120)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertTrue(lb.proc.alive())
        # Tracking goes on: a worker added now is discovered; the bogus ones are gone.
        w2 = start_zkworker(self.sandbox, self.hosts, root + "/workers", version="1")
        lb.wait_pool([w.name, w2.name], timeout=10)
        wait_for(lambda: sorted(d["name"] for d in lb.status()["worker_details"]) ==
                 sorted([w.name, w2.name]), 10, message="only the real workers' links left")
        loop.wait_more(20)
        results = loop.stop()
        self.assertEqual(RequestLoop.failures(results), [])


if __name__ == "__main__":
    unittest.main()
