#!/usr/bin/python3
"""resumelb benchmark suite: the one entry point.

    bench/run.py            full run (3 repetitions, ~30 min), report in bench/results/
    bench/run.py --quick    one short repetition, for development
    bench/run.py --smoke    a few seconds per system; exits non-zero if any system fails
                            to start, serve or report (CI)

It installs the peers (deploy/install-deps.sh --bench), builds resumelb and zkworker if
needed, starts every process itself on 127.0.0.1, runs the workloads (hello, cache with
phases, hot spot) against every system, stops everything by pid, and writes results.json
and report.md (plus gnuplot PNGs) into the output directory. docs/benchmarks.md explains
the method and the numbers. Run as root or with sudo available (package installation).
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
import report  # noqa: E402  (bench/report.py)

PY = "/usr/bin/python3"
LUA_DIR = os.path.join(BENCH_DIR, "lua")
APP_DIR = os.path.join(BENCH_DIR, "apps")


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# --------------------------------------------------------------------------------------
# Parameters

def mode_params(mode):
    """Durations per mode; everything else is the same in every mode."""
    p = dict(
        workers=4,             # worker processes, every system
        threads=2,             # application threads per worker process, every system
        hello_conns=32, hello_wrk_threads=4,
        cache_conns=16, cache_wrk_threads=2,
        sites=40, objects=100, k=10, zipf=1.0, hot_zipf=1.4,
        cache_factor=1.25,     # per-worker cache = factor * working set / workers
        base_ms=5.0, miss_ms=5.0,
        seed=1, shift_seed=7,
        zk_history=200,        # zkworker résumé horizon (requests) for the cache workloads
        hash_factors=[125, 150, 200, "off"],
        # HAProxy "maxconn" per uWSGI server (0: none), an option for the peers
        server_maxconn=int(os.environ.get("BENCH_SRV_MAXCONN", "0")),
        wrk_timeout=10,
    )
    # sweep_reps: the HAProxy hash-balance-factor sweep runs in the first sweep_reps
    # repetitions; later ones run only the best factor (by stationary throughput)
    if mode == "smoke":
        # every system once, the sweep reduced to one factor and no factor
        p.update(reps=1, hello_warm=1, hello_secs=1, seg=1,
                 phases=dict(warmup=1, stationary=1, shift=1, add=1, remove=1),
                 hot=None, sweep_reps=1, hash_factors=[150, "off"], variants=False)
    elif mode == "quick":
        p.update(reps=1, hello_warm=1, hello_secs=3, seg=1,
                 phases=dict(warmup=5, stationary=4, shift=6, add=5, remove=5),
                 hot=dict(warmup=4, measure=4), sweep_reps=1)
    else:
        p.update(reps=3, hello_warm=2, hello_secs=5, seg=2,
                 phases=dict(warmup=6, stationary=6, shift=8, add=8, remove=8),
                 hot=dict(warmup=5, measure=6), sweep_reps=1)
    return p


# Systems. kind: which workers; lb: which balancer. Workloads they take part in.
def all_systems(params):
    s = [
        dict(name="resumelb", workers="zk", lb="resumelb", pool="resume",
             workloads=["hello", "cache", "hot"]),
        dict(name="resumelb-classless", workers="zk", lb="resumelb", pool="classless",
             workloads=["hello", "cache", "hot"]),
        dict(name="haproxy-rr", workers="uwsgi", lb="haproxy", balance="roundrobin",
             workloads=["hello", "cache", "hot"]),
        dict(name="haproxy-leastconn", workers="uwsgi", lb="haproxy", balance="leastconn",
             workloads=["hello", "cache", "hot"]),
    ]
    # the résumé pool with a tighter backlog bound (default --variance 4)
    s.append(dict(name="resumelb-variance-1", workers="zk", lb="resumelb", pool="resume",
                  variance=1, extra=not params.get("variants", True),
                  workloads=["cache", "hot"]))
    # the default pool (docs/design.md, "The balanced pool"); "resumelb" above is
    # zc.resumelb's rule (-p resume), kept under its name for comparison with older runs
    s.append(dict(name="resumelb-balanced", workers="zk", lb="resumelb", pool="balanced",
                  workloads=["cache", "hot"]))
    # not run by default (name it with --systems)
    s.append(dict(name="resumelb-variance-2", workers="zk", lb="resumelb", pool="resume",
                  variance=2, extra=True, workloads=["cache", "hot"]))
    for f in params["hash_factors"]:
        s.append(dict(name="haproxy-hash-%s" % f, workers="uwsgi", lb="haproxy",
                      balance="hash", factor=f, family="haproxy-hash",
                      workloads=["cache", "hot"]))
    s += [
        dict(name="nginx-leastconn", workers="uwsgi", lb="nginx", balance="least_conn",
             workloads=["hello", "cache", "hot"]),
        dict(name="nginx-hash", workers="uwsgi", lb="nginx", balance="hash",
             workloads=["cache", "hot"]),
        dict(name="oracle", workers="uwsgi", lb="haproxy", balance="oracle",
             workloads=["cache", "hot"]),
        dict(name="gunicorn-haproxy", workers="gunicorn", lb="haproxy", balance="roundrobin",
             workloads=["hello"]),
        # the same zkworkers as resumelb's, started by one supervising master
        # (zkworker --processes=workers) instead of one by one
        dict(name="resumelb-processes", workers="zkmaster", lb="resumelb", pool="resume",
             workloads=["hello"]),
        dict(name="uwsgi-direct", workers="uwsgi", lb="direct", workloads=["hello"]),
    ]
    return s


# --------------------------------------------------------------------------------------
# Processes: every child in its own process group (uWSGI, nginx and gunicorn fork), stopped
# by pid / process-group id, never by name.

class Procs:
    def __init__(self):
        self.procs = []  # (name, Popen)
        self.lock = threading.Lock()

    def start(self, name, argv, log_path, env=None, cwd=None):
        e = dict(os.environ)
        # Debian's python for everything Python; never a pyenv shim.
        e["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            e.pop(k, None)
        if env:
            e.update(env)
        out = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=e, cwd=cwd, start_new_session=True)
        out.close()
        with self.lock:
            self.procs.append((name, p))
        return p

    @staticmethod
    def _exited(p):
        """True once the process has exited; it is not reaped, so its pid (and the
        process-group id) cannot be reused while we still signal the group."""
        if p.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    @staticmethod
    def _signal_group(p, sig):
        if p.returncode is not None:
            return  # reaped: the group id may belong to someone else by now
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _finish(self, p, deadline):
        while not self._exited(p) and time.time() < deadline:
            time.sleep(0.02)
        # Leader exited (a zombie until reaped) or timed out: kill what is left of the
        # group (nginx/uWSGI/gunicorn children), then reap.
        self._signal_group(p, signal.SIGKILL)
        p.wait()
        with self.lock:
            self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop(self, p, sig=signal.SIGTERM, timeout=10.0):
        self._signal_group(p, sig)
        self._finish(p, time.time() + timeout)

    def stop_all(self):
        with self.lock:
            procs = list(self.procs)
        for _, p in reversed(procs):
            self._signal_group(p, signal.SIGTERM)
        deadline = time.time() + 10
        for _, p in reversed(procs):
            self._finish(p, deadline)


PROCS = Procs()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(n, avoid=()):
    """A base port such that base..base+n-1 are free now (zkworker --processes=n) and
    none is in `avoid` (ports chosen but not bound yet, e.g. the balancer's)."""
    for _ in range(200):
        base = free_port()
        if base + n > 65536 or any(base <= a < base + n for a in avoid):
            continue
        ok = True
        for port in range(base + 1, base + n):
            with socket.socket() as s:
                # as zkworker binds (libuv): a port a finished connection left in
                # TIME_WAIT is free for it
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise StartError("no run of %d free ports" % n)


def wait_port(port, proc=None, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and Procs._exited(proc):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(port, path="/hello", host=None, timeout=5.0):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if host:
        req.add_header("Host", host)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(port, timeout=30.0, path="/hello"):
    deadline = time.time() + timeout
    err = None
    while time.time() < deadline:
        try:
            st, _ = http_get(port, path, timeout=2)
            if st == 200:
                return True
        except Exception as e:  # noqa: BLE001
            err = e
        time.sleep(0.1)
    raise RuntimeError("no 200 from 127.0.0.1:%d%s within %.0fs: %s" % (port, path, timeout, err))


class StartError(RuntimeError):
    pass


def proc_cpu(pids):
    """utime+stime (seconds) of the given pids and all their descendants."""
    tck = os.sysconf("SC_CLK_TCK")
    children = {}
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        ppid = int(rest[1])
        stats[int(d)] = (int(rest[11]) + int(rest[12])) / tck
        children.setdefault(ppid, []).append(int(d))
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += stats.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


# --------------------------------------------------------------------------------------
# Workers

class Workers:
    """W worker processes of one kind, one port each (gunicorn: one master, one port;
    zkmaster: one zkworker --processes=W master, its processes on W consecutive ports)."""

    def __init__(self, kind, params, rundir, stats_dir, history=None, keepalive=False):
        self.kind, self.params, self.rundir, self.stats_dir = kind, params, rundir, stats_dir
        self.keepalive = keepalive
        self.history = history
        self.procs = {}   # name -> Popen
        self.ports = {}   # name -> port
        self.order = []   # names in start order
        os.makedirs(stats_dir, exist_ok=True)

    def env(self, name):
        p = self.params
        ws = p["sites"] * p["objects"]
        return {"BENCH_STATS_DIR": self.stats_dir, "BENCH_WORKER": name,
                "BENCH_CACHE_SIZE": str(int(math.ceil(p["cache_factor"] * ws / p["workers"]))),
                "BENCH_BASE_MS": str(p["base_ms"]), "BENCH_MISS_MS": str(p["miss_ms"])}

    def start_one(self, name, bins):
        port = free_port()
        logf = os.path.join(self.rundir, "%s.log" % name)
        t = str(self.params["threads"])
        if self.kind == "zk":
            argv = [bins["zkworker"], "--app=benchapp:application", "--pythonpath=" + APP_DIR,
                    "--address=127.0.0.1:%d" % port, "--threads=" + t, "--log_level=WARNING"]
            if self.history:
                argv.append("--history=%d" % self.history)
        elif self.kind == "uwsgi":
            # Behind a balancer uWSGI closes each connection after the response
            # (--http-socket): its keep-alive (--http11-socket) holds a thread per
            # connection, so a proxy's idle pooled connections starve it (HAProxy stalled
            # completely; nginx stalled clients). Hit directly (the ceiling), wrk opens
            # exactly one keep-alive connection per uWSGI thread.
            sock = "--http11-socket" if self.keepalive else "--http-socket"
            argv = ["uwsgi", "--plugin", "python3", sock, "127.0.0.1:%d" % port,
                    "--processes", "1", "--threads", t, "--die-on-term", "--disable-logging",
                    "--pythonpath", APP_DIR, "--module", "benchapp:application",
                    "--listen", "128"]
        elif self.kind == "gunicorn":
            argv = [PY, "-m", "gunicorn", "-w", str(self.params["workers"]), "--threads", t,
                    "-b", "127.0.0.1:%d" % port, "--chdir", APP_DIR, "--keep-alive", "5",
                    "--graceful-timeout", "2", "--log-level", "warning", "benchapp:application"]
        else:
            raise ValueError(self.kind)
        env = self.env(name)
        if self.kind == "gunicorn":
            env.pop("BENCH_WORKER")  # one stats file per process (pid)
        p = PROCS.start("%s-%s" % (self.kind, name), argv, logf, env=env)
        self.procs[name], self.ports[name] = p, port
        self.order.append(name)
        return name

    def start_master(self, bins, count, avoid):
        """zkworker --processes=count: process i listens on base+i; the master's Popen
        stands for every name (stopping it drains them all)."""
        base = free_port_run(count, avoid)
        logf = os.path.join(self.rundir, "zkmaster.log")
        argv = [bins["zkworker"], "--app=benchapp:application", "--pythonpath=" + APP_DIR,
                "--address=127.0.0.1:%d" % base, "--threads=" + str(self.params["threads"]),
                "--processes=%d" % count, "--log_level=WARNING"]
        if self.history:
            argv.append("--history=%d" % self.history)
        env = self.env("master")
        env.pop("BENCH_WORKER")  # one stats file per process (pid)
        p = PROCS.start("zkworker-master", argv, logf, env=env)
        names = ["w%d" % i for i in range(count)]
        for i, name in enumerate(names):
            self.procs[name], self.ports[name] = p, base + i
        self.order += names
        self.wait(names)
        return names

    def start(self, bins, n=None, avoid=()):
        if self.kind == "zkmaster":
            return self.start_master(bins, n or self.params["workers"], avoid)
        count = 1 if self.kind == "gunicorn" else (n or self.params["workers"])
        names = [self.start_one("w%d" % i, bins) for i in range(count)]
        self.wait(names)
        return names

    def add(self, bins):
        name = self.start_one("w%d" % len(self.order), bins)
        self.wait([name])
        return name

    def wait(self, names):
        for n in names:
            if not wait_port(self.ports[n], self.procs[n]):
                raise StartError("%s worker %s did not listen on %d (see %s.log)" %
                                 (self.kind, n, self.ports[n], n))
            if self.kind not in ("zk", "zkmaster"):  # zkworkers speak the LB protocol
                wait_http(self.ports[n])

    def addr(self, name):
        return "127.0.0.1:%d" % self.ports[name]

    def stop(self, name):
        PROCS.stop(self.procs[name])

    def stop_all(self):
        for p in {id(p): p for p in self.procs.values()}.values():
            PROCS.stop(p)


def read_stats(stats_dir):
    out = {}
    try:
        names = os.listdir(stats_dir)
    except OSError:
        return out
    for fn in names:
        if not fn.endswith(".stats"):
            continue
        try:
            with open(os.path.join(stats_dir, fn), "rb") as f:
                b = f.read(32)
            if len(b) == 32:
                out[fn[:-6]] = struct.unpack("<4Q", b)
        except OSError:
            pass
    return out


class Sampler(threading.Thread):
    """Samples every worker's counters every `interval` seconds."""

    def __init__(self, stats_dir, t0, interval=0.5):
        super().__init__(daemon=True)
        self.stats_dir, self.t0, self.interval = stats_dir, t0, interval
        self.samples = []  # (t, {name: (req, hits, misses, creq)})
        self.stop_ev = threading.Event()

    def sample(self):
        self.samples.append((time.time() - self.t0, read_stats(self.stats_dir)))

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(self.interval)

    def finish(self):
        self.stop_ev.set()
        self.join()
        self.sample()


# --------------------------------------------------------------------------------------
# Load balancers

class LB:
    def __init__(self, system, params, rundir, bins):
        self.s, self.params, self.rundir, self.bins = system, params, rundir, bins
        self.port = free_port()
        self.proc = None
        self.old = []  # processes replaced by reloads (HAProxy)
        self.gen = 0

    # which pids count as "the load balancer" for CPU accounting
    def pids(self):
        return [self.proc.pid] if self.proc else []

    def start(self, workers, names, popularity=None):
        raise NotImplementedError

    def reconfigure(self, workers, names, popularity=None):
        raise NotImplementedError

    def stop(self):
        for p in self.old + ([self.proc] if self.proc else []):
            PROCS.stop(p)
        self.old, self.proc = [], None


class ResumeLB(LB):
    def start(self, workers, names, popularity=None):
        self.gen += 1
        argv = [self.bins["resumelb"], "-a", "127.0.0.1:%d" % self.port, "-L", "WARNING",
                "-p", self.s["pool"]]
        if self.s.get("variance"):
            argv.append("--variance=%s" % self.s["variance"])
        argv += [workers.addr(n) for n in names]
        self.proc = PROCS.start("resumelb", argv, os.path.join(self.rundir, "resumelb.log"))
        if not wait_port(self.port, self.proc):
            raise StartError("resumelb did not listen (see resumelb.log)")

    def reconfigure(self, workers, names, popularity=None):
        # The basic resumelb has a static worker list: restart it with the new list.
        # SIGTERM drains (requests in flight finish), then the new one binds the port.
        old = self.proc
        PROCS.stop(old, signal.SIGTERM, timeout=30)
        self.start(workers, names)


def greedy_partition(pop, workers):
    """Balanced greedy partition of sites (heaviest first) onto the given workers."""
    load = {w: 0.0 for w in workers}
    assign = {}
    for site, p in sorted(pop.items(), key=lambda kv: (-kv[1], kv[0])):
        w = min(workers, key=lambda w: (load[w], workers.index(w)))
        assign[site] = w
        load[w] += p
    return assign


def rebalance(assign, pop, workers):
    """The oracle at a reconfiguration: knows the current popularities, moves few sites.
    Sites of a removed worker go to the least loaded; a new worker takes sites from the
    most loaded while that lowers the maximum load."""
    assign = {s: w for s, w in assign.items()}
    load = {w: 0.0 for w in workers}
    orphans = []
    for s, w in assign.items():
        if w in load:
            load[w] += pop[s]
        else:
            orphans.append(s)
    for s in sorted(orphans, key=lambda s: -pop[s]):
        w = min(workers, key=lambda w: load[w])
        assign[s] = w
        load[w] += pop[s]
    for _ in range(1000):
        hi = max(workers, key=lambda w: load[w])
        lo = min(workers, key=lambda w: load[w])
        best = None
        for s, w in assign.items():
            if w == hi and load[lo] + pop[s] < load[hi] and (best is None or pop[s] > pop[best]):
                if max(load[hi] - pop[s], load[lo] + pop[s]) < load[hi]:
                    best = s
        if best is None:
            break
        assign[best] = lo
        load[hi] -= pop[best]
        load[lo] += pop[best]
    return assign


class HAProxyLB(LB):
    def config(self, workers, names, popularity):
        s = self.s
        lines = ["global", "  maxconn 4000", "  hard-stop-after 15s", "",
                 "defaults", "  mode http", "  timeout connect 5s", "  timeout client 60s",
                 "  timeout server 60s", "  timeout http-keep-alive 60s", "",
                 "frontend fe", "  bind 127.0.0.1:%d" % self.port, "  default_backend be", "",
                 "backend be"]
        if self.s["workers"] == "uwsgi":
            # uWSGI's --http-socket closes after each response: say so (no reuse of
            # server connections; without it ~1 % of client connections got reset)
            lines.append("  option http-server-close")
        if s["balance"] in ("roundrobin", "leastconn", "oracle"):
            lines.append("  balance %s" % ("roundrobin" if s["balance"] == "oracle"
                                            else s["balance"]))
        elif s["balance"] == "hash":
            lines += ["  balance hdr(host)", "  hash-type consistent"]
            if s["factor"] != "off":
                lines.append("  hash-balance-factor %s" % s["factor"])
        if s["balance"] == "oracle":
            if self.assign is None:
                self.assign = greedy_partition(popularity, names)
            else:
                self.assign = rebalance(self.assign, popularity, names)
            for n in names:
                hosts = sorted(h for h, w in self.assign.items() if w == n)
                if hosts:
                    lines.append("  use-server %s if { req.hdr(host) -m str %s }" %
                                 (n, " ".join(hosts)))
        for n in names:
            lines.append("  server %s %s%s" % (n, workers.addr(n), " maxconn %d" % self.params[
                "server_maxconn"] if self.params["server_maxconn"] else ""))
        return "\n".join(lines) + "\n"

    def start(self, workers, names, popularity=None):
        self.assign = None
        self._launch(workers, names, popularity, replace=None)

    def _launch(self, workers, names, popularity, replace):
        self.gen += 1
        cfg = os.path.join(self.rundir, "haproxy-%d.cfg" % self.gen)
        with open(cfg, "w") as f:
            f.write(self.config(workers, names, popularity))
        argv = ["haproxy", "-f", cfg, "-db"]
        if replace is not None:
            argv += ["-sf", str(replace.pid)]  # soft stop: the old one finishes its requests
        self.proc = PROCS.start("haproxy", argv, os.path.join(self.rundir, "haproxy.log"))
        if replace is None and not wait_port(self.port, self.proc):
            raise StartError("haproxy did not listen (see haproxy.log)")
        if replace is not None:
            time.sleep(0.2)
            if Procs._exited(self.proc):
                raise StartError("haproxy reload failed (see haproxy.log)")

    def reconfigure(self, workers, names, popularity=None):
        old = self.proc
        self.old.append(old)
        self._launch(workers, names, popularity, replace=old)


class NginxLB(LB):
    def pids(self):
        return [self.proc.pid] if self.proc else []  # master + workers (descendants)

    def config(self, workers, names):
        d = self.rundir
        bal = {"least_conn": "least_conn;", "hash": "hash $host consistent;"}[self.s["balance"]]
        mc = self.params["server_maxconn"]
        servers = "\n".join("    server %s%s;" % (workers.addr(n), " max_conns=%d" % mc if mc else "")
                            for n in names)
        if mc:
            servers = "    zone app 64k;\n" + servers
        return """user root;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/nginx-tmp/body;
  proxy_temp_path {d}/nginx-tmp/proxy;
  fastcgi_temp_path {d}/nginx-tmp/fastcgi;
  uwsgi_temp_path {d}/nginx-tmp/uwsgi;
  scgi_temp_path {d}/nginx-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream app {{
    {bal}
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_set_header Host $http_host;
      proxy_buffering on;
    }}
  }}
}}
""".format(d=d, bal=bal, servers=servers, port=self.port)

    def write(self, workers, names):
        os.makedirs(os.path.join(self.rundir, "nginx-tmp"), exist_ok=True)
        self.conf = os.path.join(self.rundir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(self.config(workers, names))

    def start(self, workers, names, popularity=None):
        self.write(workers, names)
        argv = ["nginx", "-c", self.conf, "-e", os.path.join(self.rundir, "nginx-error.log"),
                "-g", "daemon off;"]
        self.proc = PROCS.start("nginx", argv, os.path.join(self.rundir, "nginx.log"))
        if not wait_port(self.port, self.proc):
            raise StartError("nginx did not listen (see nginx-error.log)")

    def reconfigure(self, workers, names, popularity=None):
        self.write(workers, names)
        os.kill(self.proc.pid, signal.SIGHUP)  # reload: new workers, old ones finish
        time.sleep(0.2)
        if Procs._exited(self.proc):
            raise StartError("nginx died on reload")


class DirectLB(LB):
    """No balancer: wrk's threads are spread over the worker ports (the ceiling)."""

    def start(self, workers, names, popularity=None):
        self.port = workers.ports[names[0]]
        self.direct = ",".join(workers.addr(n) for n in names)


def make_lb(system, params, rundir, bins):
    return {"resumelb": ResumeLB, "haproxy": HAProxyLB, "nginx": NginxLB,
            "direct": DirectLB}[system["lb"]](system, params, rundir, bins)


# --------------------------------------------------------------------------------------
# Load generation

def run_wrk(port, secs, conns, threads, script, out_json, env, log_path, direct=None):
    e = {"BENCH_LUA_DIR": LUA_DIR, "BENCH_OUT": out_json}
    e.update(env)
    if direct:
        e["BENCH_DIRECT"] = direct
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
            "--timeout", "%ds" % 10, "-s", os.path.join(LUA_DIR, script),
            "http://127.0.0.1:%d/" % port]
    return PROCS.start("wrk", argv, log_path, env=e)


def wrk_result(out_json):
    with open(out_json) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    return json.loads(lines[-1])


def wrk_once(port, secs, conns, threads, script, tmpdir, env, direct=None, tag="wrk"):
    out = os.path.join(tmpdir, "%s-%d.json" % (tag, int(time.time() * 1e6)))
    p = run_wrk(port, secs, conns, threads, script, out, env,
                os.path.join(tmpdir, "wrk.log"), direct)
    p.wait()
    PROCS.stop(p)
    if p.returncode != 0 or not os.path.exists(out):
        raise StartError("wrk failed (rc %s, see wrk.log)" % p.returncode)
    r = wrk_result(out)
    os.unlink(out)
    return r


# --------------------------------------------------------------------------------------
# Workloads

def zipf_pop(params, zipf, perm):
    n = params["sites"]
    w = [1.0 / (r ** zipf) for r in range(1, n + 1)]
    tot = sum(w)
    return {"s%d.example" % perm[r]: w[r] / tot for r in range(n)}


def run_hello(system, params, bins, rundir):
    is_direct = system["lb"] == "direct"
    workers = Workers(system["workers"], params, rundir, os.path.join(rundir, "stats"),
                      keepalive=is_direct)
    lb = make_lb(system, params, rundir, bins)
    try:
        names = workers.start(bins, avoid=[lb.port])
        lb.start(workers, names)
        wait_http(lb.port)
        direct = getattr(lb, "direct", None)
        c, t = params["hello_conns"], params["hello_wrk_threads"]
        if direct:
            # one keep-alive connection per uWSGI thread (more would starve: see above)
            t = len(names)
            c = len(names) * params["threads"]
        wrk_once(lb.port, params["hello_warm"], c, t, "hello.lua", rundir, {}, direct)
        pids = lb.pids()
        wpids = sorted({p.pid for p in workers.procs.values()})
        cpu0, wcpu0 = proc_cpu(pids), proc_cpu(wpids)
        r = wrk_once(lb.port, params["hello_secs"], c, t, "hello.lua", rundir, {}, direct)
        cpu1, wcpu1 = proc_cpu(pids), proc_cpu(wpids)
        lat = report.LatencyMix()
        lat.add(r)
        errors = sum(r["errors"].values())
        res = dict(requests=r["requests"], seconds=r["duration_us"] / 1e6,
                   rps=r["requests"] / (r["duration_us"] / 1e6), errors=r["errors"],
                   p50_ms=lat.quantile(0.5) / 1000, p99_ms=lat.quantile(0.99) / 1000)
        res["workers_cpu_per_1000"] = (wcpu1 - wcpu0) / max(1, r["requests"]) * 1000
        if pids:
            res["lb_cpu_s"] = cpu1 - cpu0
            res["lb_cpu_per_1000"] = (cpu1 - cpu0) / max(1, r["requests"]) * 1000
        if r["requests"] == 0 or errors > 0.01 * max(1, r["requests"]):
            res["failed"] = "requests=%d errors=%s" % (r["requests"], r["errors"])
        return res
    finally:
        lb.stop()
        workers.stop_all()


def cache_env(params, seg_seed, zipf, perm):
    return {"BENCH_SEED": str(seg_seed), "BENCH_SITES": str(params["sites"]),
            "BENCH_ZIPF": str(zipf), "BENCH_K": str(params["k"]),
            "BENCH_OBJECTS": str(params["objects"]),
            "BENCH_PERM": ",".join(str(x) for x in perm)}


def run_cache(system, params, bins, rundir, workload):
    """workload 'cache': phases warmup, stationary, shift, add, remove.
    workload 'hot': warmup, stationary with the hot-spot Zipf exponent."""
    n = params["sites"]
    perm0 = list(range(n))
    perm1 = list(range(n))
    random.Random(params["shift_seed"]).shuffle(perm1)
    if workload == "cache":
        zipf = params["zipf"]
        ph = params["phases"]
        plan = [("warmup", ph["warmup"], perm0, None), ("stationary", ph["stationary"], perm0, None),
                ("shift", ph["shift"], perm1, "shift"), ("add", ph["add"], perm1, "add"),
                ("remove", ph["remove"], perm1, "remove")]
    else:
        zipf = params["hot_zipf"]
        h = params["hot"]
        plan = [("warmup", h["warmup"], perm0, None), ("stationary", h["measure"], perm0, None)]
    stats_dir = os.path.join(rundir, "stats")
    history = params["zk_history"] if system["workers"] == "zk" else None
    workers = Workers(system["workers"], params, rundir, stats_dir, history=history)
    lb = make_lb(system, params, rundir, bins)
    segs, phases, events = [], [], []
    sampler = None
    try:
        names = workers.start(bins)
        lb.start(workers, names, zipf_pop(params, zipf, perm0))
        for h in range(min(n, 3)):
            st, _ = http_get(lb.port, "/c/1", host="s%d.example" % h)
            if st != 200:
                raise StartError("cache request answered %d" % st)
        t0 = time.time()
        sampler = Sampler(stats_dir, t0)
        sampler.start()
        seg_no = 0
        active = list(names)
        for (pname, dur, perm, action) in plan:
            pstart = time.time() - t0
            change_at = None
            end = time.time() + dur
            first = True
            while True:
                left = end - time.time()
                if left < 0.5:
                    break
                secs = max(1, min(params["seg"], int(round(left))))
                seg_no += 1
                out = os.path.join(rundir, "seg-%d.json" % seg_no)
                env = cache_env(params, params["seed"] * 100000 + seg_no, zipf, perm)
                s0 = time.time() - t0
                p = run_wrk(lb.port, secs, params["cache_conns"], params["cache_wrk_threads"],
                            "cache.lua", out, env, os.path.join(rundir, "wrk.log"))
                if first and action:
                    if action == "shift":
                        change_at = s0
                    else:
                        time.sleep(min(0.5, secs / 3.0))
                        if action == "add":
                            new = workers.add(bins)
                            active.append(new)
                        else:
                            active.remove(active[0])
                        change_at = time.time() - t0
                        lb.reconfigure(workers, active, zipf_pop(params, zipf, perm))
                        events.append(dict(phase=pname, action=action, t=change_at,
                                           done=time.time() - t0, workers=list(active)))
                first = False
                p.wait()
                PROCS.stop(p)
                s1 = time.time() - t0
                if p.returncode != 0 or not os.path.exists(out):
                    raise StartError("wrk failed (rc %s, see wrk.log)" % p.returncode)
                r = wrk_result(out)
                os.unlink(out)
                segs.append(dict(phase=pname, t0=s0, t1=s1, wrk=r))
            phases.append(dict(name=pname, t0=pstart, t1=time.time() - t0, change_at=change_at,
                               workers=list(active)))
        sampler.finish()
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.finish()
        lb.stop()
        workers.stop_all()
    return report.summarize_cache(phases, segs, sampler.samples if sampler else [], events,
                                  workload)


# --------------------------------------------------------------------------------------
# Driver

def machine_info():
    info = {"cpus": os.cpu_count(), "kernel": platform.release(),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["mem_total_kb"] = int(open("/proc/meminfo").readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        ps = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                            capture_output=True, text=True).stdout.splitlines()[:8]
        info["top_processes_at_start"] = [ln.strip() for ln in ps]
    except OSError:
        pass
    vers = {}
    for name, argv in [("haproxy", ["haproxy", "-v"]), ("nginx", ["nginx", "-v"]),
                       ("uwsgi", ["uwsgi", "--version"]), ("wrk", ["wrk", "-v"]),
                       ("gunicorn", [PY, "-m", "gunicorn", "--version"])]:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            vers[name] = (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            vers[name] = None
    info["versions"] = vers
    try:
        info["git"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "zklb", "zkworker",
                                "common"], capture_output=True, text=True).stdout.strip()
        info["git_dirty_lb_sources"] = bool(dirty)
    except OSError:
        pass
    return info


def best_factor(results, wl):
    """The haproxy-hash-* system with the highest median stationary throughput so far."""
    vals = {}
    for r in results["runs"]:
        if r["workload"] == wl and r["system"].startswith("haproxy-hash-") and not r.get("failed"):
            vals.setdefault(r["system"], []).append(r["phases"]["stationary"]["rps"])
    if not vals:
        return None
    return max(vals, key=lambda k: sorted(vals[k])[len(vals[k]) // 2])


def ensure_built(args):
    bdir = os.path.abspath(args.build_dir)
    bins = {"resumelb": os.path.join(bdir, "zklb", "resumelb"),
            "zkworker": os.path.join(bdir, "zkworker", "zkworker")}
    if args.no_build:
        for b in bins.values():
            if not os.access(b, os.X_OK):
                sys.exit("run.py: %s missing and --no-build given" % b)
        return bins
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        log("configuring %s" % bdir)
        subprocess.run(["nice", "cmake", "-S", REPO, "-B", bdir, "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DPython3_EXECUTABLE=/usr/bin/python3"], check=True)
    log("building resumelb and zkworker in %s (nice)" % bdir)
    subprocess.run(["nice", "cmake", "--build", bdir, "--target", "resumelb", "zkworker"],
                   check=True)
    return bins


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true", help="seconds per system; CI check")
    g.add_argument("--quick", action="store_true", help="one short repetition")
    ap.add_argument("--reps", type=int, help="repetitions (full: 3)")
    ap.add_argument("--out", help="output directory (default bench/results/<mode>-<time>)")
    ap.add_argument("--workloads", default="hello,cache,hot",
                    help="comma-separated subset of hello,cache,hot")
    ap.add_argument("--systems", help="comma-separated system names (default: all)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--no-build", action="store_true", help="use the existing binaries")
    ap.add_argument("--no-install", action="store_true", help="skip install-deps.sh --bench")
    ap.add_argument("--zk-history", type=int, help="zkworker --history for cache workloads")
    ap.add_argument("--threads", type=int,
                    help="application threads per worker process, every system (2)")
    args = ap.parse_args()

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    params = mode_params(mode)
    if args.reps:
        params["reps"] = args.reps
    if args.zk_history:
        params["zk_history"] = args.zk_history
    if args.threads is not None:
        if args.threads < 1:
            ap.error("--threads must be at least 1")
        params["threads"] = args.threads
    out = os.path.abspath(args.out or os.path.join(
        BENCH_DIR, "results", "%s-%s" % (mode, time.strftime("%Y%m%d-%H%M%S"))))
    os.makedirs(out, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.time()
    if not args.no_install:
        log("installing packages: deploy/install-deps.sh --bench")
        subprocess.run(["bash", os.path.join(REPO, "deploy", "install-deps.sh"), "--bench"],
                       check=True)
    bins = ensure_built(args)
    missing = [t for t in ("haproxy", "nginx", "uwsgi", "wrk") if not shutil.which(
        t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        sys.exit("run.py: missing %s (run deploy/install-deps.sh --bench)" % " ".join(missing))

    info = machine_info()
    log("machine: %d cpus, load average %s" % (info["cpus"], " ".join(info["loadavg_start"])))
    workloads = [w for w in args.workloads.split(",") if w]
    if params["hot"] is None and "hot" in workloads:
        workloads.remove("hot")
    systems = all_systems(params)
    if args.systems:
        want = set(args.systems.split(","))
        unknown = want - {s["name"] for s in systems}
        if unknown:
            sys.exit("run.py: unknown systems %s" % ", ".join(sorted(unknown)))
        systems = [s for s in systems if s["name"] in want]
    else:
        systems = [s for s in systems if not s.get("extra")]

    results = dict(mode=mode, params=params, machine=info,
                   started=datetime.datetime.now().isoformat(timespec="seconds"),
                   runs=[], failures=[])
    failures = results["failures"]
    try:
        for rep in range(params["reps"]):
            for wl in workloads:
                best = None
                if rep >= params["sweep_reps"] and wl in ("cache", "hot"):
                    best = best_factor(results, wl)
                for s in systems:
                    if wl not in s["workloads"]:
                        continue
                    if best and s.get("family") == "haproxy-hash" and s["name"] != best:
                        continue
                    rundir = os.path.join(out, "runs", "%s-%s-%d" % (wl, s["name"], rep + 1))
                    os.makedirs(rundir, exist_ok=True)
                    load = open("/proc/loadavg").read().split()[0]
                    log("rep %d/%d %-6s %-20s (load %s)" % (rep + 1, params["reps"], wl,
                                                            s["name"], load))
                    try:
                        if wl == "hello":
                            res = run_hello(s, params, bins, rundir)
                        else:
                            res = run_cache(s, params, bins, rundir, wl)
                    except (StartError, RuntimeError, OSError, subprocess.SubprocessError) as e:
                        res = dict(failed=str(e))
                    res.update(workload=wl, system=s["name"], rep=rep + 1, loadavg=load)
                    if res.get("failed"):
                        log("  FAILED: %s" % res["failed"])
                        failures.append("%s/%s rep %d: %s" % (wl, s["name"], rep + 1,
                                                              res["failed"]))
                    else:
                        log("  " + report.one_line(res))
                    results["runs"].append(res)
                    with open(os.path.join(out, "results.json"), "w") as f:
                        json.dump(results, f, indent=1)
    except KeyboardInterrupt:
        log("interrupted; stopping every process")
        failures.append("interrupted")
    finally:
        PROCS.stop_all()
    results["elapsed_s"] = round(time.time() - started, 1)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    report.write_report(results, out, systems_meta=all_systems(params))
    log("results: %s/results.json, report: %s/report.md (%.0f s)" %
        (out, out, results["elapsed_s"]))
    if failures:
        log("%d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
        sys.exit(1)


if __name__ == "__main__":
    main()
