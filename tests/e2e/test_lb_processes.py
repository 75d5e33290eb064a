"""resumelb / zkresumelb --processes=N: N event-loop processes share the listening port
(SO_REUSEPORT) under a master that respawns them and passes signals on; each has its own
status socket (lb.sock -> lb.I.sock); the processes agree on where a class goes (the default pool's
consistent-hash placement); in ZooKeeper mode one registration is held by the group and
taken over by a sibling when its holder dies (docs/operations.md, "Using more cores")."""
import collections
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import lb_harness  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from lb_harness import LB_LISTENING_RE, http_request, pid_answer  # noqa: E402
from zk_lb_harness import (ZKLB_LISTENING_RE, node_owner, start_zkworker,  # noqa: E402
                           zkresumelb_binary)

N = 3


def listening(proc, pattern, n):
    """The (pid, port) of the first `n` listening lines."""
    def check():
        found = [(int(m.group("pid")), int(m.group("port")))
                 for m in re.finditer(pattern, proc.output(), re.M)]
        return found[:n] if len(found) >= n else None
    return wait_for(check, message=f"{n} listening lines")


class LbProcessesTest(harness.E2ETestCase):

    def start_group(self, workers, extra=()):
        status = self.sandbox.path("lb.sock")
        argv = [lb_harness.lb_binary(), "-LINFO", "-a", "127.0.0.1:0", "-s", status,
                f"--processes={N}", *extra, *[lb_harness.worker_name(p) for _, p in workers]]
        master = self.sandbox.start(argv, name="resumelb-master")
        procs = listening(master, LB_LISTENING_RE, N)
        pids = {pid for pid, _ in procs}
        ports = {port for _, port in procs}
        self.assertEqual(len(pids), N, procs)
        self.assertNotIn(master.pid, pids)
        self.assertEqual(len(ports), 1, f"every process listens on one port: {procs}")
        sockets = [self.sandbox.path(f"lb.{i}.sock") for i in range(N)]  # lb.sock -> lb.I.sock
        wait_for(lambda: all(os.path.exists(s) for s in sockets), message="status sockets")
        for s in sockets:  # every process connected every worker
            wait_for(lambda s=s: len(lb_harness.read_status(s)["workers"]) == len(workers),
                     message=f"workers in {s}")
            # One of a group: new classes are placed alike in every process.
            self.assertEqual(lb_harness.read_status(s)["pool"]["placement"], "ring")
        return master, ports.pop(), sockets

    def test_processes_share_the_port_agree_and_are_respawned(self):
        workers = lb_harness.start_workers(self.sandbox, 2)
        worker_pids = {p.pid for p, _ in workers}
        master, port, sockets = self.start_group(workers)

        # New connections are spread over the processes by the kernel; each request here
        # is a new connection. Every class is served by one worker, whichever process
        # took the connection (the same consistent-hash placement in each).
        served = collections.defaultdict(set)
        for _ in range(4):
            for i in range(12):
                code, _, body = http_request(port, "/pid", headers={"Host": f"c{i}.test"})
                self.assertEqual(code, 200, body)
                pid, cls = pid_answer(body)
                self.assertIn(pid, worker_pids)
                served[cls].add(pid)
        for cls, pids in served.items():
            self.assertEqual(len(pids), 1, f"class {cls} served by {pids}")
        counts = [lb_harness.read_status(s)["totals"]["requests"] for s in sockets]
        self.assertEqual(sum(counts), 48, counts)
        self.assertGreaterEqual(sum(c > 0 for c in counts), 2, f"one process took all: {counts}")

        # A process killed is replaced: a new listening line, a new pid, the same port.
        victim = int(master.wait_for_log(r"process 1 started \(pid (\d+)\)").group(1))
        mark = master.mark()
        os.kill(victim, signal.SIGKILL)
        master.wait_for_log(rf"process 1 \(pid {victim}\) was killed by signal 9", since=mark)
        m = master.wait_for_log(LB_LISTENING_RE, since=mark)
        self.assertNotEqual(int(m.group("pid")), victim)
        self.assertEqual(int(m.group("port")), port)
        wait_for(lambda: len(lb_harness.read_status(sockets[1])["workers"]) == 2,
                 message="the new process connected to the workers")
        for i in range(12):
            code, _, body = http_request(port, "/pid", headers={"Host": f"c{i}.test"})
            self.assertEqual(code, 200, body)

        # SIGHUP is passed on (each process reopens its files), SIGTERM drains them all.
        mark = master.mark()
        master.popen.send_signal(signal.SIGHUP)
        master.wait_for_log(r"SIGHUP: passing it on", since=mark)
        self.assertEqual(master.stop(signal.SIGTERM), 0)
        self.assertEqual(len(master.log_lines(r"\] exiting$")), N)

    def test_bad_process_counts_and_a_taken_port_are_one_error_line(self):
        for bad in ("0", "257", "x"):
            r = lb_harness.run_lb([f"--processes={bad}", "127.0.0.1:1"])
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("processes", r.stderr, bad)
        r = lb_harness.run_lb(["--placement=hash", "127.0.0.1:1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--placement must be auto, ring or lru", r.stderr)
        r = lb_harness.run_lb(["--processes=2", "--admin_address=127.0.0.1:65535", "127.0.0.1:1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("past 65535", r.stderr)
        r = lb_harness.run_lb(["--processes=3", "-a", "127.0.0.1:18080",
                               "--admin_address=127.0.0.1:18079", "127.0.0.1:1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("admin port 127.0.0.1:18080 is the listening address", r.stderr)
        # A port another process listens on (without SO_REUSEPORT): refused before forking.
        workers = lb_harness.start_workers(self.sandbox, 1)
        taken = workers[0][1]
        r = lb_harness.run_lb(["--processes=2", "-a", f"127.0.0.1:{taken}", "127.0.0.1:1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"cannot listen on 127.0.0.1:{taken}", r.stderr)
        self.assertNotIn("process 0 started", r.stderr)


class PlacementTest(harness.E2ETestCase):

    def test_a_lone_lb_uses_lru_unless_told(self):
        workers = lb_harness.start_workers(self.sandbox, 1)
        ports = [p for _, p in workers]
        for args, want in (((), "lru"), (("--placement=ring",), "ring"),
                           (("-p", "classic", "--placement=ring"), "lru")):
            status = self.sandbox.path(f"placement-{want}-{len(args)}.sock")
            lb, _ = lb_harness.start_lb(self.sandbox, ports, ["-s", status, *args])
            wait_for(lambda: os.path.exists(status), message="status socket")
            self.assertEqual(lb_harness.read_status(status)["pool"]["placement"], want, args)
            self.assertEqual(lb.stop(), 0)


class ZkLbProcessesTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def test_one_registration_taken_over_by_a_sibling(self):
        root = "/procs"
        self.zk_server.create_tree(root)
        hosts = self.zk_server.connection_string
        w = start_zkworker(self.sandbox, hosts, root + "/workers")
        argv = [zkresumelb_binary(), "-LINFO", "-a", "127.0.0.1:0", "--processes=2",
                "--zookeeper_session_timeout=2", hosts, root]
        master = self.sandbox.start(argv, name="zkresumelb-master")
        procs = listening(master, ZKLB_LISTENING_RE, 2)
        port = procs[0][1]
        node = f"{root}/providers/127.0.0.1:{port}"
        self.zk_server.wait_for_children(root + "/providers", [f"127.0.0.1:{port}"])
        owner = zk_harness.wait_for(lambda: node_owner(self.zk_server, node), 10,
                                    message="the group's registration")
        self.assertEqual(master.log_lines(r"is held by another ZooKeeper session"), [])
        holder = self.zk_server.get_json(node)["pid"]
        self.assertIn(holder, {pid for pid, _ in procs})
        code, _, body = http_request(port, "/pid", headers={"Host": "z.test"})
        self.assertEqual((code, pid_answer(body)[0]), (200, w.pid))
        # The holder dies: its session goes with it (the kernel closes its socket at
        # once), and the sibling registers the address.
        os.kill(holder, signal.SIGKILL)
        wait_for(lambda: (node_owner(self.zk_server, node) not in (None, owner))
                 and self.zk_server.get_json(node)["pid"] != holder, 20,
                 message="a sibling's registration")
        self.assertEqual(master.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()
