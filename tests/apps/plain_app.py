"""A plain WSGI application exercising every PEP 3333 feature the worker must support.

`application` is wrapped in wsgiref.validate.validator (conformance is checked on every
request); `raw_application` is the same app unwrapped, for cases the validator itself
forbids (e.g. exc_info after the headers were sent). Routes are chosen by PATH_INFO.
"""
import hashlib
import io
import json
import os
import sys
import threading
import time
import wsgiref.validate
from urllib.parse import parse_qs

_lock = threading.Lock()
_closed = []          # PATH_INFOs whose response iterables were closed
_active = [0, 0]      # [running now, max seen]
_close_gate = threading.Event()  # /held-close waits in close() until /release-close sets it
_stream_gate = threading.Event()  # /gated-stream waits after its first chunk for /release-stream


class ClosingIterable:
    """An iterable with close(), recording that close() was called."""

    def __init__(self, chunks, path, delay=0.0, gate=None):
        self.chunks = chunks
        self.path = path
        self.delay = delay
        self.gate = gate

    def __iter__(self):
        for c in self.chunks:
            if self.delay:
                time.sleep(self.delay)
            yield c

    def close(self):
        if self.gate is not None:
            self.gate.wait(10)
            self.gate.clear()
        with _lock:
            _closed.append(self.path)


def _qs(environ):
    return {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}


def raw_application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    q = _qs(environ)
    text = [('Content-Type', 'text/plain')]

    if path == '/hello':
        body = b'Hello, world!\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/pid':
        body = ('%d %s\n' % (os.getpid(), environ['zc.resumelb.request_class'])).encode()
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/environ':
        keys = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else repr(v))
                for k, v in environ.items()}
        body = json.dumps(keys, sort_keys=True).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    if path == '/echo':
        # Reads the body in pieces and answers its length and sha256.
        inp = environ['wsgi.input']
        h = hashlib.sha256()
        n = 0
        length = int(environ.get('CONTENT_LENGTH') or 0)
        while n < length:
            data = inp.read(min(65536, length - n))
            if not data:
                break
            h.update(data)
            n += len(data)
        body = ('%d %s %s\n' % (n, h.hexdigest(), type(inp).__name__)).encode()
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/readline':
        inp = environ['wsgi.input']
        lines = list(inp)
        body = ('%d\n' % len(lines)).encode()
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/big':
        # size bytes of a deterministic pattern, in chunks; no Content-Length.
        size = int(q.get('size', '1000'))
        chunk = int(q.get('chunk', '65536'))
        seed = hashlib.sha256(b'resumelb').digest() * 2048  # 64 KiB

        def gen():
            left = size
            while left > 0:
                n = min(chunk, left, len(seed))
                yield seed[:n]
                left -= n
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return ClosingIterable(gen(), path)

    if path == '/sleep':
        dur = float(q.get('dur', '0.1'))
        with _lock:
            _active[0] += 1
            _active[1] = max(_active)
        time.sleep(dur)
        with _lock:
            _active[0] -= 1
        body = b'slept\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/crash':  # a query of death: the worker process dies at once
        os._exit(3)

    if path == '/maxactive':
        body = ('%d\n' % _active[1]).encode()
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/held-close':
        # The response is complete before close() runs; close() then blocks until a
        # /release-close request arrives (so the request stays busy in the worker).
        body = b'held\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return ClosingIterable([body], path, gate=_close_gate)

    if path == '/release-close':
        _close_gate.set()
        body = b'released\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/gated-stream':
        # A streamed response that stops after its first chunk until /release-stream: the
        # head and that chunk must reach the load balancer meanwhile.
        def gen():
            yield b'first\n'
            _stream_gate.wait(60)
            _stream_gate.clear()
            yield b'second\n'
        start_response('200 OK', text)
        return gen()

    if path == '/release-stream':
        _stream_gate.set()
        body = b'released\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/closed':
        with _lock:
            body = json.dumps(_closed).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    if path == '/slowstream':
        # Many chunks with a delay each: used to cancel mid-response.
        n = int(q.get('n', '50'))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ClosingIterable([b'x' * 1000] * n, path, delay=float(q.get('delay', '0.05')))

    if path == '/error':
        raise RuntimeError('boom before the response started')

    if path == '/error-after-headers':
        def gen():
            yield b'partial'
            raise RuntimeError('boom after the headers were sent')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ClosingIterable(gen(), path)

    if path == '/exc-info':
        # An error page replacing a response whose headers were not sent yet.
        start_response('200 OK', text)
        try:
            raise ValueError('replaced')
        except ValueError:
            body = b'error page\n'
            start_response('503 Service Unavailable',
                           text + [('Content-Length', str(len(body)))], sys.exc_info())
        return [body]

    if path == '/lazy':
        # start_response called from inside the generator; n chunks (0, 1 or 2).
        n = int(q.get('n', '1'))

        def gen():
            start_response('200 OK', text)
            for i in range(n):
                yield b'chunk%d\n' % i
        return gen()

    if path == '/empty-chunks':
        start_response('200 OK', text)
        return [b'', b'a', b'', b'b', b'']

    if path == '/write':
        write = start_response('200 OK', text)
        write(b'written ')
        return [b'and returned\n']

    if path == '/filewrapper':
        data = b'file wrapper content\n' * 100
        start_response('200 OK', text + [('Content-Length', str(len(data)))])
        return environ['wsgi.file_wrapper'](io.BytesIO(data), 1000)

    if path == '/errors':
        environ['wsgi.errors'].write('a line for the log\n')
        environ['wsgi.errors'].writelines(['two ', 'parts\n'])
        environ['wsgi.errors'].flush()
        body = b'logged\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/trace':
        tl = environ.get('tracelog')
        if tl is not None:
            tl.log('test')
            tl.log('test2', code='T')
        body = b'traced\n'
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    if path == '/no-start-response':
        return [b'oops']

    if path == '/inputinfo':
        # What the worker gave as wsgi.input (under the validator's wrapper): its type, the
        # file it reads from (for a spooled body), and the body's length and sha256.
        inp = environ['wsgi.input']
        raw = getattr(inp, 'input', inp)
        target = None
        try:
            target = os.readlink('/proc/self/fd/%d' % raw.fileno())
        except (AttributeError, OSError, io.UnsupportedOperation):
            pass
        h = hashlib.sha256()
        n = 0
        while True:
            data = inp.read(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        body = json.dumps({'type': type(raw).__name__, 'file': target, 'length': n,
                           'sha256': h.hexdigest(),
                           'content_length': environ.get('CONTENT_LENGTH')}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    if path == '/exc-info-after-headers':
        # start_response with exc_info once the headers are out: PEP 3333 says it re-raises.
        def gen():
            yield b'partial'
            try:
                raise ValueError('too late to replace the response')
            except ValueError:
                start_response('500 Internal Server Error', text, sys.exc_info())
            yield b'never sent'
        start_response('200 OK', text)
        return ClosingIterable(gen(), path)

    if path == '/lazy-error':
        # A generator that raises before calling start_response (so before any output).
        def gen():
            raise RuntimeError('boom inside a lazy generator')
            yield b''  # noqa: unreachable; makes this a generator
        return ClosingIterable(gen(), path)

    if path.startswith('/env/'):
        # Any path under /env/: the environ as JSON (like /environ) plus the worker's pid,
        # so load-balancer tests can check PATH_INFO decoding and route by path prefix.
        keys = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else repr(v))
                for k, v in environ.items()}
        keys['pid'] = os.getpid()
        body = json.dumps(keys, sort_keys=True).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    if path.endswith('/pid'):
        # /<anything>/pid: like /pid ("<pid> <request class>"), for path-based classifiers.
        body = ('%d %s\n' % (os.getpid(), environ['zc.resumelb.request_class'])).encode()
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]

    body = b'not found\n'
    start_response('404 Not Found', text + [('Content-Length', str(len(body)))])
    return [body]


import warnings
warnings.simplefilter("error", wsgiref.validate.WSGIWarning)

application = wsgiref.validate.validator(raw_application)


def make_app(global_conf=None, **local_conf):
    """Paste Deploy app factory (``use = call:plain_app:make_app`` or
    ``paste.app_factory = plain_app:make_app``): the validated app, plus ``/config`` which
    answers the factory's arguments as JSON."""
    conf = {'global': sorted((global_conf or {}).keys()), 'local': dict(local_conf)}

    def app(environ, start_response):
        if environ.get('PATH_INFO') == '/config':
            body = json.dumps(conf, sort_keys=True).encode()
            start_response('200 OK', [('Content-Type', 'application/json'),
                                      ('Content-Length', str(len(body)))])
            return [body]
        return raw_application(environ, start_response)
    return wsgiref.validate.validator(app)
