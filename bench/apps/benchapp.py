"""The one WSGI application every benchmarked system runs (zkworker, uWSGI, gunicorn).

Routes
  /hello          "Hello, world!" (the hello workload)
  /c/ID_ID_...    the cache workload: each ID is an object of the site named by the Host
                  header; a per-process LRU cache of BENCH_CACHE_SIZE (host, id) keys;
                  every request sleeps BENCH_BASE_MS, plus BENCH_MISS_MS per miss (a
                  fixed I/O cost per miss, in one sleep, GIL released)
  /stats          this process's counters as JSON

Each process also publishes its counters (requests, hits, misses, cache-workload requests)
in a 32-byte file BENCH_STATS_DIR/BENCH_WORKER.stats (four little-endian uint64, updated
in place through mmap), so the benchmark driver can sample every worker of every system
the same way without sending it requests.
"""
import json
import mmap
import os
import struct
import threading
import time
from collections import OrderedDict

CACHE_SIZE = int(os.environ.get("BENCH_CACHE_SIZE", "2500"))
BASE_S = float(os.environ.get("BENCH_BASE_MS", "5")) / 1000.0
MISS_S = float(os.environ.get("BENCH_MISS_MS", "5")) / 1000.0
_STATS_FMT = "<4Q"

_lock = threading.Lock()
_cache = OrderedDict()
_counts = [0, 0, 0, 0]  # requests, hits, misses, cache requests
_mm = None


def _open_stats():
    d = os.environ.get("BENCH_STATS_DIR")
    if not d:
        return None
    name = os.environ.get("BENCH_WORKER") or str(os.getpid())
    path = os.path.join(d, name + ".stats")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, struct.calcsize(_STATS_FMT))
        return mmap.mmap(fd, struct.calcsize(_STATS_FMT))
    finally:
        os.close(fd)


_pid = None


def _publish():
    global _mm, _pid
    if _pid != os.getpid():  # opened lazily, after any fork (uWSGI, gunicorn)
        _pid = os.getpid()
        _mm = _open_stats()
    if _mm is not None:
        struct.pack_into(_STATS_FMT, _mm, 0, *_counts)


HELLO = b"Hello, world!\n"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/c/"):
        host = environ.get("HTTP_HOST", "")
        ids = path[3:].split("_")
        hits = misses = 0
        with _lock:
            for oid in ids:
                key = (host, oid)
                if key in _cache:
                    _cache.move_to_end(key)
                    hits += 1
                else:
                    _cache[key] = True
                    misses += 1
                    if len(_cache) > CACHE_SIZE:
                        _cache.popitem(last=False)
            _counts[0] += 1
            _counts[1] += hits
            _counts[2] += misses
            _counts[3] += 1
            _publish()
        time.sleep(BASE_S + misses * MISS_S)
        body = b"%d %d\n" % (hits, misses)
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body))),
                                  ("X-Cache", "%d %d" % (hits, misses))])
        return [body]
    if path == "/stats":
        with _lock:
            doc = {"pid": os.getpid(), "requests": _counts[0], "hits": _counts[1],
                   "misses": _counts[2], "cache_size": len(_cache)}
        body = json.dumps(doc).encode() + b"\n"
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]
