"""The demo's WSGI application: a per-site cache that shows why résumé routing helps.

Each request's Host picks a site; the app "loads" the site's data on a cache miss (a short
sleep standing in for real work) and keeps it in a small per-process LRU cache. With
resumelb, requests for a site keep landing on the worker that already has it cached, so
the hit rate on each worker stays high.
"""
import collections
import os
import threading
import time

CACHE_SITES = int(os.environ.get('DEMO_CACHE_SITES', '4'))
MISS_COST = float(os.environ.get('DEMO_MISS_COST', '0.02'))

_lock = threading.Lock()
_cache = collections.OrderedDict()
_stats = {'hits': 0, 'misses': 0}


def application(environ, start_response):
    site = environ.get('HTTP_HOST', 'default').split(':')[0]
    with _lock:
        hit = site in _cache
        if hit:
            _cache.move_to_end(site)
            _stats['hits'] += 1
        else:
            _stats['misses'] += 1
    if not hit:
        time.sleep(MISS_COST)  # stands in for loading the site's working set
        with _lock:
            _cache[site] = True
            while len(_cache) > CACHE_SITES:
                _cache.popitem(last=False)
    with _lock:
        total = _stats['hits'] + _stats['misses']
        rate = 100.0 * _stats['hits'] / total
    body = ('site %s served by worker pid %d (%s); this worker: %d requests, %.0f%% cache hits\n'
            % (site, os.getpid(), 'hit' if hit else 'miss', total, rate)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]


def app_factory(global_conf, **local_conf):
    """Paste Deploy factory: ``[app:main]`` with ``use = call:demo_app:app_factory``.

    Optional keys: ``cache_sites`` and ``miss_cost`` (else $DEMO_CACHE_SITES and
    $DEMO_MISS_COST, else 4 and 0.02 s).
    """
    global CACHE_SITES, MISS_COST
    if local_conf.get('cache_sites'):
        CACHE_SITES = int(local_conf['cache_sites'])
    if local_conf.get('miss_cost'):
        MISS_COST = float(local_conf['miss_cost'])
    return application
