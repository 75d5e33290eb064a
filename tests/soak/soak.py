#!/usr/bin/python3
"""resumelb soak test: a resumelb and several zkworkers under mixed traffic for a while, with
workers restarted (SIGTERM, and now and then SIGKILL) along the way; checks that nothing
leaks and that idempotent requests are never lost.

    /usr/bin/python3 tests/soak/soak.py --minutes 30 --out DIR
    /usr/bin/python3 tests/soak/soak.py --minutes 0.5 --out DIR      # short mode (~45 s)

What it runs (all on 127.0.0.1):

* ``--workers`` zkworkers (default 4) serving tests/soak/soak_app.py (plain_app plus a
  bounded LRU ``/cache/KEY`` route), 2 threads each, ``--spool_threshold=65536`` (large
  uploads are spooled to temp files in the worker's TMPDIR, ``DIR/tmp/worker-N``).
  Slot 0 is never restarted (its RSS/fds are judged over the whole run); the other slots
  are restarted in turn every ``--restart-every`` seconds: SIGTERM (graceful drain, exit 0
  expected), except every 4th restart (the 2nd, 6th, ...) which is a SIGKILL. The signal
  is sent once the LB reports a request in flight on that worker (waiting at most a third
  of the restart period), so the faults hit real work. The new worker binds the same port;
  the LB reconnects by itself.
* one resumelb with a path classifier (every cache key bucket is a class), a status
  socket, an access log, ``--response_memory=262144`` and ``--buffer_dir=DIR/tmp/lb`` (slow
  clients make it spill responses to temp files there).
* ``--clients`` client threads (default 6), each looping over a weighted mix: /hello,
  /cache/KEY (Zipf-like keys; the body is checked), /sleep, small POSTs, large downloads
  (1-5 MB, sha256 checked), large uploads (0.1-3 MB, Content-Length or chunked, echoed
  length + sha256 checked), slow-reading clients (small SO_RCVBUF, reading in small
  pieces), slow uploads, and cancels (clients that disconnect mid-response).
* every ``--sample-every`` seconds: RSS, open fds and threads of the LB and of every worker,
  and the LB's status totals.

At the end (traffic stopped, everything idle) it checks:

* ``no_lost_idempotent``: an idempotent request (GET/HEAD without a body) is *lost* if the
  client did not get a complete, correct 200 answer (or, for a cancel, did not reach the
  point where it disconnects on purpose), unless the failure is a connection error (reset
  or EOF, before or after the response head) of a request that was in progress at the
  instant a worker was SIGKILLed (request start <= kill time <= request end + 0.1 s). A 502/503, a
  timeout, a corrupt body, or a connection error at any other time (including during a
  SIGTERM restart) is a lost request. Lost must be 0.
* ``no_unexpected_errors``: every failed request (any method) is excused as above, or is a
  502 to a non-idempotent request in progress at a SIGKILL. Must be 0 unexcused.
* ``no_corrupt_bodies``: no response that looked complete (full Content-Length / final
  chunk) had the wrong content. Must be 0 (counted in the above too).
* ``rss_flat`` for the LB and worker slot 0: RSS growth over the second half,
  median(last 10 % of samples) - median(samples within 5 % of the midpoint), must be below
  max(10 % of the midpoint value, 2 MiB) (the absolute floor absorbs allocator noise; a
  leak shows as steady growth). Runs under 10 minutes only check for gross leaks (50 %):
  they end before the processes reach their RSS high-water mark (a worker handling several
  multi-MB bodies at once steps from ~19 to ~29 MB and stays there, as glibc keeps the
  heap), so a 10 % rule over a 15 s "second half" would judge warm-up, not leaks.
* ``fds_back_to_baseline``: when idle at the end, the LB has exactly as many open fds as
  at the start (after every worker connected, before traffic); every worker as many as
  slot 0 at the start (each has one LB connection).
* ``no_temp_files_left``: no file in the LB's --buffer_dir or any worker's TMPDIR, and no
  open fd of the LB/workers into them, when idle at the end; the dirs are empty again
  after every process has exited.
* ``clean_exits``: every SIGTERMed worker exited 0; the LB survived and exits 0 on SIGTERM.

Writes DIR/summary.json and DIR/summary.md (and the logs in DIR/logs); exit status 0 if
every verdict passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import random
import signal
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E_DIR = os.path.abspath(os.path.join(HERE, "..", "e2e"))
APPS_DIR = os.path.abspath(os.path.join(HERE, "..", "apps"))
sys.path.insert(0, E2E_DIR)
sys.path.insert(0, APPS_DIR)
sys.path.insert(0, HERE)

import harness  # noqa: E402
import lb_harness  # noqa: E402
from harness import sha256 as sha  # noqa: E402
from lb_harness import RawConn, chunked, request_bytes  # noqa: E402
from soak_app import cache_value  # noqa: E402

MiB = 1 << 20
HELLO = b"Hello, world!\n"
CLASSIFIER = r"re:PATH_INFO:^/(?P<class>cache/[^-]+|[^/]+)"
IDEMPOTENT_KINDS = {"hello", "cache", "sleep", "download", "slow_client", "cancel"}
WEIGHTS = {
    "hello": 25, "cache": 25, "sleep": 10, "post_small": 8, "download": 7, "upload": 7,
    "slow_client": 4, "slow_upload": 4, "cancel": 10,
}
DOWNLOAD_SIZES = (1 * MiB, 3 * MiB, 5 * MiB)
SLOW_SIZES = (2 * MiB, 3 * MiB)
UPLOAD_SIZES = (100_000, 1 * MiB, 3 * MiB)
BLOB = random.Random(1).randbytes(4 * MiB)
REQ_TIMEOUT = 30.0
SHORT_RUN_S = 600   # under this, the RSS flatness verdict only catches gross leaks (50 %)


def under_asan() -> bool:
    """Under AddressSanitizer (ASAN_OPTIONS set, as deploy/run-tests.sh --sanitize does) RSS
    says nothing about leaks: freed memory waits in ASan's quarantine (quarantine_size_mb,
    256 MiB by default) before reuse, and the shadow memory grows with it, so a healthy
    worker climbs from ~50 MB to ~350 MB within 30 s. There the RSS verdict reports the
    numbers without judging them; leaks are LeakSanitizer's job: it runs as each process
    exits and makes its exit code non-zero, which fails ``clean_exits``."""
    return "ASAN_OPTIONS" in os.environ


class ProtocolError(Exception):
    pass


# --------------------------------------------------------------------------- results

class Recorder:
    """Every request's outcome (counts, latencies, and the failures in full)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)   # kind -> outcome -> n
        self.latency = collections.defaultdict(list)                  # kind -> [s] (ok only)
        self.failures = []   # dicts
        self.total = 0

    def record(self, kind, outcome, start, end, detail="", head=False):
        with self.lock:
            self.total += 1
            self.counts[kind][outcome] += 1
            if outcome in ("ok", "cancelled"):
                self.latency[kind].append(end - start)
            else:
                self.failures.append({"kind": kind, "outcome": outcome, "start": start,
                                      "end": end, "detail": str(detail)[:300],
                                      "head_received": head,
                                      "idempotent": kind in IDEMPOTENT_KINDS})


def read_body(c: RawConn, headers, head_only=False):
    """The body framed as `headers` say; raises ConnectionError if it is cut off."""
    def h(name):
        vals = [v for k, v in headers if k.lower() == name]
        return vals[-1] if vals else None
    te, cl = h("transfer-encoding"), h("content-length")
    if head_only:
        return b"", "none"
    if te is not None and "chunked" in te.lower():
        parts = []
        while True:
            line = c._read_line().decode("latin-1")
            try:
                size = int(line.split(";")[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line!r}") from None
            if size == 0:
                while c._read_line():
                    pass
                return b"".join(parts), "chunked"
            parts.append(c._read_exact(size))
            if c._read_exact(2) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
    if cl is not None:
        return c._read_exact(int(cl)), "length"
    return c.read_until_close(), "close"


def wants_close(headers) -> bool:
    return any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)


class Client(threading.Thread):
    def __init__(self, idx, port, stop, rec: Recorder, seed):
        super().__init__(name=f"client-{idx}", daemon=True)
        self.port = port
        self.stop = stop
        self.rec = rec
        self.rng = random.Random(seed)
        self.conn = None
        self.kinds = list(WEIGHTS)
        self.weights = [WEIGHTS[k] for k in self.kinds]

    # -- connections --
    def keepalive_conn(self) -> RawConn:
        if self.conn is None:
            self.conn = RawConn(self.port, timeout=REQ_TIMEOUT)
        return self.conn

    def drop_conn(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def response(self, c: RawConn, state, keepalive=True):
        version, code, reason, headers = c.read_head()
        state["head"] = True
        body, framing = read_body(c, headers)
        if keepalive and (wants_close(headers) or framing == "close"):
            self.drop_conn()
        return code, headers, body

    # -- request kinds: each returns (outcome, detail) --
    def do_hello(self, state):
        c = self.keepalive_conn()
        c.send(request_bytes("GET", "/hello"))
        code, _, body = self.response(c, state)
        return check(code, body == HELLO, body)

    def do_cache(self, state):
        key = f"b{self.rng.randrange(20)}-{int(self.rng.paretovariate(1.2)) % 300}"
        c = self.keepalive_conn()
        c.send(request_bytes("GET", "/cache/" + key))
        code, _, body = self.response(c, state)
        return check(code, body == cache_value(key), body)

    def do_sleep(self, state):
        dur = self.rng.choice((0.05, 0.1, 0.2, 0.3))
        c = self.keepalive_conn()
        c.send(request_bytes("GET", f"/sleep?dur={dur}"))
        code, _, body = self.response(c, state)
        return check(code, body == b"slept\n", body)

    def do_post_small(self, state):
        off = self.rng.randrange(len(BLOB) - 2000)
        data = BLOB[off:off + 1000]
        c = self.keepalive_conn()
        c.send(request_bytes("POST", "/echo", body=data))
        code, _, body = self.response(c, state)
        return check(code, body.startswith(b"1000 %s " % sha(data).encode()), body)

    def do_download(self, state):
        size = self.rng.choice(DOWNLOAD_SIZES)
        with RawConn(self.port, timeout=REQ_TIMEOUT) as c:
            c.send(request_bytes("GET", f"/big?size={size}"))
            code, _, body = self.response(c, state, keepalive=False)
        return check(code, len(body) == size and sha(body) == big_sha(size),
                     f"{len(body)} bytes of {size}")

    def do_upload(self, state):
        n = self.rng.choice(UPLOAD_SIZES)
        off = self.rng.randrange(len(BLOB) - n)
        data = BLOB[off:off + n]
        use_chunked = self.rng.random() < 0.5
        with RawConn(self.port, timeout=REQ_TIMEOUT) as c:
            if use_chunked:
                c.send(request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")])
                       + chunked([data[i:i + 65536] for i in range(0, n, 65536)]))
            else:
                c.send(request_bytes("POST", "/echo", body=data))
            code, _, body = self.response(c, state, keepalive=False)
        return check(code, body.startswith(b"%d %s " % (n, sha(data).encode())), body)

    def do_slow_client(self, state):
        size = self.rng.choice(SLOW_SIZES)
        with RawConn(self.port, timeout=REQ_TIMEOUT, rcvbuf=16384) as c:
            c.send(request_bytes("GET", f"/big?size={size}"))
            time.sleep(0.3)   # let the LB fill the socket and spill to its buffer
            version, code, reason, headers = c.read_head()
            state["head"] = True
            # Read the body in small pieces with pauses (RawConn.read_* would gulp it).
            te = [v for k, v in headers if k.lower() == "transfer-encoding"]
            raw = bytearray(c.buf)
            c.buf = b""
            while not (te and raw.endswith(b"\r\n0\r\n\r\n")):
                data = c.sock.recv(16384)
                if not data:
                    break
                raw += data
                time.sleep(0.002)
            raw = bytes(raw)
            if te:
                body = dechunk(raw)
                if body is None:
                    raise ConnectionError(f"chunked body cut off after {len(raw)} bytes")
            else:
                body = raw
        return check(code, len(body) == size and sha(body) == big_sha(size),
                     f"{len(body)} bytes of {size}")

    def do_slow_upload(self, state):
        off = self.rng.randrange(len(BLOB) - 200_000)
        data = BLOB[off:off + 131072]
        with RawConn(self.port, timeout=REQ_TIMEOUT) as c:
            c.send(request_bytes("POST", "/echo", [("Content-Length", str(len(data)))]))
            for i in range(0, len(data), 16384):
                time.sleep(0.03)
                c.send(data[i:i + 16384])
            code, _, body = self.response(c, state, keepalive=False)
        return check(code, body.startswith(b"131072 %s " % sha(data).encode()), body)

    def do_cancel(self, state):
        variant = self.rng.random()
        c = RawConn(self.port, timeout=REQ_TIMEOUT)
        try:
            if variant < 0.5:
                c.send(request_bytes("GET", "/slowstream?n=200&delay=0.01"))
                want = 1000 + self.rng.randrange(5000)
            else:
                c.send(request_bytes("GET", "/big?size=33554432"))
                want = 65536 + self.rng.randrange(400_000)
            version, code, reason, headers = c.read_head()
            state["head"] = True
            if code != 200:
                return f"http_{code}", ""
            while len(c.buf) < want:
                if not c._fill():
                    raise ConnectionError(f"closed after {len(c.buf)} body bytes")
            if self.rng.random() < 0.5:   # half of them reset instead of closing
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return "cancelled", ""
        finally:
            c.close()

    # -- the loop --
    def run(self):
        while not self.stop.is_set():
            kind = self.rng.choices(self.kinds, self.weights)[0]
            state = {"head": False}
            start = time.time()
            detail = ""
            try:
                outcome, detail = getattr(self, "do_" + kind)(state)
            except socket.timeout as e:
                outcome, detail = "timeout", repr(e)
            except ProtocolError as e:
                outcome, detail = "protocol_error", repr(e)
            except AssertionError as e:   # RawConn: bad status line
                outcome, detail = "protocol_error", repr(e)
            except (ConnectionError, OSError) as e:
                outcome = ("conn_error_mid_response" if state["head"]
                           else "conn_error_before_response")
                detail = repr(e)
            end = time.time()
            if outcome not in ("ok", "cancelled"):
                self.drop_conn()
            self.rec.record(kind, outcome, start, end, detail, state["head"])
        self.drop_conn()


def check(code, good, body):
    if code != 200:
        return f"http_{code}", repr(body[:100])
    if not good:
        return "corrupt", repr(body[:100]) if isinstance(body, bytes) else str(body)
    return "ok", ""


def dechunk(raw: bytes):
    """The body of a complete chunked message, or None if it is incomplete."""
    out = []
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return b"".join(out) if raw.endswith(b"\r\n\r\n") else None
        if len(raw) < pos + size + 2:
            return None
        out.append(raw[pos:pos + size])
        pos += size + 2


_big_sha_cache = {}


def big_sha(size: int) -> str:
    if size not in _big_sha_cache:
        _big_sha_cache[size] = lb_harness.big_sha256(size)
    return _big_sha_cache[size]


# --------------------------------------------------------------------------- processes

def proc_stats(pid: int) -> dict:
    out = {"pid": pid}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_kb"] = int(line.split()[1])
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        out["gone"] = True
    return out


def fds_into(pid: int, directory: str) -> list[str]:
    res = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith(directory + "/"):
                res.append(t)
    except FileNotFoundError:
        pass
    return res


class Soak:
    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.logs = os.path.join(self.out, "logs")
        self.tmp = os.path.join(self.out, "tmp")
        for d in (self.out, self.logs, self.tmp):
            os.makedirs(d, exist_ok=True)
        self.lb_buf = os.path.join(self.tmp, "lb")
        os.makedirs(self.lb_buf, exist_ok=True)
        self.duration = args.minutes * 60
        self.restart_every = args.restart_every or (30.0 if self.duration >= 600
                                                    else max(4.0, self.duration / 6))
        self.sample_every = args.sample_every or min(5.0, max(0.5, self.duration / 60))
        self.processes = []
        self.workers = []        # slot -> Process
        self.worker_ports = []
        self.worker_gen = []
        self.events = []         # restarts / kills
        self.samples = []
        self.problems = []       # free-text notes for the summary
        self.exit_codes = []     # (slot, pid, signal, code)
        self.rec = Recorder()
        self.stop_clients = threading.Event()
        self.t0 = None
        # The status socket path must fit in sun_path (108 bytes).
        sock = os.path.join(self.out, "status.sock")
        if len(sock) > 100:
            import tempfile
            sock = os.path.join(tempfile.mkdtemp(prefix="rlb-soak-"), "status.sock")
        self.status_path = sock

    # -- process management (all from the main thread: PR_SET_PDEATHSIG follows the
    #    thread that started a child) --
    def worker_tmp(self, slot):
        d = os.path.join(self.tmp, f"worker-{slot}")
        os.makedirs(d, exist_ok=True)
        return d

    def start_worker(self, slot, port):
        gen = self.worker_gen[slot] if slot < len(self.worker_gen) else 0
        argv = [harness.binary("zkworker"), "--app=soak_app:application",
                f"--address=127.0.0.1:{port}", "--threads=2",
                f"--pythonpath={HERE}:{APPS_DIR}", "--spool_threshold=65536",
                "--history=200", "--drain_timeout=30"]
        proc = harness.Process(argv, os.path.join(self.logs, f"worker-{slot}-{gen}.log"),
                               env={"TMPDIR": self.worker_tmp(slot)}, cwd=self.out,
                               name=f"worker-{slot}")
        self.processes.append(proc)
        m = proc.wait_for_log(harness.LISTENING_RE, timeout=30)
        assert int(m.group("port")) == port, m.group(0)
        return proc

    def start(self):
        n = self.args.workers
        for slot in range(n):
            port = harness.free_port()
            self.worker_ports.append(port)
            self.worker_gen.append(0)
            self.workers.append(self.start_worker(slot, port))
        argv = [lb_harness.lb_binary(), "-LINFO", "-a", "127.0.0.1:0", "-s", self.status_path,
                "-l", os.path.join(self.logs, "access.log"), "-t", "30",
                "-r", CLASSIFIER, "--response_memory=262144", f"--buffer_dir={self.lb_buf}",
                *[f"127.0.0.1:{p}" for p in self.worker_ports]]
        self.lb = harness.Process(argv, os.path.join(self.logs, "resumelb.log"), cwd=self.out,
                                  name="resumelb")
        self.processes.append(self.lb)
        m = self.lb.wait_for_log(lb_harness.LB_LISTENING_RE, timeout=30)
        self.port = int(m.group("port"))
        for p in self.worker_ports:
            self.lb.wait_for_log(rf"worker connected 127\.0\.0\.1:{p}\b", timeout=30)
        harness.wait_for(lambda: len(self.status()["workers"]) == n, 30,
                         message="every worker in the pool")
        # Warm up (one of each) and take the baselines with nothing in flight.
        for path in ("/hello", "/cache/warm-1", "/sleep?dur=0.01"):
            lb_harness.http_request(self.port, path)
        self.wait_idle(30)
        self.baseline = {"lb": proc_stats(self.lb.pid),
                         "workers": [proc_stats(w.pid) for w in self.workers]}

    def status(self):
        return lb_harness.read_status(self.status_path)

    def idle(self):
        st = self.status()
        return (st["totals"]["connections_open"] == 0 and st["backlog"] == 0
                and all(d["in_flight"] == 0 and d["in_pool"] for d in st["worker_details"])
                and len(st["workers"]) == self.args.workers)

    def wait_idle(self, timeout):
        harness.wait_for(self.idle, timeout, message="the LB to be idle with every worker")

    def now(self):
        return time.time() - self.t0

    def restart(self, index):
        rotated = list(range(1, self.args.workers)) or [0]
        slot = rotated[index % len(rotated)]
        sig = signal.SIGKILL if index % 4 == 1 else signal.SIGTERM
        old = self.workers[slot]
        port = self.worker_ports[slot]
        ev = {"index": index, "slot": slot, "signal": signal.Signals(sig).name,
              "old_pid": old.pid}
        # Signal it while it has requests in flight (else, since the résumé pool keeps
        # classes on their skilled workers, a restarted worker is often idle and the
        # fault tests little): wait up to a third of the restart period for one.
        ev["in_flight_at_signal"] = self.wait_in_flight(port, min(3.0, self.restart_every / 3))
        mark = self.lb.mark()
        ev["t_signal"] = time.time()
        if sig == signal.SIGKILL:
            old.kill()
            code = old.popen.returncode
        else:
            try:
                code = old.stop(signal.SIGTERM, timeout=60)
            except harness.WaitTimeout as e:
                code = None
                self.problems.append(f"worker slot {slot} pid {old.pid}: no exit within 60 s "
                                     f"of SIGTERM ({e})")
        ev["t_exit"] = time.time()
        ev["exit_code"] = code
        self.exit_codes.append((slot, old.pid, ev["signal"], code))
        old.close_log()
        if sig == signal.SIGKILL:
            time.sleep(0.5)
        self.worker_gen[slot] += 1
        new = self.start_worker(slot, port)
        self.workers[slot] = new
        ev["new_pid"] = new.pid
        try:
            self.lb.wait_for_log(rf"worker connected 127\.0\.0\.1:{port}\b", timeout=30,
                                 since=mark)
            ev["t_rejoined"] = time.time()
        except AssertionError as e:
            self.problems.append(f"worker slot {slot} did not rejoin: {e}")
        ev["downtime_s"] = round(ev.get("t_rejoined", time.time()) - ev["t_signal"], 3)
        self.events.append(ev)

    def wait_in_flight(self, port, timeout):
        """The LB's in-flight count for the worker on `port`, once it is >= 1 (or 0 after
        `timeout` seconds)."""
        name = f"127.0.0.1:{port}"
        deadline = time.time() + timeout
        while True:
            try:
                d = lb_harness.worker_detail(self.status(), name)
                n = d["in_flight"] if d else 0
            except OSError:
                n = 0
            if n > 0 or time.time() >= deadline:
                return n
            time.sleep(0.01)

    def sample(self, phase="traffic"):
        s = {"t": round(self.now(), 2), "phase": phase,
             "lb": proc_stats(self.lb.pid),
             "workers": [proc_stats(w.pid) for w in self.workers]}
        try:
            st = self.status()
            s["totals"] = st["totals"]
            s["backlog"] = st["backlog"]
        except OSError as e:
            s["status_error"] = repr(e)
        self.samples.append(s)

    # -- the run --
    def run(self):
        self.start()
        self.t0 = time.time()
        self.sample("start")
        clients = [Client(i, self.port, self.stop_clients, self.rec, self.args.seed + i)
                   for i in range(self.args.clients)]
        for c in clients:
            c.start()
        end = self.t0 + self.duration
        next_sample = self.t0 + self.sample_every
        next_restart = self.t0 + self.restart_every
        index = 0
        last_report = time.time()
        while time.time() < end:
            now = time.time()
            if now >= next_sample:
                self.sample()
                next_sample += self.sample_every
                while next_sample < now:
                    next_sample += self.sample_every
            if now >= next_restart and now < end - 2:
                self.restart(index)
                index += 1
                next_restart = time.time() + self.restart_every
            if self.args.verbose and now - last_report >= 60:
                last_report = now
                print(f"[{self.now():7.1f}s] requests {self.rec.total}, "
                      f"failures {len(self.rec.failures)}, restarts {len(self.events)}",
                      flush=True)
            time.sleep(0.05)
        self.t_traffic_end = time.time()
        self.sample("end-of-traffic")
        self.stop_clients.set()
        for c in clients:
            c.join(REQ_TIMEOUT + 30)
            if c.is_alive():
                self.problems.append(f"{c.name} did not stop")
        try:
            self.wait_idle(60)
        except AssertionError as e:
            self.problems.append(f"not idle after the traffic stopped: {e}")
        time.sleep(0.5)
        self.sample("idle")
        self.final = self.final_checks()
        self.stop_all()

    def final_checks(self):
        res = {}
        st = self.status()
        res["status"] = st
        lb_fds = proc_stats(self.lb.pid)
        res["lb_idle"] = lb_fds
        res["workers_idle"] = [proc_stats(w.pid) for w in self.workers]
        res["lb_fds_into_buffer_dir"] = fds_into(self.lb.pid, self.lb_buf)
        res["worker_fds_into_tmpdir"] = {slot: fds_into(w.pid, self.worker_tmp(slot))
                                         for slot, w in enumerate(self.workers)}
        res["files_left_idle"] = self.temp_files()
        return res

    def temp_files(self):
        files = {}
        for root, dirs, names in os.walk(self.tmp):
            for n in names:
                files.setdefault(os.path.relpath(root, self.tmp), []).append(n)
        return files

    def stop_all(self):
        try:
            code = self.lb.stop(signal.SIGTERM, timeout=90)
        except harness.WaitTimeout as e:
            code = None
            self.problems.append(f"resumelb did not exit on SIGTERM: {e}")
        self.lb_exit = code
        for slot, w in enumerate(self.workers):
            try:
                c = w.stop(signal.SIGTERM, timeout=60)
            except harness.WaitTimeout as e:
                c = None
                self.problems.append(f"worker slot {slot} did not exit: {e}")
            self.exit_codes.append((slot, w.pid, "SIGTERM(final)", c))
        self.files_left_after_exit = self.temp_files()

    def cleanup(self):
        for p in self.processes:
            p.kill()
            p.close_log()
        if os.path.dirname(self.status_path) != self.out:
            try:
                os.unlink(self.status_path)
            except OSError:
                pass
            try:
                os.rmdir(os.path.dirname(self.status_path))
            except OSError:
                pass

    # -- analysis --
    def kill_times(self):
        return [e["t_signal"] for e in self.events if e["signal"] == "SIGKILL"]

    def analyse(self):
        kills = self.kill_times()

        def at_kill(f):
            return any(f["start"] <= k <= f["end"] + 0.1 for k in kills)

        lost, unexcused, excused = [], [], []
        for f in self.rec.failures:
            conn = f["outcome"].startswith("conn_error")
            ok_excuse = at_kill(f) and (conn or (f["outcome"] == "http_502"
                                                 and not f["idempotent"]))
            (excused if ok_excuse else unexcused).append(f)
            if f["idempotent"] and not ok_excuse:
                lost.append(f)
        corrupt = [f for f in self.rec.failures if f["outcome"] == "corrupt"]

        verdicts = {}
        verdicts["no_lost_idempotent"] = {"pass": not lost, "lost": len(lost)}
        verdicts["no_unexpected_errors"] = {"pass": not unexcused, "unexcused": len(unexcused),
                                            "excused_at_sigkill": len(excused)}
        verdicts["no_corrupt_bodies"] = {"pass": not corrupt, "corrupt": len(corrupt)}

        traffic = [s for s in self.samples if s["phase"] in ("start", "traffic",
                                                             "end-of-traffic")]
        rss = {}
        procs = {"resumelb": lambda s: s["lb"], "worker-0": lambda s: s["workers"][0]}
        for name, get in procs.items():
            rss[name] = flatness([(s["t"], get(s).get("rss_kb")) for s in traffic],
                                 self.duration)
        verdicts["rss_flat"] = {"pass": all(r["pass"] for r in rss.values()), **rss}

        base_lb = self.baseline["lb"]["fds"]
        base_w = self.baseline["workers"][0]["fds"]
        end_lb = self.final["lb_idle"].get("fds")
        end_w = [w.get("fds") for w in self.final["workers_idle"]]
        verdicts["fds_back_to_baseline"] = {
            "pass": end_lb == base_lb and all(f == base_w for f in end_w),
            "lb_baseline": base_lb, "lb_end": end_lb,
            "worker_baseline": base_w, "workers_end": end_w}

        files_idle = self.final["files_left_idle"]
        fds_tmp = (len(self.final["lb_fds_into_buffer_dir"])
                   + sum(len(v) for v in self.final["worker_fds_into_tmpdir"].values()))
        verdicts["no_temp_files_left"] = {
            "pass": not files_idle and not self.files_left_after_exit and fds_tmp == 0,
            "files_when_idle": files_idle, "files_after_exit": self.files_left_after_exit,
            "open_temp_fds_when_idle": fds_tmp}

        bad_exits = [e for e in self.exit_codes if e[2] != "SIGKILL" and e[3] != 0]
        verdicts["clean_exits"] = {"pass": not bad_exits and self.lb_exit == 0
                                   and not self.problems,
                                   "bad_worker_exits": bad_exits, "lb_exit": self.lb_exit,
                                   "problems": self.problems}
        return verdicts, lost, unexcused, excused

    def summary(self):
        verdicts, lost, unexcused, excused = self.analyse()
        ok_total = sum(c["ok"] + c["cancelled"] for c in self.rec.counts.values())
        by_kind = {k: dict(v) for k, v in sorted(self.rec.counts.items())}
        errors_by_outcome = collections.Counter()
        for f in self.rec.failures:
            errors_by_outcome[f["outcome"]] += 1
        latency = {}
        for k, v in sorted(self.rec.latency.items()):
            v = sorted(v)
            latency[k] = {"p50_ms": round(1000 * v[len(v) // 2], 1),
                          "p99_ms": round(1000 * v[min(len(v) - 1, int(len(v) * 0.99))], 1),
                          "max_ms": round(1000 * v[-1], 1)}
        doc = {
            "command": " ".join([sys.executable] + sys.argv),
            "started": datetime.datetime.fromtimestamp(self.t0).isoformat(timespec="seconds"),
            "duration_s": round(self.t_traffic_end - self.t0, 1),
            "config": {"workers": self.args.workers, "clients": self.args.clients,
                       "restart_every_s": self.restart_every,
                       "sample_every_s": self.sample_every, "classifier": CLASSIFIER,
                       "weights": WEIGHTS},
            "requests": {"total": self.rec.total, "succeeded": ok_total,
                         "failed": len(self.rec.failures), "by_kind": by_kind,
                         "errors_by_outcome": dict(errors_by_outcome),
                         "rate_per_s": round(self.rec.total / max(1, self.duration), 1)},
            "latency": latency,
            "lb_totals": self.final["status"]["totals"],
            "restarts": {"total": len(self.events),
                         "sigterm": sum(e["signal"] == "SIGTERM" for e in self.events),
                         "sigkill": sum(e["signal"] == "SIGKILL" for e in self.events),
                         "max_downtime_s": max([e["downtime_s"] for e in self.events],
                                               default=None),
                         "sigkill_with_requests_in_flight": sum(
                             e["signal"] == "SIGKILL" and e["in_flight_at_signal"] > 0
                             for e in self.events),
                         "sigterm_with_requests_in_flight": sum(
                             e["signal"] == "SIGTERM" and e["in_flight_at_signal"] > 0
                             for e in self.events),
                         "events": self.events},
            "baseline": self.baseline,
            "samples": self.samples,
            "verdicts": verdicts,
            "pass": all(v["pass"] for v in verdicts.values()),
            "lost": lost[:100],
            "unexcused_failures": unexcused[:100],
            "excused_failures": excused[:100],
        }
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(doc, f, indent=1, default=str)
        with open(os.path.join(self.out, "summary.md"), "w") as f:
            f.write(markdown(doc))
        return doc


def flatness(points, duration):
    """RSS growth over the second half: median of the last 10 % of the samples against the
    median of those within 5 % of the midpoint (at least one sample each)."""
    pts = [(t, v) for t, v in points if v is not None]
    if len(pts) < 3:
        return {"pass": False, "reason": "too few samples"}
    mid_t = duration / 2
    win = max(duration * 0.05, 1e-9)
    mid = [v for t, v in pts if abs(t - mid_t) <= win] or [min(pts, key=lambda p: abs(p[0] - mid_t))[1]]
    n_last = max(1, len(pts) // 10)
    last = [v for _, v in pts[-n_last:]]
    m, e = statistics.median(mid), statistics.median(last)
    # Long runs: growth under 10 %. Short runs end before the processes reach their RSS
    # high-water mark (glibc keeps the heap a few multi-MB bodies in flight at once needed;
    # a worker steps from ~19 to ~29 MB within 30 s and stays there), so they only catch
    # gross leaks: growth under 50 %.
    pct = 0.10 if duration >= SHORT_RUN_S else 0.50
    limit = max(pct * m, 2048)
    judged = not under_asan()
    return {"pass": e - m < limit or not judged, "judged": judged,
            "mid_rss_kb": m, "end_rss_kb": e,
            "growth_kb": e - m, "growth_pct": round(100.0 * (e - m) / m, 2),
            "limit_kb": round(limit), "limit_pct": int(pct * 100),
            "max_rss_kb": max(v for _, v in pts)}


def markdown(doc) -> str:
    L = []
    v = doc["verdicts"]
    L.append(f"# resumelb soak: {'PASS' if doc['pass'] else 'FAIL'}\n")
    L.append(f"`{doc['command']}`  \nstarted {doc['started']}, traffic for "
             f"{doc['duration_s']} s; {doc['config']['workers']} workers, "
             f"{doc['config']['clients']} client threads, a worker restart every "
             f"{doc['config']['restart_every_s']} s.\n")
    L.append("## Verdicts\n\n| verdict | pass | details |\n|---|---|---|")
    for name, d in v.items():
        details = ", ".join(f"{k}={d[k]}" for k in d if k != "pass"
                            and not isinstance(d[k], (dict, list)))
        if name == "rss_flat":
            details = "; ".join(f"{p}: {d[p]['mid_rss_kb']} -> {d[p]['end_rss_kb']} kB "
                                + (f"({d[p]['growth_pct']:+} %, limit {d[p]['limit_pct']} % / {d[p]['limit_kb']} kB)"
                                   if d[p].get("judged", True) else
                                   f"({d[p]['growth_pct']:+} %, not judged under ASan: LSan checks leaks at exit)")
                                for p in d if p != "pass" and "mid_rss_kb" in d[p])
        L.append(f"| {name} | {'yes' if d['pass'] else '**NO**'} | {details} |")
    r = doc["requests"]
    L.append(f"\n## Requests\n\n{r['total']} requests ({r['rate_per_s']}/s), "
             f"{r['succeeded']} succeeded, {r['failed']} failed.\n")
    outcomes = sorted({o for c in r["by_kind"].values() for o in c})
    L.append("| kind | " + " | ".join(outcomes) + " | p50 ms | p99 ms |")
    L.append("|---" * (len(outcomes) + 3) + "|")
    for kind, c in r["by_kind"].items():
        lat = doc["latency"].get(kind, {})
        L.append(f"| {kind} | " + " | ".join(str(c.get(o, 0)) for o in outcomes)
                 + f" | {lat.get('p50_ms', '-')} | {lat.get('p99_ms', '-')} |")
    t = doc["lb_totals"]
    L.append("\nLB status totals at the end: " + ", ".join(f"{k} {t[k]}" for k in t) + ".\n")
    rs = doc["restarts"]
    L.append(f"## Restarts\n\n{rs['total']} worker restarts ({rs['sigterm']} SIGTERM, "
             f"{rs['sigterm_with_requests_in_flight']} of them with requests in flight; "
             f"{rs['sigkill']} SIGKILL, {rs['sigkill_with_requests_in_flight']} with requests "
             f"in flight); longest time from the signal until the LB had the new worker: "
             f"{rs['max_downtime_s']} s.\n")
    L.append("## Resources (RSS kB / open fds / threads)\n")
    L.append("| process | start | middle | end of traffic | idle at the end |")
    L.append("|---|---|---|---|---|")
    samples = doc["samples"]
    traffic = [s for s in samples if s["phase"] != "idle"]
    picks = [traffic[0], traffic[len(traffic) // 2], traffic[-1],
             [s for s in samples if s["phase"] == "idle"][-1]]

    def cell(p):
        return (f"{p.get('rss_kb', '-')} / {p.get('fds', '-')} / {p.get('threads', '-')}"
                + ("" if "gone" not in p else " (gone)"))
    L.append("| resumelb | " + " | ".join(cell(s["lb"]) for s in picks) + " |")
    for i in range(doc["config"]["workers"]):
        L.append(f"| worker-{i}{' (never restarted)' if i == 0 else ''} | "
                 + " | ".join(cell(s["workers"][i]) for s in picks) + " |")
    L.append(f"\n(sample times: {', '.join(str(s['t']) + ' s' for s in picks)})\n")
    tf = v["no_temp_files_left"]
    L.append(f"## Temp files\n\nWhen idle at the end: {tf['files_when_idle'] or 'none'}; "
             f"open temp-file fds: {tf['open_temp_fds_when_idle']}; after every process "
             f"exited: {tf['files_after_exit'] or 'none'}.\n")
    if doc["unexcused_failures"]:
        L.append("## Unexcused failures (first 20)\n")
        for f in doc["unexcused_failures"][:20]:
            L.append(f"* {f['kind']} {f['outcome']} at {f['start']:.3f}-{f['end']:.3f}: "
                     f"{f['detail']}")
    L.append("\n## What counts as lost\n\nAn idempotent request (GET without a body) is lost "
             "if it did not get a complete, correct 200 (or reach its planned disconnect), "
             "unless it failed with a connection error while in progress at the instant a "
             "worker was SIGKILLed. 502/503, timeouts, corrupt bodies and connection errors "
             "at any other time (SIGTERM restarts included) all count as lost.\n")
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, required=True, help="traffic duration")
    ap.add_argument("--out", required=True, help="output directory (logs, summary)")
    ap.add_argument("--workers", type=int, default=4, help="zkworkers (>= 3; default 4)")
    ap.add_argument("--clients", type=int, default=6, help="client threads (6)")
    ap.add_argument("--restart-every", type=float, default=None,
                    help="seconds between worker restarts (30; short runs: duration/6)")
    ap.add_argument("--sample-every", type=float, default=None,
                    help="seconds between resource samples (5; short runs less)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.workers < 3:
        ap.error("--workers must be at least 3")
    soak = Soak(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    try:
        soak.run()
        doc = soak.summary()
    finally:
        soak.cleanup()
    print(open(os.path.join(soak.out, "summary.md")).read())
    return 0 if doc["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
