"""The soak test's WSGI application: tests/apps/plain_app.py plus a cache-like route.

``/cache/KEY`` answers a value derived from KEY. Each worker keeps a bounded LRU cache
(``CACHE_SIZE`` entries): a miss "computes" the value (a few ms of hashing), a hit is
cheap. The response says ``X-Cache: hit|miss`` and which process answered. With a path
classifier (``re:PATH_INFO:^/(?P<class>[^/]+/[^/]+)``) every key is its own request class,
so the résumé pool sends repeated keys to the worker whose cache holds them, which is
what resumelb is for. The cache is bounded, so a long soak must not see worker memory grow
because of it.

Every other path is served by plain_app (validated by wsgiref.validate), whose list of
closed response iterables is kept short (see _trim_closed_log).
"""
import collections
import hashlib
import os
import threading

import plain_app

CACHE_SIZE = 500
_cache = collections.OrderedDict()
_lock = threading.Lock()


def cache_value(key: str) -> bytes:
    """The value for KEY (what a client can check the answer against)."""
    h = hashlib.sha256(key.encode("utf-8", "surrogateescape"))
    return (h.hexdigest() * 8).encode()   # 512 bytes


def _compute(key: str) -> bytes:
    # A deliberately costly "miss": 200 rounds of hashing, then the value.
    d = key.encode("utf-8", "surrogateescape")
    for _ in range(200):
        d = hashlib.sha256(d * 16).digest()
    return cache_value(key)


def _trim_closed_log():
    # plain_app records the path of every response iterable it closes (for its /closed
    # route) in a list that is never emptied: one string per /big or /slowstream request.
    # A soak must measure the worker, not that test bookkeeping (it is ~2 MB per 30k such
    # requests), so keep only the latest entries.
    with plain_app._lock:
        if len(plain_app._closed) > 1000:
            del plain_app._closed[:-100]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    _trim_closed_log()
    if path.startswith("/cache/"):
        key = path[len("/cache/"):]
        with _lock:
            value = _cache.get(key)
            if value is not None:
                _cache.move_to_end(key)
        hit = value is not None
        if not hit:
            value = _compute(key)
            with _lock:
                _cache[key] = value
                _cache.move_to_end(key)
                while len(_cache) > CACHE_SIZE:
                    _cache.popitem(last=False)
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(value))),
                                  ("X-Cache", "hit" if hit else "miss"),
                                  ("X-Pid", str(os.getpid()))])
        return [value]
    return plain_app.application(environ, start_response)
