"""ZooKeeper end to end: registration of zkworker and zkresumelb, workers joining and
leaving the LB's pool at run time, LB restarts, symbolic links, the status document.

Each test uses its own root path on the class's ZooKeeper server (tickTime 500 ms, so
session timeouts from 1 to 10 s are granted).
"""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from zk_lb_harness import (node_data, node_owner, start_zklb, start_zkworker,  # noqa: E402
                           wait_no_node, wait_node)

ZK_TREE = os.path.join(harness.SOURCE_DIR, "deploy", "zk-tree")


def non_loopback_ipv4() -> set:
    """The primary IPv4 address of each interface, loopback excluded (SIOCGIFADDR)."""
    import fcntl
    import socket
    import struct
    out = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                res = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            ip = socket.inet_ntoa(res[20:24])
            if not ip.startswith("127."):
                out.add(ip)
    return out


class ZkRegistrationTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    @property
    def hosts(self):
        return self.zk_server.connection_string

    def tree(self, root, lb_settings=None, worker_settings=None):
        self.zk_server.create_tree(root, lb_settings, worker_settings)

    # ------------------------------------------------------------------ workers

    def test_worker_registers_ephemeral_node_with_pid_description_and_version(self):
        self.tree("/wreg")
        w = start_zkworker(self.sandbox, self.hosts, "/wreg/workers", version="1.2",
                           description="blue pool")
        owner = wait_node(self.zk_server, w.node)
        self.assertNotEqual(owner, 0, "the registration must be ephemeral")
        self.assertEqual(node_data(self.zk_server, w.node),
                         {"pid": w.pid, "description": "blue pool", "version": "1.2"})
        self.assertEqual(self.zk_server.children("/wreg/workers/providers"), [w.name])
        # The owner is the worker's own session: it goes when the worker is killed.
        w.proc.kill()
        wait_no_node(self.zk_server, w.node, timeout=30)

    def test_worker_without_description_or_version_registers_only_its_pid(self):
        self.tree("/wbare")
        w = start_zkworker(self.sandbox, self.hosts, "/wbare/workers")
        wait_node(self.zk_server, w.node)
        self.assertEqual(node_data(self.zk_server, w.node), {"pid": w.pid})

    def test_sigterm_deregisters_before_draining(self):
        self.tree("/wterm")
        w = start_zkworker(self.sandbox, self.hosts, "/wterm/workers",
                           session_timeout=10)
        wait_node(self.zk_server, w.node)
        # A request in flight keeps the worker draining for a while after SIGTERM.
        conn = self.sandbox.connect(w.port)
        env = harness.environ("/sleep", query="dur=3")
        conn.send_request(1, "slow", env)
        w.proc.wait_for_log(r"load balancer connected")
        w.proc.send_signal(signal.SIGTERM)
        wait_no_node(self.zk_server, w.node, timeout=1.5)
        self.assertTrue(w.proc.alive(), "the node must go before the drain ends, not at exit")
        status, _, body, outcome = conn.read_response(1, timeout=10)
        self.assertEqual((status[:3], body, outcome), ("200", b"slept\n", "complete"))
        self.assertEqual(w.proc.wait(15), 0)

    def test_worker_ini_with_egg_zc_resumelb_zk(self):
        self.tree("/wini", worker_settings={"history": 7})
        ini = self.sandbox.write("zkworker.ini", f"""\
[app:main]
use = call:plain_app:make_app

[server:main]
use = egg:zc.resumelb#zk
zookeeper = {self.hosts}
path = /wini/workers
address = 127.0.0.1:0
version = 42
description = test
zookeeper_session_timeout = 4
pythonpath = {harness.APPS_DIR}
""")
        proc, port = self.sandbox.start_worker(config=ini, pythonpath=None)
        node = f"/wini/workers/providers/127.0.0.1:{port}"
        wait_node(self.zk_server, node)
        self.assertEqual(node_data(self.zk_server, node),
                         {"pid": proc.pid, "description": "test", "version": "42"})
        # The settings of PATH apply (history=7 -> max_skill_age 70).
        proc.wait_for_log(r"settings: history=7 max_skill_age=70\b")
        # The session timeout from the file was asked for (the server grants 4 s).
        wait_for(lambda: any(s.get("to") == 4000 for s in self.zk_server.sessions()), 10,
                 message="a 4 s session")

    def test_worker_on_all_interfaces_registers_one_address(self):
        # One node, whatever the number of interfaces: the machine's primary address
        # (test_zk_scale.py checks which one, and with a second interface).
        self.tree("/wall")
        proc = self.sandbox.start([harness.binary("zkworker"), "--app=plain_app:application",
                                   f"--pythonpath={harness.APPS_DIR}",
                                   f"--zookeeper={self.hosts}", "--path=/wall/workers"])
        m = proc.wait_for_log(r"zkworker listening on \S*:(?P<port>\d+) \(pid")
        port = m.group("port")
        children = self.zk_server.wait_for_children("/wall/workers/providers",
                                                    lambda c: len(c) >= 1)
        self.assertEqual(len(children), 1, children)
        host, _, p = children[0].rpartition(":")
        self.assertEqual(p, port, children)
        expected = non_loopback_ipv4()
        if expected:
            self.assertIn(host, expected)
        else:
            self.assertEqual(host, "127.0.0.1")
        self.assertEqual(node_data(self.zk_server, "/wall/workers/providers/" + children[0]),
                         {"pid": proc.pid})

    # ------------------------------------------------------------------ no takeover

    def hold(self, node, data):
        """Creates `node` as an ephemeral node of a kazoo session (another "worker");
        returns (client, its session id)."""
        holder = self.zk_server.client(session_timeout=10)
        holder.create(node, json.dumps(data).encode(), ephemeral=True, makepath=True)
        return holder, node_owner(self.zk_server, node)

    def test_worker_never_takes_over_a_node_of_a_live_session(self):
        self.tree("/wheld")
        port = harness.free_port()
        node = f"/wheld/workers/providers/127.0.0.1:{port}"
        data = {"pid": 4242, "description": "the other worker"}
        _, owner = self.hold(node, data)
        t0 = time.monotonic()
        w = start_zkworker(self.sandbox, self.hosts, "/wheld/workers", session_timeout=1,
                           extra_args=[f"--address=127.0.0.1:{port}"])
        self.assertEqual(w.port, port)
        w.proc.wait_for_log(r"is held by another ZooKeeper session \(pid 4242, description "
                            r'"the other worker"\); waiting up to 6 s')
        # Session timeout (1 s) + 5 s, then one error line and a non-zero exit.
        self.assertEqual(w.proc.wait(30), 2)
        self.assertGreater(time.monotonic() - t0, 5.5)
        errors = w.proc.log_lines(r"error")
        self.assertEqual(errors, [
            f"zkworker: error: cannot register 127.0.0.1:{port} in ZooKeeper: {node} is held "
            f'by another live session (pid 4242, description "the other worker") after '
            f"waiting 6 s; is another worker using this address?"])
        # The other session's node is untouched.
        self.assertEqual(node_owner(self.zk_server, node), owner)
        self.assertEqual(node_data(self.zk_server, node), data)

    def test_worker_registers_once_the_held_node_goes(self):
        self.tree("/wgone")
        port = harness.free_port()
        node = f"/wgone/workers/providers/127.0.0.1:{port}"
        holder, owner = self.hold(node, {"pid": 4343})
        w = start_zkworker(self.sandbox, self.hosts, "/wgone/workers", session_timeout=4,
                           extra_args=[f"--address=127.0.0.1:{port}"])
        w.proc.wait_for_log(r"is held by another ZooKeeper session \(pid 4343\); waiting up "
                            r"to 9 s")
        self.assertEqual(node_owner(self.zk_server, node), owner)
        holder.delete(node)
        wait_node(self.zk_server, node, owner_not=owner, timeout=5)
        self.assertEqual(node_data(self.zk_server, node), {"pid": w.pid})
        w.proc.wait_for_log(r"the node held by another session is gone; registering")
        # Registered for good: the deadline is cancelled, a clean stop exits 0.
        self.assertTrue(w.proc.alive())
        self.assertEqual(w.proc.log_lines(r"error"), [])
        mark = w.proc.mark()
        self.assertEqual(w.proc.stop(), 0)
        self.assertEqual(w.proc.log_lines(r"error", since=mark), [])

    def test_worker_restarted_after_a_crash_waits_for_the_stale_node(self):
        self.tree("/wcrash")
        w1 = start_zkworker(self.sandbox, self.hosts, "/wcrash/workers", session_timeout=2)
        old = wait_node(self.zk_server, w1.node)
        w1.proc.kill()
        # Restarted on the same address while the dead session still holds the node: it
        # waits for the session to expire (about 2 s), then registers.
        w2 = start_zkworker(self.sandbox, self.hosts, "/wcrash/workers", session_timeout=2,
                            extra_args=[f"--address={w1.name}"], name="zkworker2")
        self.assertEqual(w2.node, w1.node)
        w2.proc.wait_for_log(rf"is held by another ZooKeeper session \(pid {w1.pid}\); "
                             r"waiting up to 7 s")
        wait_node(self.zk_server, w2.node, owner_not=old, timeout=10)
        self.assertEqual(node_data(self.zk_server, w2.node), {"pid": w2.pid})
        self.assertTrue(w2.proc.alive())

    # ------------------------------------------------------------------ the LB

    def test_lb_registers_and_clean_stop_deregisters_at_once(self):
        self.tree("/lb")
        # The original README's command: zkresumelb -LINFO ZK /lb (with -a for a port; the session
        # timeout is the default 10 s).
        lb = start_zklb(self.sandbox, self.hosts, "/lb", status=False)
        self.assertEqual(lb.proc.argv[1:], ["-LINFO", "-a", "127.0.0.1:0", self.hosts, "/lb"])
        owner = wait_node(self.zk_server, lb.node)
        self.assertNotEqual(owner, 0)
        self.assertEqual(node_data(self.zk_server, lb.node), {"pid": lb.pid})
        self.assertEqual(self.zk_server.children("/lb/providers"), [lb.name])
        lb.proc.wait_for_log(r"registered /lb/providers/" + lb.name.replace(".", r"\."))
        t0 = time.monotonic()
        lb.proc.send_signal(signal.SIGTERM)
        wait_no_node(self.zk_server, lb.node, timeout=3)
        self.assertLess(time.monotonic() - t0, 3, "a clean stop must not wait for the "
                        "10 s session timeout")
        self.assertEqual(lb.proc.wait(15), 0)

    def test_lb_killed_node_goes_after_session_timeout_and_a_new_lb_registers(self):
        self.tree("/lkill")
        lb = start_zklb(self.sandbox, self.hosts, "/lkill", session_timeout=2)
        owner = wait_node(self.zk_server, lb.node)
        wait_for(lambda: any(s.get("sid") == owner and s.get("to") == 2000
                             for s in self.zk_server.sessions()), 10,
                 message="the LB's 2 s session")
        lb.proc.kill()
        t0 = time.monotonic()
        # Not at once: the server only notices when the session times out.
        self.assertEqual(node_owner(self.zk_server, lb.node), owner)
        wait_no_node(self.zk_server, lb.node, timeout=15)
        self.assertGreater(time.monotonic() - t0, 1.0)
        # A new LB registers again.
        lb2 = start_zklb(self.sandbox, self.hosts, "/lkill", session_timeout=2, name="zklb2")
        owner2 = wait_node(self.zk_server, lb2.node)
        self.assertNotEqual(owner2, owner)
        self.assertEqual(node_data(self.zk_server, lb2.node), {"pid": lb2.pid})

    def test_lb_restarted_on_same_address_waits_for_the_stale_node(self):
        # No takeover (docs/operations.md, "Registration conflicts"): the new LB never
        # deletes the node its predecessor's session holds. It waits for that session to
        # expire (4 s), registers then, and serves meanwhile.
        self.tree("/lsame")
        w = start_zkworker(self.sandbox, self.hosts, "/lsame/workers")
        lb = start_zklb(self.sandbox, self.hosts, "/lsame", session_timeout=4)
        old = wait_node(self.zk_server, lb.node)
        lb.proc.kill()
        # A new LB on the same port while the old session still holds the node.
        t0 = time.monotonic()
        lb2 = start_zklb(self.sandbox, self.hosts, "/lsame", session_timeout=4,
                         address=lb.name, name="zklb2")
        self.assertEqual(lb2.node, lb.node)
        lb2.proc.wait_for_log(rf"is held by another ZooKeeper session \(pid {lb.pid}\); "
                              r"waiting up to 9 s")
        self.assertEqual(node_owner(self.zk_server, lb2.node), old)
        lb2.wait_pool([w.name])
        self.assertEqual(lb2.pid_of_answer(), w.pid)
        # The old session expires (about 4 s after the old LB's last heartbeat), its node
        # goes, and the new LB registers.
        new = wait_node(self.zk_server, lb2.node, owner_not=old, timeout=15)
        self.assertGreater(time.monotonic() - t0, 2.0, "registered before the old session "
                           "expired: the stale node was taken over")
        self.assertEqual(node_data(self.zk_server, lb2.node), {"pid": lb2.pid})
        lb2.proc.wait_for_log(r"the node held by another session is gone; registering")
        zk_harness.wait_session_gone(self.zk_server, old, timeout=20)
        self.assertEqual(node_owner(self.zk_server, lb2.node), new)
        self.assertEqual(lb2.proc.log_lines(r"^E\d{4}"), [])

    def test_lb_never_takes_over_a_node_of_a_live_session(self):
        self.tree("/lheld")
        port = harness.free_port()
        node = f"/lheld/providers/127.0.0.1:{port}"
        data = {"pid": 4545}
        holder, owner = self.hold(node, data)
        lb = start_zklb(self.sandbox, self.hosts, "/lheld", session_timeout=1,
                        address=f"127.0.0.1:{port}")
        self.assertEqual(lb.node, node)
        lb.proc.wait_for_log(r"is held by another ZooKeeper session \(pid 4545\); waiting "
                             r"up to 6 s")
        # Session timeout (1 s) + 5 s: one error line; the LB goes on serving, unregistered.
        lb.proc.wait_for_log(r"^E\d+ .* is still held by another live ZooKeeper session "
                             r"\(pid 4545\) after waiting 6 s; is another load balancer "
                             r"using this address\?", timeout=15)
        self.assertEqual(len(lb.proc.log_lines(r"^E\d{4}")), 1)
        self.assertTrue(lb.proc.alive())
        self.assertEqual(lb.status()["zookeeper"]["state"], "connected")
        self.assertEqual(node_owner(self.zk_server, node), owner)
        self.assertEqual(node_data(self.zk_server, node), data)
        # Once the holder's node goes, the LB registers; a clean stop deregisters.
        holder.delete(node)
        wait_node(self.zk_server, node, owner_not=owner, timeout=5)
        self.assertEqual(node_data(self.zk_server, node), {"pid": lb.pid})
        self.assertEqual(lb.proc.stop(), 0)
        wait_no_node(self.zk_server, node, timeout=5)

    def test_new_session_finding_its_node_taken_waits_lb_and_worker(self):
        # A re-registration after a session expiry follows the same rule: the address was
        # taken meanwhile by another session, whose node is never deleted.
        self.tree("/lexp")
        lb = start_zklb(self.sandbox, self.hosts, "/lexp", session_timeout=2)
        w = start_zkworker(self.sandbox, self.hosts, "/lexp/workers", session_timeout=2)
        for proc, node, wait in ((lb.proc, lb.node, 7), (w.proc, w.node, 7)):
            with self.subTest(node=node):
                owner = wait_node(self.zk_server, node)
                mark = proc.mark()
                with zk_harness.paused(proc.pid):
                    wait_no_node(self.zk_server, node, timeout=20)  # the session expired
                    holder, other = self.hold(node, {"pid": 4646})
                proc.wait_for_log(r"ZooKeeper session expired; starting a new session",
                                  since=mark, timeout=15)
                proc.wait_for_log(r"is held by another ZooKeeper session \(pid 4646\); "
                                  rf"waiting up to {wait} s", since=mark)
                self.assertEqual(node_owner(self.zk_server, node), other)
                holder.delete(node)
                new = wait_node(self.zk_server, node, owner_not=other, timeout=5)
                self.assertNotIn(new, (owner, other))
                self.assertEqual(node_data(self.zk_server, node)["pid"], proc.pid)
                self.assertTrue(proc.alive())
        lb.wait_pool([w.name])
        self.assertEqual(lb.pid_of_answer(), w.pid)

    def test_workers_join_and_leave_the_pool_within_two_seconds(self):
        self.tree("/join")
        lb = start_zklb(self.sandbox, self.hosts, "/join")
        wait_for(lambda: lb.status()["zookeeper"]["workers_path"], 10,
                 message="the LB watching its workers")
        self.assertEqual(lb.pool_names(), [])
        workers = []
        for i in range(3):
            w = start_zkworker(self.sandbox, self.hosts, "/join/workers")
            wait_node(self.zk_server, w.node)
            t0 = time.monotonic()
            workers.append(w)
            lb.wait_pool([x.name for x in workers], timeout=2.0)
            self.assertLess(time.monotonic() - t0, 2.0)
        pids = {lb.pid_of_answer("/pid", host=f"h{i}.test") for i in range(30)}
        self.assertTrue(pids <= {w.pid for w in workers}, pids)
        # Stop one: its node goes (deregistration first), then it leaves the pool.
        gone = workers.pop(1)
        t0 = time.monotonic()
        gone.proc.send_signal(signal.SIGTERM)
        wait_no_node(self.zk_server, gone.node, timeout=2.0)
        lb.wait_pool([x.name for x in workers], timeout=2.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(gone.proc.wait(15), 0)
        # The LB neither reconnects to it nor keeps a link.
        wait_for(lambda: lb.detail(gone.name) is None, 5, message="the link dropped")
        lb.proc.wait_for_log(r"worker " + re.escape(gone.name) + r" removed", timeout=5)
        for i in range(20):
            self.assertIn(lb.pid_of_answer("/pid", host=f"h{i}.test"),
                          {w.pid for w in workers})
        # A worker killed outright leaves too (its connection drops at once).
        killed = workers.pop(0)
        killed.proc.kill()
        lb.wait_pool([x.name for x in workers], timeout=2.0)

    def test_status_document_zookeeper_and_settings(self):
        self.tree("/stat", lb_settings={"variance": 3})
        lb = start_zklb(self.sandbox, self.hosts, "/stat")
        w = start_zkworker(self.sandbox, self.hosts, "/stat/workers")
        lb.wait_pool([w.name])
        st = wait_for(lambda: (lambda s: s if s["settings"]["variance"]["source"] == "zookeeper"
                               else None)(lb.status()), 10, message="settings read")
        self.assertEqual(st["zookeeper"]["state"], "connected")
        self.assertEqual(st["zookeeper"]["hosts"], self.hosts)
        self.assertEqual(st["zookeeper"]["path"], "/stat")
        self.assertEqual(st["zookeeper"]["workers_path"], "/stat/workers/providers")
        self.assertEqual(st["zookeeper"]["sessions"], 1)
        self.assertEqual(st["settings"], {
            "variance": {"value": 3.0, "source": "zookeeper"},
            "backlog_history": {"value": 9, "source": "default"},
            "unskilled_score": {"value": 1.0, "source": "default"},
        })
        self.assertEqual(st["pool"]["variance"], 3.0)
        self.assertFalse(st["pool"]["single_version"])
        self.assertIsNone(st["pool"]["active_version"])

    def test_status_while_zookeeper_path_is_missing(self):
        # No tree at all: the LB runs, says where it looks, and picks the tree up later.
        lb = start_zklb(self.sandbox, self.hosts, "/late")
        st = wait_for(lambda: (lambda s: s if s["zookeeper"]["state"] == "connected"
                               else None)(lb.status()), 10, message="connected")
        self.assertIsNone(st["zookeeper"]["workers_path"])
        lb.proc.wait_for_log(r"cannot resolve /late/workers/providers")
        self.tree("/late")
        w = start_zkworker(self.sandbox, self.hosts, "/late/workers")
        lb.wait_pool([w.name], timeout=10)
        self.assertEqual(lb.status()["zookeeper"]["workers_path"], "/late/workers/providers")
        wait_node(self.zk_server, lb.node)

    # ------------------------------------------------------------------ links

    def test_symlinked_workers_made_by_zk_tree(self):
        r = harness.run_command([harness.PYTHON, ZK_TREE, "--zookeeper", self.hosts,
                                 "--path", "/ln/lb", "--workers-link", "../app",
                                 "--worker-setting", "history=32"], timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(node_data(self.zk_server, "/ln/lb").get("workers ->"), "../app")
        self.assertIsNone(node_owner(self.zk_server, "/ln/lb/workers"))
        lb = start_zklb(self.sandbox, self.hosts, "/ln/lb")
        w = start_zkworker(self.sandbox, self.hosts, "/ln/app")
        wait_node(self.zk_server, "/ln/app/providers/" + w.name)
        w.proc.wait_for_log(r"settings: history=32 max_skill_age=320\b")
        st = lb.wait_pool([w.name], timeout=10)
        self.assertEqual(st["zookeeper"]["workers_path"], "/ln/app/providers")
        self.assertEqual(lb.pid_of_answer(), w.pid)
        # The LB itself registers under its own path, not the link target.
        wait_node(self.zk_server, "/ln/lb/providers/" + lb.name)
        # A second worker added later under the target is found too.
        w2 = start_zkworker(self.sandbox, self.hosts, "/ln/app")
        lb.wait_pool([w.name, w2.name], timeout=5)

    def test_symlink_property_written_by_hand_absolute_target(self):
        self.zk_server.set_json("/abs/shared", {})
        self.zk_server.ensure_path("/abs/shared/providers")
        self.zk_server.set_json("/abs/lb", {"workers ->": "/abs/shared", "variance": 2})
        self.zk_server.ensure_path("/abs/lb/providers")
        lb = start_zklb(self.sandbox, self.hosts, "/abs/lb")
        w = start_zkworker(self.sandbox, self.hosts, "/abs/shared")
        st = lb.wait_pool([w.name], timeout=10)
        self.assertEqual(st["zookeeper"]["workers_path"], "/abs/shared/providers")
        # The link property is not a setting; the real setting still applies.
        self.assertEqual(st["settings"]["variance"], {"value": 2.0, "source": "zookeeper"})


if __name__ == "__main__":
    unittest.main()
