#!/usr/bin/python3
"""Per-request cost: what one request costs the load balancer alone, and the worker alone.

    bench/percost.py              5 alternating rounds (~8 min), syscall round, perf profile
    bench/percost.py --smoke      every system once for a second (CI: runs, produces numbers)
    bench/percost.py --rounds 3 --secs 3 --no-profile     a shorter run

LB alone (wrk keep-alive at 32 and 128 connections, 2 wrk threads):
  resumelb  -> instant-worker (bench/instant_worker: answers every request at once)
  haproxy   (nbthread 1, http-reuse always) -> nginx `return 200`
  nginx     (1 worker process, upstream keepalive) -> nginx `return 200`
Worker alone (the hello app of bench/apps/benchapp.py):
  zkworker --threads=1 behind resumelb, at 1 and 8 concurrent connections
  uWSGI --http11-socket, 1 process, 1 thread at 1 connection (8 threads at 8: its keep-alive
  holds a thread per connection), wrk straight to it
  the in-process call: benchapp.application called in a loop by Python (the floor)

Measured per cell, for the measured process tree only (the balancer; the worker): CPU µs per
request from /proc/PID/stat (utime + stime deltas around the wrk run), context switches per
request (/proc/PID/task/*/status voluntary + nonvoluntary), requests/s. Rounds alternate the
systems (rotated order), and ratios are taken within a round, then the median over rounds.
Syscalls per request come from a separate round under `perf stat -e raw_syscalls:sys_enter`
(strace -c -f if perf is missing), malloc calls per request from another under `perf stat`
with a uprobe on libc's malloc (created for the run and removed after; --no-mallocs skips it). The full mode ends with `perf record -g` profiles of
resumelb and HAProxy at 32 connections (perf-*.txt).

--extra-resumelb NAME=PATH (and --extra-zkworker NAME=PATH) add another binary as one more
system in the same rounds, e.g. the build before a change: same-round before/after ratios.

Writes results.json and report.md into --out (default bench/results/percost-<time>).
docs/benchmarks.md ("Per-request cost") explains the method and the reference numbers.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
import run  # noqa: E402  (bench/run.py: process handling, ports, machine info)
from run import PROCS, StartError, free_port, log, wait_port, wait_http  # noqa: E402

APP_DIR = run.APP_DIR
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TARGET_LB = 0.6       # resumelb CPU/request <= 0.6 x HAProxy's (32 and 128 connections)
TARGET_WORKER_1 = 1.0  # zkworker <= uWSGI at 1 connection
TARGET_WORKER_8 = 0.7  # zkworker <= 0.7 x uWSGI at 8


# --------------------------------------------------------------------------------------
# Process measurements

def tree_pids(root):
    """root and all its descendants (nginx and uWSGI may fork)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def cpu_seconds(pids):
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        total += (int(rest[11]) + int(rest[12])) / tck
    return total


def ctx_switches(pids):
    """voluntary + nonvoluntary context switches of every thread of the pids."""
    total = 0
    for p in pids:
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/status" % (p, t)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


WRK_REQ = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_SOCKERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(port, path, conns, secs, logf):
    """One wrk run; returns (requests, seconds, errors)."""
    threads = min(2, conns)
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--timeout", "10s",
            "http://127.0.0.1:%d%s" % (port, path)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 60,
                       env={"PATH": SYS_PATH})
    with open(logf, "a") as f:
        f.write(" ".join(argv) + "\n" + r.stdout + r.stderr + "\n")
    m = WRK_REQ.search(r.stdout)
    if r.returncode != 0 or not m:
        raise StartError("wrk failed (rc %s): %s" % (r.returncode, (r.stdout + r.stderr)[-300:]))
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = 0
    n = WRK_NON2XX.search(r.stdout)
    if n:
        errors += int(n.group(1))
    e = WRK_SOCKERR.search(r.stdout)
    if e:
        errors += sum(int(x) for x in e.groups())
    return int(m.group(1)), float(m.group(2)) * unit, errors


# --------------------------------------------------------------------------------------
# Systems. Each has start(), port, path, and measured() -> the root pid of what is measured.

class System:
    path = "/hello"

    def __init__(self, name, rundir):
        self.name, self.rundir = name, rundir
        self.port = None

    def logf(self, what):
        return os.path.join(self.rundir, "%s-%s.log" % (self.name, what))

    def measured(self):
        raise NotImplementedError

    def start(self):
        raise NotImplementedError


def start_resumelb(binary, port, worker_port, logf):
    p = PROCS.start("resumelb", [binary, "-a", "127.0.0.1:%d" % port, "-L", "WARNING",
                                 "127.0.0.1:%d" % worker_port], logf)
    if not wait_port(port, p):
        raise StartError("resumelb did not listen (see %s)" % logf)
    wait_http(port, path="/hello")  # the worker has sent its résumé
    return p


class InstantWorker:
    def __init__(self, binary, logf):
        self.proc = PROCS.start("instant-worker", [binary, "--address=127.0.0.1:0"], logf)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(logf) as f:
                m = re.search(r"listening on [^\s]*:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if PROCS._exited(self.proc):
                break
            time.sleep(0.05)
        raise StartError("instant-worker did not listen (see %s)" % logf)


class ResumelbInstant(System):
    """resumelb -> its own instant-worker; measured: resumelb."""
    path = "/"

    def __init__(self, name, rundir, resumelb, instant):
        super().__init__(name, rundir)
        self.resumelb, self.instant = resumelb, instant

    def start(self):
        w = InstantWorker(self.instant, self.logf("instant-worker"))
        self.port = free_port()
        self.proc = start_resumelb(self.resumelb, self.port, w.port, self.logf("resumelb"))

    def measured(self):
        return self.proc.pid


NGINX_COMMON = """worker_processes 1;
pid {d}/{name}.pid;
error_log {d}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/{name}-tmp/body;
  proxy_temp_path {d}/{name}-tmp/proxy;
  fastcgi_temp_path {d}/{name}-tmp/fastcgi;
  uwsgi_temp_path {d}/{name}-tmp/uwsgi;
  scgi_temp_path {d}/{name}-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
{body}
}}
"""


def start_nginx(name, rundir, body, port):
    os.makedirs(os.path.join(rundir, "%s-tmp" % name), exist_ok=True)
    conf = os.path.join(rundir, "%s.conf" % name)
    with open(conf, "w") as f:
        f.write("user root;\n" + NGINX_COMMON.format(d=rundir, name=name, body=body))
    p = PROCS.start(name, ["nginx", "-c", conf, "-e", os.path.join(rundir, "%s-error.log" % name),
                           "-g", "daemon off;"], os.path.join(rundir, "%s.log" % name))
    if not wait_port(port, p):
        raise StartError("%s did not listen (see %s-error.log)" % (name, name))
    return p


class NginxOrigin:
    """nginx `return 200` with benchapp's hello body: the peers' instant worker."""

    def __init__(self, rundir):
        self.port = free_port()
        body = """  server {
    listen 127.0.0.1:%d;
    location / { default_type text/plain; return 200 "Hello, world!\\n"; }
  }""" % self.port
        self.proc = start_nginx("origin", rundir, body, self.port)


class HAProxyToOrigin(System):
    path = "/"

    def __init__(self, name, rundir, origin):
        super().__init__(name, rundir)
        self.origin = origin

    def start(self):
        self.port = free_port()
        cfg = os.path.join(self.rundir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "global", "  nbthread 1", "  maxconn 4000", "",
                "defaults", "  mode http", "  timeout connect 5s", "  timeout client 60s",
                "  timeout server 60s", "  timeout http-keep-alive 60s", "",
                "frontend fe", "  bind 127.0.0.1:%d" % self.port, "  default_backend be", "",
                "backend be", "  http-reuse always",
                "  server origin 127.0.0.1:%d" % self.origin.port, ""]))
        self.proc = PROCS.start("haproxy", ["haproxy", "-f", cfg, "-db"], self.logf("haproxy"))
        if not wait_port(self.port, self.proc):
            raise StartError("haproxy did not listen")
        wait_http(self.port, path="/")

    def measured(self):
        return self.proc.pid


class NginxToOrigin(System):
    path = "/"

    def __init__(self, name, rundir, origin):
        super().__init__(name, rundir)
        self.origin = origin

    def start(self):
        self.port = free_port()
        body = """  upstream origin {
    server 127.0.0.1:%d;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }
  }""" % (self.origin.port, self.port)
        self.proc = start_nginx("nginx-lb", self.rundir, body, self.port)
        wait_http(self.port, path="/")

    def measured(self):
        return self.proc.pid  # master + its worker (the master does nothing per request)


class ZkworkerBehindLb(System):
    """zkworker --threads=N behind resumelb; measured: zkworker."""

    def __init__(self, name, rundir, zkworker, resumelb, threads=1):
        super().__init__(name, rundir)
        self.zkworker, self.resumelb, self.threads = zkworker, resumelb, threads

    def start(self):
        wport = free_port()
        self.wproc = PROCS.start("zkworker", [
            self.zkworker, "--app=benchapp:application", "--pythonpath=" + APP_DIR,
            "--address=127.0.0.1:%d" % wport, "--threads=%d" % self.threads,
            "--log_level=WARNING"], self.logf("zkworker"))
        if not wait_port(wport, self.wproc):
            raise StartError("zkworker did not listen (see %s)" % self.logf("zkworker"))
        self.port = free_port()
        self.proc = start_resumelb(self.resumelb, self.port, wport, self.logf("resumelb"))

    def measured(self):
        return self.wproc.pid


class Uwsgi(System):
    """uWSGI --http11-socket, 1 process, N threads, hit by wrk directly; measured: uWSGI."""

    def __init__(self, name, rundir, threads):
        super().__init__(name, rundir)
        self.threads = threads

    def start(self):
        self.port = free_port()
        self.proc = PROCS.start("uwsgi", [
            "uwsgi", "--plugin", "python3", "--http11-socket", "127.0.0.1:%d" % self.port,
            "--processes", "1", "--threads", str(self.threads), "--die-on-term",
            "--disable-logging", "--pythonpath", APP_DIR, "--module", "benchapp:application",
            "--listen", "128"], self.logf("uwsgi"))
        if not wait_port(self.port, self.proc):
            raise StartError("uwsgi did not listen (see %s)" % self.logf("uwsgi"))
        wait_http(self.port)

    def measured(self):
        return self.proc.pid


IN_PROCESS = r"""
import io, sys, time
sys.path.insert(0, %r)
import benchapp
environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/hello",
           "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
           "HTTP_HOST": "127.0.0.1:8080", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
           "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
           "wsgi.multiprocess": False, "wsgi.run_once": False}
def start_response(status, headers, exc_info=None):
    return None
def call():
    body = benchapp.application(environ, start_response)
    for chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
n = %d
for _ in range(n // 10):
    call()
t0 = time.process_time_ns()
for _ in range(n):
    call()
print((time.process_time_ns() - t0) / 1000.0 / n)
"""


def in_process_us(calls):
    r = subprocess.run(["/usr/bin/python3", "-c", IN_PROCESS % (APP_DIR, calls)],
                       capture_output=True, text=True, timeout=120, env={"PATH": SYS_PATH})
    if r.returncode != 0:
        raise StartError("in-process call failed: " + r.stderr[-300:])
    return float(r.stdout.strip())


# --------------------------------------------------------------------------------------
# Cells and rounds

def measure(system, conns, secs, rundir):
    pids = tree_pids(system.measured())
    c0, x0 = cpu_seconds(pids), ctx_switches(pids)
    n, took, errors = wrk(system.port, system.path, conns, secs,
                          os.path.join(rundir, "wrk.log"))
    c1, x1 = cpu_seconds(pids), ctx_switches(pids)
    n = max(1, n)
    return dict(requests=n, seconds=took, rps=n / took, errors=errors,
                cpu_us=(c1 - c0) / n * 1e6, ctx=(x1 - x0) / n,
                load=float(open("/proc/loadavg").read().split()[0]))


LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
MALLOC_EVENT = "probe_libc:malloc"


def malloc_probe():
    """A uprobe on libc's malloc for perf stat (created if missing). Returns (usable,
    created): the caller deletes a probe it created."""
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True)
    if MALLOC_EVENT in listed.stdout:
        return True, False
    r = subprocess.run(["perf", "probe", "-x", LIBC, "--add", "malloc"], capture_output=True,
                       text=True)
    return r.returncode == 0, r.returncode == 0


def syscalls(system, conns, secs, rundir, tool, events=None):
    """Syscalls (and context switches, with perf) per request in one wrk run; with
    `events` (perf only), those events per request instead (e.g. malloc calls)."""
    pids = tree_pids(system.measured())
    tag = "mallocs" if events else "syscalls"
    out = os.path.join(rundir, "%s-%s-%d.txt" % (tag, system.name, conns))
    if tool == "perf":
        argv = ["perf", "stat", "-x", ",", "-e", events or "raw_syscalls:sys_enter,context-switches",
                "-p", ",".join(str(p) for p in pids), "-o", out]
    else:
        argv = ["strace", "-c", "-f", "-o", out] + [a for p in pids for a in ("-p", str(p))]
    tracer = PROCS.start(tool, argv, os.path.join(rundir, "%s.log" % tool))
    time.sleep(0.5)  # attached
    try:
        n, _, _ = wrk(system.port, system.path, conns, secs, os.path.join(rundir, "wrk.log"))
    finally:
        PROCS.stop(tracer, sig=signal.SIGINT, timeout=30)
    n = max(1, n)
    res = dict(requests=n, tool=tool)
    with open(out) as f:
        text = f.read()
    if tool == "perf":
        for line in text.splitlines():
            parts = line.split(",")
            if len(parts) > 2 and parts[0].strip().isdigit():
                if parts[2].startswith("raw_syscalls:sys_enter"):
                    res["syscalls"] = int(parts[0]) / n
                elif parts[2].startswith("context-switches"):
                    res["ctx"] = int(parts[0]) / n
                elif parts[2].startswith(MALLOC_EVENT):
                    res["mallocs"] = int(parts[0]) / n
    else:
        m = re.search(r"^\s*100\.00\s+\S+\s+\S+\s+(\d+)", text, re.M)
        if m:
            res["syscalls"] = int(m.group(1)) / n
    return res


def profile(system, conns, secs, rundir):
    """perf record -g of the measured process under load; perf report summaries."""
    pids = tree_pids(system.measured())
    data = os.path.join(rundir, "perf-%s.data" % system.name)
    rec = PROCS.start("perf-record", ["perf", "record", "-F", "1999", "-g", "-o", data,
                                      "-p", ",".join(str(p) for p in pids)],
                      os.path.join(rundir, "perf-record.log"))
    time.sleep(0.5)
    try:
        wrk(system.port, system.path, conns, secs, os.path.join(rundir, "wrk.log"))
    finally:
        PROCS.stop(rec, sig=signal.SIGINT, timeout=60)
    txt = os.path.join(rundir, "perf-%s.txt" % system.name)
    with open(txt, "w") as f:
        for title, extra in (("self time by object", ["--no-children", "--sort", "dso"]),
                             ("self time by symbol", ["--no-children", "--sort", "dso,symbol",
                                                      "--percent-limit", "0.7"]),
                             ("time including callees", ["--children", "--sort", "symbol",
                                                         "--percent-limit", "4"])):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + extra,
                               capture_output=True, text=True, timeout=300)
            lines = [re.sub(r"\s+-\s+-\s*$", "", ln).rstrip() for ln in r.stdout.splitlines()
                     if ln.strip() and not ln.startswith("#")]
            f.write("## %s\n%s\n\n" % (title, "\n".join(lines)))
    return txt


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


# --------------------------------------------------------------------------------------
# Report

def f(x, nd=1):
    return "–" if x is None else ("%.*f" % (nd, x))


def summarize(results):
    cells = {}
    for r in results["rounds"]:
        for key, m in r["cells"].items():
            cells.setdefault(key, []).append(m)
    summary = {}
    for key, ms in cells.items():
        cpu = [m["cpu_us"] for m in ms]
        summary[key] = dict(cpu_us=med(cpu), cpu_min=min(cpu), cpu_max=max(cpu),
                            ctx=med([m["ctx"] for m in ms]), rps=med([m["rps"] for m in ms]),
                            errors=sum(m["errors"] for m in ms), rounds=len(ms))
        sc = results["syscalls"].get(key)
        if sc:
            summary[key]["syscalls"] = sc.get("syscalls")
            summary[key]["ctx_perf"] = sc.get("ctx")
        summary[key]["mallocs"] = results["mallocs"].get(key, {}).get("mallocs")
    ratios = {}
    for name, (a, b) in results["ratio_defs"].items():
        per = [r["cells"][a]["cpu_us"] / r["cells"][b]["cpu_us"] for r in results["rounds"]
               if a in r["cells"] and b in r["cells"] and r["cells"][b]["cpu_us"] > 0]
        if per:
            ratios[name] = dict(median=med(per), rounds=per, a=a, b=b)
    results["summary"], results["ratios"] = summary, ratios


def markdown(results):
    s, ra = results["summary"], results["ratios"]
    out = ["# Per-request cost (%s)" % results["mode"], "",
           "%s; %d round(s) of %d s per cell; machine: %d cpus, load average %s at the start. "
           "Cells: median over rounds (min–max); syscalls from one separate round (%s), "
           "malloc calls (libc's, a perf uprobe) from another." % (
               results["started"], len(results["rounds"]), results["secs"],
               results["machine"]["cpus"], " ".join(results["machine"]["loadavg_start"]),
               results["syscall_tool"] or "none"), ""]
    out += ["| system | conns | CPU µs/request | syscalls/request | context switches/request "
            "| mallocs/request | req/s | errors |", "|---|---|---|---|---|---|---|---|"]
    for key in results["order"]:
        c = s.get(key)
        if not c:
            continue
        name, conns = key.rsplit("@", 1)
        out.append("| %s | %s | %s (%s–%s) | %s | %s | %s | %.0f | %d |" % (
            name, conns, f(c["cpu_us"]), f(c["cpu_min"]), f(c["cpu_max"]),
            f(c.get("syscalls"), 2), f(c["ctx"], 2), f(c.get("mallocs"), 1), c["rps"],
            c["errors"]))
    if "in-process" in results:
        out.append("| in-process call (benchapp.application) | – | %s | – | – | – | – | – |" %
                   f(results["in-process"], 2))
    out += ["", "Same-round CPU ratios (median over rounds; per round in brackets):", ""]
    for name, r in ra.items():
        target = results["targets"].get(name)
        verdict = ""
        if target is not None:
            verdict = " — target ≤ %.2f: **%s**" % (target, "met" if r["median"] <= target
                                                    else "missed")
        out.append("* %s: %.2f [%s]%s" % (name, r["median"], ", ".join(
            "%.2f" % x for x in r["rounds"]), verdict))
    if results.get("profiles"):
        out += ["", "Profiles: " + ", ".join(os.path.basename(p) for p in results["profiles"])]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# Driver

def ensure_built(args):
    bdir = os.path.abspath(args.build_dir)
    bins = {"resumelb": os.path.join(bdir, "zklb", "resumelb"),
            "zkworker": os.path.join(bdir, "zkworker", "zkworker"),
            "instant": os.path.join(bdir, "bench", "instant_worker", "instant-worker")}
    if not args.no_build:
        if not os.path.exists(os.path.join(bdir, "build.ninja")):
            subprocess.run(["nice", "cmake", "-S", REPO, "-B", bdir, "-G", "Ninja",
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                            "-DPython3_EXECUTABLE=/usr/bin/python3"], check=True)
        log("building resumelb, zkworker and instant-worker in %s (nice)" % bdir)
        subprocess.run(["nice", "cmake", "--build", bdir, "--target", "resumelb", "zkworker",
                        "instant-worker"], check=True)
    for b in bins.values():
        if not os.access(b, os.X_OK):
            sys.exit("percost.py: %s missing" % b)
    return bins


def named_binaries(specs, what):
    out = []
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not os.access(path, os.X_OK):
            sys.exit("percost.py: --extra-%s wants NAME=EXECUTABLE, got %r" % (what, spec))
        out.append((name, os.path.abspath(path)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="every cell once for 1 s (CI)")
    ap.add_argument("--rounds", type=int, help="alternating rounds (default 5)")
    ap.add_argument("--secs", type=int, help="seconds per cell per round (default 5)")
    ap.add_argument("--no-profile", action="store_true", help="skip the perf record profiles")
    ap.add_argument("--no-mallocs", action="store_true",
                    help="skip the malloc-counting round (it adds a uprobe on libc's malloc)")
    ap.add_argument("--part", choices=["all", "lb", "worker"], default="all")
    ap.add_argument("--out", help="output directory (default bench/results/percost-<time>)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--no-build", action="store_true", help="use the existing binaries")
    ap.add_argument("--extra-resumelb", action="append", metavar="NAME=PATH",
                    help="another resumelb binary in the LB cells (repeatable)")
    ap.add_argument("--extra-zkworker", action="append", metavar="NAME=PATH",
                    help="another zkworker binary in the worker cells (repeatable)")
    args = ap.parse_args()

    mode = "smoke" if args.smoke else "full"
    rounds = args.rounds or (1 if args.smoke else 5)
    secs = args.secs or (1 if args.smoke else 5)
    want_profile = not args.smoke and not args.no_profile
    out = os.path.abspath(args.out or os.path.join(
        BENCH_DIR, "results", "percost-%s" % time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    missing = [t for t in ("haproxy", "nginx", "uwsgi", "wrk")
               if not shutil.which(t, path=SYS_PATH)]
    if missing:
        sys.exit("percost.py: missing %s (run deploy/install-deps.sh --bench)" % " ".join(missing))
    tool = "perf" if shutil.which("perf", path=SYS_PATH) else (
        "strace" if shutil.which("strace", path=SYS_PATH) else None)
    bins = ensure_built(args)
    extra_lb = named_binaries(args.extra_resumelb, "resumelb")
    extra_zk = named_binaries(args.extra_zkworker, "zkworker")

    lb_conns = [32] if args.smoke else [32, 128]
    cells = []          # (key, system, conns)
    ratio_defs, targets = {}, {}
    systems = []
    if args.part in ("all", "lb"):
        origin = NginxOrigin(out)
        lb = [ResumelbInstant("resumelb", out, bins["resumelb"], bins["instant"]),
              HAProxyToOrigin("haproxy", out, origin), NginxToOrigin("nginx", out, origin)]
        lb += [ResumelbInstant(n, out, p, bins["instant"]) for n, p in extra_lb]
        systems += lb
        for c in lb_conns:
            cells += [("%s@%d" % (s.name, c), s, c) for s in lb]
            for s in [lb[0]] + lb[3:]:
                name = "%s / haproxy @%d" % (s.name, c)
                ratio_defs[name] = ("%s@%d" % (s.name, c), "haproxy@%d" % c)
                targets[name] = TARGET_LB
                ratio_defs["%s / nginx @%d" % (s.name, c)] = ("%s@%d" % (s.name, c),
                                                             "nginx@%d" % c)
            for n, _ in extra_lb:
                ratio_defs["resumelb / %s @%d" % (n, c)] = ("resumelb@%d" % c, "%s@%d" % (n, c))
    if args.part in ("all", "worker"):
        zks = [ZkworkerBehindLb("zkworker-t1", out, bins["zkworker"], bins["resumelb"])]
        zks += [ZkworkerBehindLb(n + "-t1", out, p, bins["resumelb"]) for n, p in extra_zk]
        u1, u8 = Uwsgi("uwsgi-t1", out, 1), Uwsgi("uwsgi-t8", out, 8)
        systems += zks + [u1, u8]
        for z in zks:
            cells += [("%s@1" % z.name, z, 1), ("%s@8" % z.name, z, 8)]
            ratio_defs["%s / uwsgi-t1 @1" % z.name] = ("%s@1" % z.name, "uwsgi-t1@1")
            targets["%s / uwsgi-t1 @1" % z.name] = TARGET_WORKER_1
            ratio_defs["%s @8 / uwsgi-t8 @8" % z.name] = ("%s@8" % z.name, "uwsgi-t8@8")
            targets["%s @8 / uwsgi-t8 @8" % z.name] = TARGET_WORKER_8
            ratio_defs["%s @8 / uwsgi-t1 @1" % z.name] = ("%s@8" % z.name, "uwsgi-t1@1")
        for n, _ in extra_zk:
            ratio_defs["zkworker / %s @1" % n] = ("zkworker-t1@1", "%s-t1@1" % n)
            ratio_defs["zkworker / %s @8" % n] = ("zkworker-t1@8", "%s-t1@8" % n)
        cells += [("uwsgi-t1@1", u1, 1), ("uwsgi-t8@8", u8, 8)]

    results = dict(mode=mode, secs=secs, machine=run.machine_info(), syscall_tool=tool,
                   started=datetime.datetime.now().isoformat(timespec="seconds"),
                   order=[k for k, _, _ in cells], ratio_defs=ratio_defs, targets=targets,
                   rounds=[], syscalls={}, mallocs={}, profiles=[], failures=[])
    failed = False
    created_probe = False
    try:
        for s in systems:
            log("starting %s" % s.name)
            s.start()
        log("warm-up")
        for key, s, c in cells:
            wrk(s.port, s.path, c, 1, os.path.join(out, "wrk.log"))
        for rnd in range(rounds):
            k = rnd % len(cells)
            order = cells[k:] + cells[:k]  # alternate: each round starts elsewhere
            r = dict(cells={}, load=open("/proc/loadavg").read().split()[0])
            for key, s, c in order:
                r["cells"][key] = m = measure(s, c, secs, out)
                log("round %d/%d %-22s %7.1f µs/req %6.2f cs/req %8.0f req/s (load %.2f)" % (
                    rnd + 1, rounds, key, m["cpu_us"], m["ctx"], m["rps"], m["load"]))
            results["rounds"].append(r)
        if args.part in ("all", "worker"):
            results["in-process"] = in_process_us(20000 if args.smoke else 200000)
            log("in-process call: %.2f µs" % results["in-process"])
        if tool:
            for key, s, c in cells:
                results["syscalls"][key] = sc = syscalls(s, c, min(secs, 3), out, tool)
                log("syscalls %-22s %s/req" % (key, f(sc.get("syscalls"), 2)))
        if tool == "perf" and not args.no_mallocs:
            usable, created_probe = malloc_probe()
            if usable:
                for key, s, c in cells:
                    results["mallocs"][key] = m = syscalls(s, c, min(secs, 2), out, tool,
                                                           events=MALLOC_EVENT)
                    log("mallocs  %-22s %s/req" % (key, f(m.get("mallocs"), 1)))
            else:
                log("no malloc uprobe (perf probe failed): malloc counts skipped")
        if want_profile and tool == "perf" and args.part in ("all", "lb"):
            for s in systems[:2]:  # resumelb, haproxy
                results["profiles"].append(profile(s, 32, secs, out))
    except KeyboardInterrupt:
        results["failures"].append("interrupted")
    except (StartError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        results["failures"].append(str(e))
    finally:
        PROCS.stop_all()
        if created_probe:  # a probe this run added is removed; one found is left
            subprocess.run(["perf", "probe", "-d", MALLOC_EVENT], capture_output=True)
    if results["rounds"]:
        summarize(results)
        for key in results["order"]:
            c = results["summary"].get(key)
            if not c or c["cpu_us"] is None or c["rps"] <= 0:
                results["failures"].append("%s: no numbers" % key)
            elif c["errors"]:
                results["failures"].append("%s: %d errors" % (key, c["errors"]))
        if tool and any(v.get("syscalls") is None for v in results["syscalls"].values()):
            results["failures"].append("syscall counts missing (see syscalls-*.txt)")
    elif not results["failures"]:
        results["failures"].append("no round completed")
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    if results["rounds"]:
        with open(os.path.join(out, "report.md"), "w") as fh:
            fh.write(markdown(results))
        sys.stdout.write(markdown(results))
    if results["failures"]:
        failed = True
        log("%d failure(s):\n  %s" % (len(results["failures"]), "\n  ".join(results["failures"])))
    log("results: %s/results.json, %s/report.md" % (out, out))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
