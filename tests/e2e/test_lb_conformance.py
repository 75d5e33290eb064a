"""Conformance: real applications on Debian's packaged Django and Flask
(tests/apps/conformance), served through resumelb + zkworker and through gunicorn side by
side; the same client session against each must give the same statuses, the headers that
matter and the same body bytes (after values that are random per response, such as CSRF
tokens, are masked). Every response must also carry a Date."""

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import unittest
import urllib.parse

import harness
import lb_harness

# Headers whose values are compared (when either side sends them). Hop-by-hop headers,
# Date and Server legitimately differ; Set-Cookie is compared without its value.
COMPARED = ("content-type", "content-length", "location", "cache-control",
            "vary", "x-frame-options", "x-content-type-options", "referrer-policy",
            "cross-origin-opener-policy", "content-disposition", "content-encoding")

# Values random per response (masked before bodies are compared).
CSRF_RE = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
GUNICORN = ["/usr/bin/python3", "-m", "gunicorn"]


def gunicorn_available():
    return subprocess.run(GUNICORN + ["--version"], capture_output=True).returncode == 0


class Client:
    """A keep-alive http.client session with a cookie jar, recording every response."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies = {}
        self.log = []

    def close(self):
        self.conn.close()

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in sorted(self.cookies.items()))
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        header_list = resp.getheaders()
        for name, value in header_list:
            if name.lower() == "set-cookie":
                k, _, rest = value.partition("=")
                self.cookies[k.strip()] = rest.split(";")[0].strip()
        self.log.append(record(method, path, resp.status, header_list, data))
        return resp.status, header_list, data


def cookie_shape(value):
    """A Set-Cookie value without its random parts: name and attributes, no value/expiry."""
    name, _, rest = value.partition("=")
    attrs = sorted(a.strip().split("=")[0].lower() if a.strip().lower().startswith(
        ("expires", "max-age")) else a.strip().lower() for a in rest.split(";")[1:])
    return name.strip() + "; " + "; ".join(attrs)


def record(method, path, status, header_list, body):
    headers = {}
    for name, value in header_list:
        lname = name.lower()
        if lname in COMPARED:
            headers.setdefault(lname, []).append(value)
        elif lname == "set-cookie":
            headers.setdefault(lname, []).append(cookie_shape(value))
        elif lname == "expires":  # a time: only its presence is compared
            headers.setdefault(lname, []).append("*")
    dates = [v for k, v in header_list if k.lower() == "date"]
    masked = CSRF_RE.sub(b'name="csrfmiddlewaretoken" value="*"', body)
    return {"request": f"{method} {path}", "status": status, "headers": headers,
            "date": len(dates) == 1,
            "body": masked if len(masked) < 4096 else hashlib.sha256(masked).hexdigest()}


def csrf_token(body):
    m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert m, body[:500]
    return m.group(1).decode()


def multipart(fields, files, boundary="rlb-boundary-7MA4YWxkTrZu0gW"):
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for name, (filename, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def django_session(port):
    c = Client(port)
    try:
        c.request("GET", "/admin/")
        _, _, page = c.request("GET", "/admin/login/?next=/admin/")
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf_token(page),
                                       "username": "admin", "password": "wrong",
                                       "next": "/admin/"})
        hdrs = {"Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://127.0.0.1:{port}/admin/login/"}
        _, _, page = c.request("POST", "/admin/login/?next=/admin/", form, hdrs)
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf_token(page),
                                       "username": "admin", "password": "admin-password",
                                       "next": "/admin/"})
        c.request("POST", "/admin/login/?next=/admin/", form, hdrs)
        c.request("GET", "/admin/")
        c.request("GET", "/admin/auth/user/")
        # (No HEAD here: gunicorn 20.1 relays the body Django produces for one, which
        # http.client then reads as the next response; zkworker drops it.)
        c.request("GET", "/admin/no-such-page/")
        c.request("POST", "/admin/logout/", urllib.parse.urlencode(
            {"csrfmiddlewaretoken": c.cookies.get("csrftoken", "")}), hdrs)
        c.request("GET", "/stream")
        return c.log
    finally:
        c.close()


def flask_session(port):
    c = Client(port)
    try:
        c.request("GET", "/set-cookie")
        c.request("GET", "/read-cookie")
        c.request("GET", "/redirect")
        body, ctype = multipart({"title": "caf\u00e9"},
                                {"one": ("a.bin", os.urandom(0) + b"\x00\x01" * 50000),
                                 "two": ("b.txt", b"hello\r\n--not-a-boundary\r\n")})
        c.request("POST", "/upload", body, {"Content-Type": ctype})
        c.request("GET", "/stream?n=500")
        c.request("GET", "/big")
        c.request("HEAD", "/big")
        c.request("GET", "/caf%C3%A9/%C3%BCber")
        c.request("GET", "/status/204")
        c.request("GET", "/status/304")
        c.request("GET", "/no-such-page")
        c.request("POST", "/set-cookie")  # 405
        return c.log
    finally:
        c.close()


@unittest.skipUnless(gunicorn_available(), "gunicorn (python3-gunicorn) is not installed")
class ConformanceTest(harness.E2ETestCase):

    def start_gunicorn(self, app, env=None):
        port = harness.free_port()
        proc = self.sandbox.start(GUNICORN + ["-b", f"127.0.0.1:{port}", "-w", "1",
                                              "--threads", "4", "--pythonpath",
                                              harness.APPS_DIR, app],
                                  name="gunicorn", env=env)
        proc.wait_for_log(r"Listening at: http://127\.0\.0\.1:%d" % port)
        return port

    def start_resumelb(self, app, env=None):
        worker = self.sandbox.start_worker(app=app, threads=4, env=env)
        return lb_harness.start_cluster(self.sandbox, workers=[worker], status=False).port

    def compare(self, ours, theirs):
        self.assertEqual(len(ours), len(theirs))
        for a, b in zip(ours, theirs):
            with self.subTest(request=a["request"]):
                self.assertTrue(a["date"], f"resumelb sent no Date for {a['request']}")
                self.assertEqual(a, b)

    def test_django_admin(self):
        db = self.sandbox.path("admin.sqlite3")
        env = {"RLB_CONFORMANCE_DB": db, "PYTHONPATH": harness.APPS_DIR}
        subprocess.run(["/usr/bin/python3", "-m", "conformance.admin_site.setup_db"],
                       env={**os.environ, **env}, check=True, timeout=120)
        app = "conformance.admin_site.wsgi:application"
        theirs = django_session(self.start_gunicorn(app, env))
        ours = django_session(self.start_resumelb(app, env))
        statuses = [r["status"] for r in ours]
        self.assertEqual(statuses[:5], [302, 200, 200, 302, 200], ours)
        self.compare(ours, theirs)

    def test_flask(self):
        app = "conformance.flask_site:app"
        theirs = flask_session(self.start_gunicorn(app))
        ours = flask_session(self.start_resumelb(app))
        self.assertEqual([r["status"] for r in ours],
                         [200, 200, 302, 200, 200, 200, 200, 200, 204, 304, 404, 405], ours)
        self.compare(ours, theirs)


if __name__ == "__main__":
    unittest.main()
