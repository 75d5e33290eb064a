"""zkworker's PEP 3333 glue, run inside the worker's embedded interpreter.

The C++ side (module _resumelb) owns the sockets: it builds each request's environ, then
calls run() on an application thread with the GIL held. run() drives the application as
PEP 3333 says -- start_response with exc_info, the write() callable, lazy start_response,
close() always called -- and hands the response to C++ through _resumelb.start(),
.body() (which waits, without the GIL, while the load balancer's connection is backed up)
and .end(). None of them releases the GIL otherwise: C++ holds the head and, for a list
or tuple result (whose items are all there at once), the chunks, and sends them with the
end, usually in one write. Anything the application hands over otherwise -- a chunk of
any other iterable, a write() call -- is sent before the application runs again.
This file is compiled into the zkworker binary.
"""
import io
import re
import sys
import traceback

import _resumelb as _c

LOG_ERROR = 40
LOG_WARNING = 30

ERROR_STATUS = '500 Internal Server Error'
ERROR_BODY = b'A system error occurred'
ERROR_HEADERS = [('Content-Type', 'text/html; charset=UTF-8'),
                 ('Content-Length', str(len(ERROR_BODY)))]


class Cancelled(BaseException):
    """The load balancer cancelled the request or went away: stop producing output."""


class ErrorStream:
    """wsgi.errors: text written here goes to the worker's log, one record per line."""

    def __init__(self):
        self._pending = ''

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('wsgi.errors.write() argument must be str, not %s'
                            % type(s).__name__)
        self._pending += s
        while '\n' in self._pending:
            line, self._pending = self._pending.split('\n', 1)
            _c.log(LOG_WARNING, line)

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        if self._pending:
            _c.log(LOG_WARNING, self._pending)
            self._pending = ''


class FileWrapper:
    """wsgi.file_wrapper: iterates a file-like object in blocks; close() closes it."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class TraceLog:
    """environ[tracelog_key]: lets the application add its own trace records."""

    __slots__ = ('_req',)

    def __init__(self, req):
        self._req = req

    def log(self, msg=None, code='-'):
        _c.trace(self._req, str(code), '' if msg is None else str(msg))


def file_input(fd):
    """wsgi.input for a body spooled to an (already unlinked) temp file."""
    return io.open(fd, 'rb', closefd=True)


# What the protocol carries (docs/protocol.md, "Limits"; common/frame_codec.h): a response
# over these is malformed and would cost the whole connection, so it is never sent.
MAX_HEADERS = 1024
MAX_HEADER_BYTES = 256 * 1024   # status + names + values, as latin-1 bytes
MAX_STATUS_BYTES = 4096

# RFC 9110: a status is three digits (the protocol wants 100-999), a space and a reason
# without control characters but HTAB; a header name is a token; a value has no control
# characters but HTAB. Both are latin-1 (PEP 3333 native strings).
_STATUS_RE = re.compile(r'[1-9][0-9]{2} [^\x00-\x08\x0a-\x1f\x7f]*\Z')
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VALUE_RE = re.compile(r'[^\x00-\x08\x0a-\x1f\x7f]*\Z')


# Statuses and header names that passed the checks below, with their latin-1 sizes: an
# application sends the same few again and again. Bounded, so that ever new names cost only
# the checks, never memory.
_CHECKED_MAX = 1024
_checked_statuses = {}
_checked_names = {}


def _latin1_size(s, what, name=None):
    if s.isascii():  # the usual case, without encoding a copy
        return len(s)
    try:
        return len(s.encode('latin-1'))
    except UnicodeEncodeError as e:
        if name is not None:
            what = '%s %s' % (what, name)
        raise ValueError('%s %r is not latin-1 (PEP 3333 native strings are): %s'
                         % (what, s, e)) from None


def _check_status(status):
    if type(status) is not str:
        raise TypeError('status must be str, not %s' % type(status).__name__)
    size = _checked_statuses.get(status)
    if size is not None:
        return size
    if not _STATUS_RE.match(status):
        raise ValueError('status %r is not of the form "NNN reason" (three digits, a space, '
                         'a reason without control characters)' % status)
    size = _latin1_size(status, 'status')
    if size > MAX_STATUS_BYTES:
        raise ValueError('status is %d bytes, over the limit of %d' % (size, MAX_STATUS_BYTES))
    if len(_checked_statuses) < _CHECKED_MAX:
        _checked_statuses[status] = size
    return size


def _check_headers(headers, used):
    if type(headers) is not list:
        raise TypeError('response headers must be a list, not %s' % type(headers).__name__)
    if len(headers) > MAX_HEADERS:
        raise ValueError('%d response headers, over the limit of %d'
                         % (len(headers), MAX_HEADERS))
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError('each response header must be a (name, value) tuple: %r' % (item,))
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise TypeError('header names and values must be str: %r' % (item,))
        name_size = _checked_names.get(name)
        if name_size is None:
            if not _TOKEN_RE.match(name):
                raise ValueError('header name %r is not a token (RFC 9110)' % name)
            name_size = _latin1_size(name, 'header name')
            if len(_checked_names) < _CHECKED_MAX:
                _checked_names[name] = name_size
        if not _VALUE_RE.match(value):
            raise ValueError('header %s: value %r has a control character' % (name, value))
        used += name_size + _latin1_size(value, 'header', name)
    if used > MAX_HEADER_BYTES:
        raise ValueError('response status and headers are %d bytes, over the limit of %d'
                         % (used, MAX_HEADER_BYTES))


class _Call:
    """One request's response state; start_response and write are its bound methods
    (one object per request instead of a closure, its cells and a state dict)."""

    __slots__ = ('req', 'head', 'tracing', 'status', 'headers', 'sent', 'done', 'more')

    def __init__(self, req, head, tracing):
        self.req = req
        self.head = head
        self.tracing = tracing
        self.status = None
        self.headers = None
        self.sent = False
        self.done = False
        self.more = False

    def start_response(self, status, headers, exc_info=None):
        if self.done:
            raise AssertionError('start_response() called after the request ended')
        if exc_info:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError('start_response() called a second time without exc_info')
        # Checked here, so that the application (or the 500 below) hears of it, and nothing
        # the protocol or HTTP cannot carry is ever sent.
        _check_headers(headers, _check_status(status))
        self.status = status
        self.headers = headers
        return self.write

    def send_headers(self):
        if self.status is None:
            raise AssertionError('the application did not call start_response()')
        if self.tracing:
            length = '?'
            for name, value in self.headers:
                if name.lower() == 'content-length':
                    length = value
            _c.trace(self.req, 'A', '%s %s' % (self.status, length))
        # Sent only once start() took them: if it raised, nothing went out and the 500
        # below can still be the response.
        started = _c.start(self.req, self.status, self.headers)
        self.sent = True
        if not started:
            raise Cancelled

    def write(self, data):
        if self.done:
            raise AssertionError('write() called after the request ended')
        if type(data) is not bytes:
            raise TypeError('response data must be bytes, not %s' % type(data).__name__)
        if not self.sent:
            self.send_headers()
        if data and not self.head:
            if not _c.body(self.req, data, self.more):
                raise Cancelled
        elif not self.more:
            # Nothing to add, but what is held (the head) goes now: the application may
            # take its time before the next chunk.
            if not _c.body(self.req, b'', False):
                raise Cancelled


def run(app, environ, req, head, tracing):
    """Runs one request. Returns True if the response was sent completely."""
    call = _Call(req, head, tracing)
    inp = environ.get('wsgi.input')
    result = None
    try:
        try:
            if tracing:
                _c.trace(req, 'C', '')
            result = app(environ, call.start_response)
            # An in-memory sequence: its chunks may wait for each other and the end.
            call.more = type(result) is list or type(result) is tuple
            for data in result:
                if type(data) is not bytes:
                    raise TypeError('the application yielded %s, not bytes'
                                    % type(data).__name__)
                if data:
                    call.write(data)
            if not call.sent:
                call.send_headers()
            _c.end(req, True)
            return True
        except Cancelled:
            return False
        except Exception:
            _c.log(LOG_ERROR, 'Uncaught application exception for %s:\n%s'
                   % (_c.trace_id(req), traceback.format_exc().rstrip()))
            if call.sent:
                _c.end(req, False)  # the client must not see a truncated body as complete
                return False
            call.sent = True
            if _c.start(req, ERROR_STATUS, ERROR_HEADERS):
                if head or _c.body(req, ERROR_BODY, True):  # held: leaves with the end
                    _c.end(req, True)
                    return True
            return False
    finally:
        call.done = True
        if result is not None and hasattr(result, 'close'):
            try:
                result.close()
            except Exception:
                _c.log(LOG_ERROR, 'Exception in close() of the response for %s:\n%s'
                       % (_c.trace_id(req), traceback.format_exc().rstrip()))
        if tracing:
            _c.trace(req, 'E', '')
        if inp is not None:
            try:
                inp.close()
            except Exception:
                pass


def load_app(spec):
    """Loads 'module:expression' (gunicorn's convention): the expression is evaluated in the
    module's namespace, so 'pkg.mod:app' and 'pkg.mod:create_app()' both work."""
    import importlib
    module_name, sep, expr = spec.partition(':')
    if not sep:
        expr = 'application'
    if not module_name or not expr:
        raise ValueError('app spec %r is not of the form MODULE:CALLABLE' % spec)
    module = importlib.import_module(module_name)
    app = eval(expr, vars(module))
    if not callable(app):
        raise TypeError('%s is not callable (got %s)' % (spec, type(app).__name__))
    return app


def load_paste_app(path, name='main'):
    from paste.deploy import loadapp
    import os
    return loadapp('config:' + os.path.abspath(path), name=name)


def read_server_section(path, name='main'):
    """Returns the [server:NAME] options of a Paste Deploy file as a dict of str,
    with Paste's defaults (here, __file__) available for %(...)s interpolation."""
    import configparser
    import os
    path = os.path.abspath(path)
    parser = configparser.ConfigParser(
        defaults={'here': os.path.dirname(path), '__file__': path})
    parser.optionxform = str  # keys are case-sensitive, as in Paste
    with open(path) as f:
        parser.read_file(f)
    section = 'server:' + name
    if not parser.has_section(section):
        raise KeyError('%s has no [%s] section' % (path, section))
    # The keys written in the section itself (not those inherited from [DEFAULT]).
    own = configparser.RawConfigParser(default_section='\0no default section')
    own.optionxform = str
    own.read(path)
    return {k: parser.get(section, k) for k in own.options(section)}
