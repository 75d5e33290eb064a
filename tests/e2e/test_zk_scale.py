"""ZooKeeper end to end, running at scale: one registration per worker (advertise, the
primary address for a wildcard host), drain and evict through the LB settings node
("disabled"), single-version mode reading each worker node once, and a load balancer
short of file descriptors (more workers than its open-file limit allows) staying visible
and serving.
"""

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import lb_harness  # noqa: E402
import rlbproto  # noqa: E402
import zk_harness  # noqa: E402
from harness import wait_for  # noqa: E402
from zk_lb_harness import (node_data, start_zklb, start_zkworker, wait_node)  # noqa: E402


ZK_TREE = os.path.join(harness.SOURCE_DIR, "deploy", "zk-tree")


def primary_address() -> str:
    """The address zkworker registers for a wildcard host: the default route's source
    address (a UDP connect() sends nothing), else the first non-loopback IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("8.8.8.8", 53))
            ip = s.getsockname()[0]
            if not ip.startswith("127.") and ip != "0.0.0.0":
                return ip
        except OSError:
            pass
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        ip = line.split()[3].split("/")[0]
        if not ip.startswith("127."):
            return ip
    return "127.0.0.1"


class FakeWorkers:
    """Many protocol-speaking workers in one thread: each port accepts connections, sends
    HELLO and a RESUME, answers KEEPALIVE, and answers every request with 200 and the
    body "fake PORT". stop(ports) closes their listeners and connections."""

    def __init__(self, n: int):
        self.sel = selectors.DefaultSelector()
        self.ports = []
        self._listeners = {}
        self._conns = {}  # socket -> (port, FrameReader)
        self._to_stop = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            s.setblocking(False)
            port = s.getsockname()[1]
            self.ports.append(port)
            self._listeners[port] = s
            self.sel.register(s, selectors.EVENT_READ, port)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def names(self, ports=None):
        return [f"127.0.0.1:{p}" for p in (self.ports if ports is None else ports)]

    def stop(self, ports):
        with self._lock:
            self._to_stop.update(ports)
        wait_for(lambda: not self._to_stop, 10, message="fake workers stopped")

    def close(self):
        self._done.set()
        self._thread.join(5)
        for s in list(self._listeners.values()) + list(self._conns):
            s.close()

    def _close_conn(self, conn):
        self.sel.unregister(conn)
        self._conns.pop(conn, None)
        conn.close()

    def _run(self):
        while not self._done.is_set():
            with self._lock:
                stopping, self._to_stop = self._to_stop, set()
            for port in stopping:
                s = self._listeners.pop(port, None)
                if s is not None:
                    self.sel.unregister(s)
                    s.close()
                for conn, (p, _) in list(self._conns.items()):
                    if p == port:
                        self._close_conn(conn)
            for key, _ in self.sel.select(0.05):
                sock, port = key.fileobj, key.data
                if port in self._listeners and sock is self._listeners[port]:
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        continue
                    conn.settimeout(5)
                    conn.sendall(rlbproto.encode_hello("worker", pid=port, software="fake") +
                                 rlbproto.encode_resume({}))
                    self._conns[conn] = (port, rlbproto.FrameReader())
                    self.sel.register(conn, selectors.EVENT_READ, port)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._close_conn(sock)
                    continue
                reader = self._conns[sock][1]
                reader.feed(data)
                out = b""
                for rno, kind, _ in reader:
                    if kind == rlbproto.KEEPALIVE:
                        out += rlbproto.encode_keepalive()
                    elif kind == rlbproto.REQUEST_END:
                        out += (rlbproto.encode_response(rno, "200 OK",
                                                         [("Content-Type", "text/plain")]) +
                                rlbproto.encode_response_body(rno, b"fake %d" % port) +
                                rlbproto.encode_response_end(rno))
                if out:
                    sock.sendall(out)


class ZkScaleTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    @property
    def hosts(self):
        return self.zk_server.connection_string

    def zk_tree(self, root, *args):
        r = subprocess.run([sys.executable, ZK_TREE, "--zookeeper", self.hosts, "--path", root,
                            "--quiet", *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def children(self, path):
        return sorted(self.zk_server.zk.retry(self.zk_server.zk.get_children, path))

    # ------------------------------------------------------------------ one registration

    def test_advertise_flag_registers_exactly_that_address(self):
        self.zk_server.create_tree("/adv")
        w = start_zkworker(self.sandbox, self.hosts, "/adv/workers",
                           extra_args=["--advertise=192.0.2.77:7001"])
        node = "/adv/workers/providers/192.0.2.77:7001"
        wait_node(self.zk_server, node)
        self.assertEqual(node_data(self.zk_server, node), {"pid": w.pid})
        self.assertEqual(self.children("/adv/workers/providers"), ["192.0.2.77:7001"])

    def test_advertise_ini_key_with_port_0_registers_the_bound_port(self):
        self.zk_server.create_tree("/advini")
        ini = self.sandbox.write("advertise.ini", f"""\
[app:main]
use = call:plain_app:make_app

[server:main]
use = egg:zc.resumelb#zk
zookeeper = {self.hosts}
path = /advini/workers
address = 0.0.0.0:0
advertise = lb-visible.example:0
pythonpath = {harness.APPS_DIR}
""")
        proc, port = self.sandbox.start_worker(config=ini, pythonpath=None)
        node = f"/advini/workers/providers/lb-visible.example:{port}"
        wait_node(self.zk_server, node)
        self.assertEqual(self.children("/advini/workers/providers"),
                         [f"lb-visible.example:{port}"])
        self.assertEqual(node_data(self.zk_server, node), {"pid": proc.pid})

    def test_advertise_follows_the_process_ports(self):
        self.zk_server.create_tree("/advproc")
        base = harness.free_port()
        proc = self.sandbox.start([harness.binary("zkworker"), "--app=plain_app:application",
                                   f"--pythonpath={harness.APPS_DIR}",
                                   f"--zookeeper={self.hosts}", "--path=/advproc/workers",
                                   f"--address=127.0.0.1:{base}", "--processes=2",
                                   "--advertise=192.0.2.78:9100"], name="master")
        want = ["192.0.2.78:9100", "192.0.2.78:9101"]
        self.zk_server.wait_for_children("/advproc/workers/providers",
                                         lambda c: sorted(c) == want)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)

    def test_advertise_is_refused_without_a_host_or_outside_zookeeper_mode(self):
        for args, error in (
                (["--zookeeper=127.0.0.1:1", "--path=/x", "--advertise=:8000"],
                 "advertise :8000: give the host load balancers should connect to"),
                (["--address=127.0.0.1:0", "--advertise=10.0.0.1:8000"],
                 "advertise needs ZooKeeper mode (--zookeeper, --path)")):
            r = subprocess.run([harness.binary("zkworker"), "--app=plain_app:application",
                                *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(error, r.stderr)

    def test_all_interfaces_registers_one_node_the_primary_address(self):
        self.zk_server.create_tree("/one")
        for host in (":0", "0.0.0.0:0"):
            proc = self.sandbox.start([harness.binary("zkworker"), "--app=plain_app:application",
                                       f"--pythonpath={harness.APPS_DIR}",
                                       f"--zookeeper={self.hosts}", "--path=/one/workers",
                                       f"--address={host}"])
            m = proc.wait_for_log(r"zkworker listening on \S*:(?P<port>\d+) \(pid")
            name = f"{primary_address()}:{m.group('port')}"
            wait_node(self.zk_server, "/one/workers/providers/" + name)
            self.assertEqual(self.children("/one/workers/providers"), [name])
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(15), 0)
            wait_for(lambda: not self.children("/one/workers/providers"), 10,
                     message="the node gone")

    def test_a_second_interface_adds_no_registration(self):
        # A second interface with an address of its own (one end of a veth pair: the dummy
        # driver is not in every kernel): still one node. Root only.
        if os.geteuid() != 0 or not shutil.which("ip"):
            raise unittest.SkipTest("needs root and ip(8) to add an interface")
        dev = f"rlbif{os.getpid() % 10000}"
        r = subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name",
                            dev + "p"], capture_output=True)
        if r.returncode != 0:
            raise unittest.SkipTest(f"cannot add an interface: {r.stderr!r}")
        self.addCleanup(subprocess.run, ["ip", "link", "del", dev], capture_output=True)
        subprocess.run(["ip", "addr", "add", "198.18.77.1/32", "dev", dev], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "link", "set", dev + "p", "up"], check=True)
        self.zk_server.create_tree("/two")
        proc = self.sandbox.start([harness.binary("zkworker"), "--app=plain_app:application",
                                   f"--pythonpath={harness.APPS_DIR}",
                                   f"--zookeeper={self.hosts}", "--path=/two/workers"])
        m = proc.wait_for_log(r"zkworker listening on \S*:(?P<port>\d+) \(pid")
        name = f"{primary_address()}:{m.group('port')}"
        self.assertNotEqual(primary_address(), "198.18.77.1")
        wait_node(self.zk_server, "/two/workers/providers/" + name)
        self.assertEqual(self.children("/two/workers/providers"), [name])

    # ------------------------------------------------------------------ drain and evict

    def test_disabled_workers_leave_every_pool_live_and_come_back(self):
        root = "/drain"
        self.zk_server.create_tree(root)
        lbs = [start_zklb(self.sandbox, self.hosts, root, name=f"zkresumelb{i}")
               for i in range(2)]
        w1 = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        for lb in lbs:
            lb.wait_pool([w1.name])
        # A slow request in flight on w1 when it is disabled finishes.
        slow = lb_harness.Background(lbs[0].get, "/sleep?dur=2", "slow.test")
        wait_for(lambda: lbs[0].status()["backlog"] >= 1, 10, message="the slow request")
        w2 = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        for lb in lbs:
            lb.wait_pool([w1.name, w2.name])

        self.zk_tree(root, "--disable", w1.name)
        self.assertEqual(node_data(self.zk_server, root), {"disabled": [w1.name]})
        for lb in lbs:
            st = lb.wait_pool([w2.name])
            d = lb_harness.worker_detail(st, w1.name)
            self.assertEqual((d["disabled"], d["in_pool"], d["connected"]), (True, False, True))
            self.assertFalse(lb_harness.worker_detail(st, w2.name)["disabled"])
            self.assertEqual(st["zookeeper"]["disabled"], [w1.name])
            lb.proc.wait_for_log(r"worker \S+ disabled: no new requests")
        code, _, body = slow.result(15)
        self.assertEqual((code, body), (200, b"slept\n"))
        for lb in lbs:
            self.assertEqual({lb.pid_of_answer(host=f"h{i}.test") for i in range(12)},
                             {w2.pid})

        # A value that is not a list is refused: the list in force stays.
        self.zk_server.set_json(root, {"disabled": w1.name})
        for lb in lbs:
            st = wait_for(lambda lb=lb: (lambda s: s if "disabled" in s["settings"].get(
                "rejected", {}) else None)(lb.status()), 10, message="the value rejected")
            self.assertEqual(st["settings"]["rejected"]["disabled"],
                             "disabled: not an array of HOST:PORT strings")
            self.assertEqual(lb.pool_names(), [w2.name])

        # Enabled again: back in every pool, and served.
        self.zk_tree(root, "--enable", w1.name)
        self.assertEqual(node_data(self.zk_server, root), {})
        for lb in lbs:
            st = lb.wait_pool([w1.name, w2.name])
            self.assertFalse(lb_harness.worker_detail(st, w1.name)["disabled"])
            self.assertEqual(st["zookeeper"]["disabled"], [])
            wait_for(lambda lb=lb: w1.pid in {lb.pid_of_answer(host=f"e{i}.test")
                                               for i in range(16)},
                     10, message="the enabled worker serving again")

    def test_zk_tree_refuses_what_is_not_a_worker_address(self):
        for args, error in ((["--disable", "worker1"], "--disable 'worker1': expected a "
                             "worker address HOST:PORT"),
                            (["--enable", "10.0.0.1:http"], "--enable '10.0.0.1:http'"),
                            (["--disable", "10.0.0.1:80", "--enable", "10.0.0.1:80"],
                             "10.0.0.1:80 is given to both --disable and --enable")):
            r = subprocess.run([sys.executable, ZK_TREE, "--zookeeper", self.hosts, *args],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r)
            self.assertIn(error, r.stderr)

    def test_a_disabled_worker_that_appears_later_never_joins(self):
        root = "/drainlate"
        self.zk_server.create_tree(root)
        lb = start_zklb(self.sandbox, self.hosts, root)
        w1 = start_zkworker(self.sandbox, self.hosts, root + "/workers")
        lb.wait_pool([w1.name])
        port = harness.free_port()
        self.zk_server.set_json(root, {"disabled": [f"127.0.0.1:{port}"]})
        wait_for(lambda: lb.status()["zookeeper"]["disabled"] == [f"127.0.0.1:{port}"], 10,
                 message="the list in force")
        w2 = start_zkworker(self.sandbox, self.hosts, root + "/workers",
                            extra_args=[f"--address=127.0.0.1:{port}"])
        wait_for(lambda: (lb.detail(w2.name) or {}).get("connected"), 10,
                 message="the LB connected to the disabled worker")
        st = lb.status()
        self.assertEqual(sorted(r[0] for r in st["workers"]), [w1.name])
        self.assertTrue(lb.detail(w2.name)["disabled"])

    # ------------------------------------------------------------------ single version

    def test_single_version_reads_each_worker_node_once(self):
        root = "/sv"
        self.zk_server.create_tree(root)
        providers = root + "/workers/providers"
        lb = start_zklb(self.sandbox, self.hosts, root, single_version=True)
        # Nodes of workers that are not running: the LB lists them with their versions.
        names = [f"127.0.0.1:{harness.free_port()}" for _ in range(6)]
        zk = self.zk_server.zk

        def versions():
            return {d["name"]: d["version"] for d in lb.status()["worker_details"]}

        def wait_versions(want):
            last = [None]

            def check():
                last[0] = versions()
                return last[0] == want
            wait_for(check, 10, message=lambda: f"versions {want} (last: {last[0]})")

        for name in names[:5]:
            zk.create(f"{providers}/{name}", json.dumps({"pid": 1, "version": "1"}).encode(),
                      ephemeral=True)
        wait_versions({n: "1" for n in names[:5]})
        self.assertEqual(lb.status()["zookeeper"]["worker_node_reads"], 5)
        # One more: one more read, not six.
        zk.create(f"{providers}/{names[5]}", json.dumps({"version": "2"}).encode(),
                  ephemeral=True)
        wait_versions({**{n: "1" for n in names[:5]}, names[5]: "2"})
        self.assertEqual(lb.status()["zookeeper"]["worker_node_reads"], 6)
        # One goes: no read at all.
        zk.delete(f"{providers}/{names[0]}")
        wait_versions({**{n: "1" for n in names[1:5]}, names[5]: "2"})
        self.assertEqual(lb.status()["zookeeper"]["worker_node_reads"], 6)
        # One node's data changes: that node is read again, and its version follows.
        zk.set(f"{providers}/{names[1]}", json.dumps({"version": "3"}).encode())
        wait_versions({names[1]: "3", **{n: "1" for n in names[2:5]}, names[5]: "2"})
        self.assertEqual(lb.status()["zookeeper"]["worker_node_reads"], 7)

    # ------------------------------------------------------------------ file descriptors

    def test_more_workers_than_file_descriptors(self):
        root = "/fds"
        self.zk_server.create_tree(root)
        providers = root + "/workers/providers"
        fakes = FakeWorkers(90)
        self.addCleanup(fakes.close)
        for name in fakes.names():
            self.zk_server.zk.create(f"{providers}/{name}", b'{"pid": 1}', ephemeral=True)
        lb = start_zklb(self.sandbox, self.hosts, root, extra_args=["-m", "8"],
                        prefix=["prlimit", "--nofile=128:128"])

        def fds():
            return lb.status()["file_descriptors"]
        st = lb.status()
        self.assertEqual(st["file_descriptors"]["limit"], 128)
        self.assertEqual(st["file_descriptors"]["client_reserve"], 8)
        capacity = st["file_descriptors"]["worker_capacity"]
        self.assertGreater(capacity, 0)
        self.assertLess(capacity, 90)

        def connected():
            return sorted(d["name"] for d in lb.status()["worker_details"] if d["connected"])
        # As many links as fit; the others known, not connected, and why.
        st = wait_for(lambda: (lambda s: s if len([d for d in s["worker_details"]
                                                   if d["connected"]]) == capacity and
                               s["file_descriptors"]["workers_waiting"] == 90 - capacity
                               else None)(lb.status()), 20,
                      message=lambda: f"{capacity} workers connected, the rest waiting "
                                      f"({fds()})")
        self.assertEqual(st["file_descriptors"]["worker_connections"], capacity)
        waiting = [d for d in st["worker_details"] if not d["connected"]]
        self.assertEqual(len(waiting), 90 - capacity)
        for d in waiting:
            self.assertIn("no file descriptor to spare", d["last_error"] or "", d)
        lb.proc.wait_for_log(r"90 workers are known but the open-file limit \(128\) leaves "
                             r"room for \d+ worker connections")
        lb.proc.wait_for_log(r"out of file descriptors for worker connections: \d+ of 90 "
                             r"workers not connected")
        # Rate-limited: one line (a minute apart at most), not one per worker or attempt.
        self.assertEqual(len(lb.proc.log_lines(r"out of file descriptors for worker")), 1)
        self.assertEqual(lb.proc.log_lines(r"unreachable: .*no file descriptor"), [])

        # It serves with the workers it has, and its status socket answers meanwhile.
        for i in range(10):
            code, _, body = lb.get("/", host=f"c{i}.test")
            self.assertEqual(code, 200)
            self.assertTrue(body.startswith(b"fake "), body)

        # Descriptors free up (workers stop and leave ZooKeeper): every remaining worker
        # gets its connection.
        gone = [p for p in fakes.ports if f"127.0.0.1:{p}" in set(connected())][:40]
        for p in gone:
            self.zk_server.zk.delete(f"{providers}/127.0.0.1:{p}")
        fakes.stop(gone)
        remaining = sorted(set(fakes.names()) - set(fakes.names(gone)))
        self.assertLessEqual(len(remaining), capacity)
        wait_for(lambda: connected() == remaining and fds()["workers_waiting"] == 0, 30,
                 message=lambda: f"the remaining {len(remaining)} workers connected "
                                 f"({len(connected())} are; {fds()})")
        self.assertEqual(fds()["worker_connections"], len(remaining))
        code, _, _ = lb.get("/", host="after.test")
        self.assertEqual(code, 200)


if __name__ == "__main__":
    unittest.main()
