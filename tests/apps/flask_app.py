"""A small Flask application for the end-to-end tests.

`app` is the Flask app; `application` is the same app wrapped in
wsgiref.validate.validator (with WSGIWarning turned into an error), which is what the
tests run.
"""
import hashlib
import warnings
import wsgiref.validate

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.route('/hello')
def hello():
    return 'Hello from Flask!\n', 200, {'Content-Type': 'text/plain; charset=utf-8'}


@app.route('/echo', methods=['POST'])
def echo():
    data = request.get_data()
    return jsonify(length=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   content_type=request.content_type,
                   custom=request.headers.get('X-Custom'),
                   args=request.args.to_dict())


@app.route('/error')
def error():
    raise RuntimeError('flask view failed')


@app.route('/stream')
def stream():
    n = int(request.args.get('n', '3'))

    def gen():
        for i in range(n):
            yield 'line %d\n' % i
    return Response(stream_with_context(gen()), mimetype='text/plain')


@app.route('/stream-error')
def stream_error():
    def gen():
        yield 'first\n'
        raise RuntimeError('flask stream failed')
    return Response(gen(), mimetype='text/plain')


@app.route('/request-class')
def request_class():
    return jsonify(request_class=request.environ.get('zc.resumelb.request_class'),
                   multithread=request.environ.get('wsgi.multithread'))


warnings.simplefilter('error', wsgiref.validate.WSGIWarning)
application = wsgiref.validate.validator(app)
