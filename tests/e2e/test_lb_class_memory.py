"""resumelb end to end: the LB's memory for request classes is bounded (docs/design.md,
"Bounded classes"; docs/security.md, "Limits and their defaults").

* A flood of distinct 4 KiB Host values (each its own request class with the default
  classifier) through 4 workers leaves the LB's RSS under 64 MB, and flat once the class
  limits are reached: class names are bounded to 128 bytes (a longer one is sent to the
  worker as a prefix + '#' + a 64-bit hash), and the pool tracks at most 8192 classes per
  worker and 32768 in all, dropping the least recently seen.
* A worker's RESUME at the protocol's limits (2^20 classes) is read without stalling the
  LB's loop: the LB keeps only the classes it can track, culling as it reads.

The flood's size is RLB_CLASS_FLOOD requests (default 80000: its first half passes the limits,
so the second half shows the bound); docs/reliability.md records the 200,000-request run.
"""

import os
import re
import socket
import struct
import threading
import time
import unittest

import harness
import hardening_util as hu
import lb_harness
import rlbproto
from harness import wait_for
from lb_harness import request_bytes

# AddressSanitizer's quarantine and shadow memory inflate RSS, and it slows everything.
SANITIZED = bool(os.environ.get("ASAN_OPTIONS"))
RSS_SLACK = 8 if SANITIZED else 1
MAX_LOOP_LAG_MS = 1000 if SANITIZED else 250
FLOOD_LOOP_LAG_MS = 4 * MAX_LOOP_LAG_MS
FLOOD = int(os.environ.get("RLB_CLASS_FLOOD", "80000"))
HOST_BYTES = 4096
CONNECTIONS = 4
BATCH = 50


def flood(port: int, start: int, count: int) -> None:
    """`count` GETs with distinct 4 KiB Hosts (numbered from `start`), pipelined BATCH at a
    time over CONNECTIONS connections in parallel; every answer must be 200."""
    errors = []

    def run(k: int) -> None:
        try:
            with lb_harness.RawConn(port, timeout=60) as c:
                mine = range(start + k, start + count, CONNECTIONS)
                for i in range(0, len(mine), BATCH):
                    batch = mine[i:i + BATCH]
                    c.send(b"".join(
                        request_bytes("GET", "/hello",
                                      host=f"h{n}-".ljust(HOST_BYTES, "x")) for n in batch))
                    for _ in batch:
                        code = c.read_response().code
                        if code != 200:
                            raise AssertionError(f"status {code}")
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class ClassFloodTest(harness.E2ETestCase):

    def test_distinct_4k_hosts_through_4_workers_leave_the_lb_under_64_mb(self):
        workers = [hu.start_worker(self.sandbox, 2, extra_args=["--history=2000"])
                   for _ in range(4)]
        cluster = lb_harness.start_cluster(self.sandbox, workers=workers)
        pid = cluster.lb.pid
        self.assertEqual(lb_harness.http_request(cluster.port, "/hello")[0], 200)
        rss0 = hu.rss_kb(pid) / 1024
        t0 = time.monotonic()
        half = FLOOD // 2
        flood(cluster.port, 0, half)
        rss1 = hu.rss_kb(pid) / 1024
        flood(cluster.port, half, FLOOD - half)
        rss2 = hu.rss_kb(pid) / 1024
        elapsed = time.monotonic() - t0
        print(f"LB RSS {rss0:.1f} MB at start, {rss1:.1f} MB after {half} distinct 4 KiB "
              f"Hosts, {rss2:.1f} MB after {FLOOD} ({elapsed:.0f} s)", flush=True)
        # The workers sent résumés along the way (every 2000 requests each).
        status = cluster.status()
        for _, port in workers:
            d = lb_harness.worker_detail(status, lb_harness.worker_name(port))
            self.assertTrue(d["connected"] and d["in_pool"] and d["resume_size"] > 0, d)
        self.assertLess(rss2, 64 * RSS_SLACK, "LB RSS after the flood (MB)")
        # Past the limits (32768 entries in all, reached in the first half) the LB's class
        # memory is flat: the second half, as many new classes again, adds a few MB (the
        # workers' résumés still growing towards max_skill_age) where holding the classes
        # would take ~2 x 4 KiB each (over 300 MB).
        self.assertLess(rss2 - rss1, 16 * RSS_SLACK, "LB RSS growth in the second half (MB)")
        # The flood keeps the 2 cores busy (4 workers, the LB and the client), so the loop's
        # lag here measures CPU contention as much as the LB: a generous bound, which a
        # stall of the kind the bounds remove (seconds) would still fail.
        lag = cluster.status()["loop_lag_ms"]
        self.assertLess(lag["recent_max"], FLOOD_LOOP_LAG_MS, lag)
        status, _, body = lb_harness.http_request(cluster.port, "/hello")
        self.assertEqual(status, 200)

    def test_long_class_names_reach_the_worker_bounded(self):
        """The worker receives the bounded name: the first 111 bytes, '#', and 16 hex
        digits of the name's FNV-1a-64 hash; a name of at most 128 bytes is unchanged."""
        worker = hu.start_worker(self.sandbox, 1)
        cluster = lb_harness.start_cluster(self.sandbox, workers=[worker])
        long_host = "a" * 200
        short_host = "b" * 128
        for host in (long_host, short_host):
            with lb_harness.RawConn(cluster.port) as c:
                c.send(request_bytes("GET", "/hello", host=host))
                self.assertEqual(c.read_response().code, 200)
        name = lb_harness.worker_name(worker[1])

        def resume_classes():
            out = harness.run_command([harness.binary("get-worker-resume"), name],
                              timeout=10).stdout
            return long_host[:111] in out and short_host in out and out
        out = wait_for(resume_classes, 10, message="the worker's résumé")
        h = 14695981039346656037
        for ch in long_host.encode():
            h = ((h ^ ch) * 1099511628211) % (1 << 64)
        self.assertIn(long_host[:111] + f"#{h:016x}", out)
        self.assertNotIn(long_host, out)


class FakeWorker:
    """A worker that sends HELLO and then `resume` (encoded) `times` times, a second apart,
    answers KEEPALIVEs and answers every REQUEST with 200 "fake"."""

    def __init__(self, resume: bytes, times: int):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.resume = resume
        self.times = times
        self.sent = threading.Event()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, _ = self.srv.accept()
        conn.settimeout(0.2)
        lock = threading.Lock()

        def send(data):
            with lock:
                conn.sendall(data)

        def resumes():
            for i in range(self.times):
                if i:
                    time.sleep(1)
                send(self.resume)
            self.sent.set()
        send(rlbproto.encode_hello("worker", pid=99, software="fake"))
        threading.Thread(target=resumes, daemon=True).start()
        r = rlbproto.FrameReader()
        with conn:
            while not self.stop:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                r.feed(data)
                for rno, kind, _ in r:
                    if kind == rlbproto.KEEPALIVE:
                        send(rlbproto.encode_keepalive())
                    elif kind == rlbproto.REQUEST_END:
                        send(rlbproto.encode_response(rno, "200 OK",
                                                      [("Content-Length", "4")]) +
                             rlbproto.encode_response_body(rno, b"fake") +
                             rlbproto.encode_response_end(rno, "complete"))
        self.srv.close()

    def close(self):
        self.stop = True


def resume_frame(count: int, name_bytes: int) -> bytes:
    """A RESUME of `count` distinct classes of `name_bytes` bytes, scores ascending (each
    class beats every earlier one: the worst order for keeping the best ones)."""
    parts = [struct.pack(">I", count)]
    for i in range(count):
        name = i.to_bytes(4, "big")[-3:].rjust(name_bytes, b"c")
        parts.append(struct.pack(">I", name_bytes) + name + struct.pack(">d", float(i)))
    body = bytes([rlbproto.RESUME]) + b"".join(parts)
    return struct.pack(">II", 0, len(body)) + body


class HugeResumeTest(harness.E2ETestCase):

    def check(self, count: int, name_bytes: int):
        frame = resume_frame(count, name_bytes)
        self.assertLessEqual(len(frame) - 8, rlbproto.MAX_PAYLOAD)
        worker = FakeWorker(frame, times=3)
        self.addCleanup(worker.close)
        status_path = self.sandbox.path("status.sock")
        lb, port = lb_harness.start_lb(self.sandbox, [worker.port],
                                       ["-LDEBUG", "-s", status_path])
        name = lb_harness.worker_name(worker.port)

        def status():
            return lb_harness.read_status(status_path)
        self.assertTrue(worker.sent.wait(60), "the fake worker sent its résumés")
        wait_for(lambda: len(lb.log_lines(r"resume from .* kept, read in")) >= 3, 30,
                 message="the LB read the three résumés")
        d = lb_harness.worker_detail(status(), name)
        self.assertTrue(d["connected"] and d["in_pool"], d)
        self.assertEqual(d["resume_size"], count, d)
        times = [float(re.search(r"read in ([0-9.e+-]+) ms", line).group(1))
                 for line in lb.log_lines(r"resume from .* kept, read in")]
        print(f"RESUME of {count} classes of {name_bytes} bytes ({len(frame) >> 20} MiB): "
              f"read in {', '.join(f'{t:.1f}' for t in times)} ms; loop lag "
              f"{status()['loop_lag_ms']}", flush=True)
        lag = status()["loop_lag_ms"]
        self.assertLess(lag["recent_max"], MAX_LOOP_LAG_MS, lag)
        code, _, body = lb_harness.http_request(port, "/x")
        self.assertEqual((code, body), (200, b"fake"))

    def test_a_resume_of_2_20_classes_does_not_stall_the_loop(self):
        self.check(1 << 20, 3)

    def test_a_resume_of_16_mib_of_4_kib_names_does_not_stall_the_loop(self):
        self.check(rlbproto.MAX_PAYLOAD // (4096 + 12) - 1, 4096)


if __name__ == "__main__":
    unittest.main()
