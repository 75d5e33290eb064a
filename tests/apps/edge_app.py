"""A WSGI application that answers with the unusual responses real applications
sometimes send (tests/e2e/test_http_edges.py): bodies longer or shorter than their
Content-Length, invalid or conflicting lengths, header values outside latin-1, too many or
too large headers, control characters in the status or headers, whitespace around values.
Every other path answers the request's environ as JSON (PATH_INFO routes; not wrapped in
wsgiref.validate, which would refuse most of these before the worker sees them).
"""
import json
import sys
import time
from urllib.parse import parse_qs

# The bytes a keep-alive client would read as a second response if the LB relayed them.
FORGED = (b'HTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\n'
          b'Set-Cookie: session=forged\r\nContent-Length: 0\r\n\r\n')

TEXT = ('Content-Type', 'text/plain')


def _length(body):
    return ('Content-Length', str(len(body)))


def _int(environ, key, default):
    return int(parse_qs(environ.get('QUERY_STRING', '')).get(key, [default])[0])


# path -> (status, headers) of a response whose head the worker must refuse with 500.
BAD_HEADS = {
    '/latin1-value': ('200 OK', [('X-Price', '5 \u20ac')]),
    '/reason-crlf': ('200 OK\r\nX-Injected: 1', []),
    '/reason-ctl': ('200 O\x01K', []),
    '/status-short': ('20 OK', []),
    '/name-space': ('200 OK', [('X Bad', '1')]),
    '/name-empty': ('200 OK', [('', '1')]),
    '/name-colon': ('200 OK', [('X-Bad:', '1')]),
    '/value-nul': ('200 OK', [('X-Bad', 'a\x00b')]),
    '/value-vt': ('200 OK', [('X-Bad', 'a\x0bb')]),
    '/value-del': ('200 OK', [('X-Bad', 'a\x7fb')]),
    '/value-lf': ('200 OK', [('X-Bad', 'a\nX-Injected: 1')]),
    '/many-headers': ('200 OK', [('X-H-%d' % i, 'v') for i in range(1100)]),
    '/big-headers': ('200 OK', [('X-Big-%d' % i, 'x' * 60000) for i in range(5)]),
}


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/hello':
        body = b'hello\n'
        start_response('200 OK', [TEXT, _length(body)])
        return [body]
    if path == '/cl-extra':  # declares 5 bytes, sends a forged second response after them
        start_response('200 OK', [TEXT, ('Content-Length', '5')])
        return [b'hello', FORGED]
    if path == '/cl-extra-one':  # the same in one piece
        start_response('200 OK', [TEXT, ('Content-Length', '5')])
        return [b'hello' + FORGED]
    if path == '/cl-short':  # declares 10, sends 5
        start_response('200 OK', [TEXT, ('Content-Length', '10')])
        return [b'hello']
    if path == '/cl-conflict':
        start_response('200 OK', [TEXT, ('Content-Length', '5'), ('Content-Length', '6')])
        return [b'hello']
    if path == '/cl-invalid':
        start_response('200 OK', [TEXT, ('Content-Length', 'abc')])
        return [b'hello']
    if path == '/cl-same-twice':  # equal copies are one length
        start_response('200 OK', [TEXT, ('Content-Length', '5'), ('Content-Length', '5')])
        return [b'hello']
    if path in BAD_HEADS:
        status, headers = BAD_HEADS[path]
        start_response(status, headers)
        return [b'must not be sent']
    if path == '/ows':  # Django's cookies come as ' csrftoken=...'
        body = b'ows\n'
        start_response('200 OK', [TEXT, _length(body), ('Set-Cookie', '  csrftoken=abc'),
                                  ('X-Trailing', 'value \t')])
        return [body]
    if path == '/own-date':
        body = b'dated\n'
        start_response('200 OK', [TEXT, _length(body),
                                  ('Date', 'Sun, 06 Nov 1994 08:49:37 GMT')])
        return [body]
    if path == '/stream':  # n lines, one every `delay` ms, no length (chunked)
        n, delay = _int(environ, 'n', '10'), _int(environ, 'delay', '50')
        start_response('200 OK', [TEXT])

        def lines():
            for i in range(n):
                time.sleep(delay / 1000.0)
                yield b'line %d\n' % i
        return lines()
    if path == '/sys-path':
        body = json.dumps(sys.path).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), _length(body)])
        return [body]
    if path == '/echo':
        inp = environ['wsgi.input']
        data = inp.read(int(environ['CONTENT_LENGTH'])) if environ.get('CONTENT_LENGTH') else b''
        start_response('200 OK', [TEXT, _length(data)])
        return [data]
    env = {k: v for k, v in environ.items() if isinstance(v, str)}
    body = json.dumps(env, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), _length(body)])
    return [body]
