"""conformance.flask_site:app -- a Flask application with cookies, uploads, streaming,
redirects, a large download and non-ASCII paths."""
import hashlib

from flask import Flask, Response, jsonify, redirect, request

app = Flask(__name__)


@app.route('/set-cookie')
def set_cookie():
    resp = Response('cookie set\n', mimetype='text/plain')
    resp.set_cookie('flavour', 'chocolate chip', path='/', httponly=True, samesite='Lax')
    resp.set_cookie('plain', 'x')
    return resp


@app.route('/read-cookie')
def read_cookie():
    return jsonify(sorted(request.cookies.items()))


@app.route('/upload', methods=['POST'])
def upload():
    files = {name: {'filename': f.filename, 'size': len(data),
                    'sha256': hashlib.sha256(data).hexdigest()}
             for name, f in request.files.items() for data in [f.read()]}
    return jsonify(files=files, form=request.form.to_dict())


@app.route('/stream')
def stream():
    n = int(request.args.get('n', '100'))

    def gen():
        for i in range(n):
            yield 'line %d\n' % i
    return Response(gen(), mimetype='text/plain')


@app.route('/redirect')
def go():
    return redirect('/read-cookie')


@app.route('/big')
def big():
    return Response(b'0123456789abcdef' * (12 * (1 << 20) // 16),  # 12 MiB
                    mimetype='application/octet-stream')


@app.route('/caf\u00e9/<name>')
def non_ascii(name):
    return jsonify(name=name, path=request.path)


@app.route('/status/<int:code>')
def status(code):
    return Response('', status=code)
