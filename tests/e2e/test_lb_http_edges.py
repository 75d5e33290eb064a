"""resumelb + zkworker end to end: responses exactly as HTTP requires, whatever the
application sends (issue 12), with real clients -- Python's http.client on a keep-alive
connection for the framing cases, curl for the rest -- and the request edges (absolute-form
targets, Host, fragments, %00, TRACE/CONNECT, HTTP/1.0 Expect and keep-alive), plus the
LB's own checks of a worker's response head, against a fake worker that sends what
zkworker never would. The application is tests/apps/edge_app.py."""

import http.client
import json
import re
import socket
import subprocess
import threading
import unittest

import harness
import lb_harness
import rlbproto
from lb_harness import request_bytes

HTTP_DATE_RE = r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"


def curl(*args, timeout=30):
    """Runs curl -sS ARGS; returns the CompletedProcess (stdout as bytes)."""
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 5)


def curl_status(url, *args):
    p = curl("-o", "/dev/null", "-w", "%{http_code}", *args, url)
    return int(p.stdout or b"0")


def curl_head(url, *args):
    """(status code, [(name, value)] as sent, body) of one curl request (-D -)."""
    p = curl("-D", "/dev/stdout", "-o", "/dev/stdout", *args, url)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = [tuple(line.split(":", 1)) for line in lines[1:]]
    return code, [(k, v[1:] if v.startswith(" ") else v) for k, v in headers], body


class EdgeCluster(lb_harness.RawConnTestCase):
    """One zkworker (4 threads) running edge_app, one LB."""

    @classmethod
    def setUpClass(cls):
        sb = cls.class_sandbox()
        workers = [sb.start_worker(app="edge_app:application", threads=4)]
        cls.cluster = lb_harness.start_cluster(sb, workers=workers)
        cls.port = cls.cluster.port
        cls.lb = cls.cluster.lb
        cls.worker, cls.worker_port = workers[0]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def keepalive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        return conn

    def env(self, path="/env", *args):
        p = curl(*args, self.url(path))
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)


class ResponseFramingTest(EdgeCluster):

    def test_bytes_past_content_length_never_reach_the_next_response(self):
        for path in ("/cl-extra", "/cl-extra-one"):
            with self.subTest(path=path):
                mark = self.lb.mark()
                conn = self.keepalive()
                conn.request("GET", path)
                resp = conn.getresponse()
                self.assertEqual((resp.status, resp.read()), (200, b"hello"))
                # The next request on the connection must not be answered by the forged bytes:
                # the LB closed the connection after the response.
                try:
                    conn.request("GET", "/hello")
                    second = conn.getresponse()
                    got = (second.status, second.getheader("Set-Cookie"), second.read())
                except (ConnectionError, http.client.HTTPException):
                    got = None
                self.assertIsNone(got, "a second response was read from the connection")
                self.lb.wait_for_log(
                    r"(?m)^W\d{8} .*response to GET \S* " + re.escape(path) + r" \(worker " +
                    re.escape(lb_harness.worker_name(self.worker_port)) + r"\) is longer than "
                    r"its Content-Length of 5 bytes", since=mark, timeout=5)

    def test_bytes_past_content_length_close_the_connection(self):
        c = self.raw()
        c.send(request_bytes("GET", "/cl-extra") + request_bytes("GET", "/hello"))
        r = c.read_response()
        self.assertEqual((r.code, r.body), (200, b"hello"), r)
        self.assertTrue(c.closed_by_peer(timeout=5), c.buf)

    def test_fewer_bytes_than_content_length_close_the_connection(self):
        conn = self.keepalive()
        conn.request("GET", "/cl-short")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        # Today's code left the client waiting for the 5 missing bytes until its timeout.
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
        c = self.raw()
        c.send(request_bytes("GET", "/cl-short"))
        head = c.read_head()
        self.assertEqual(head[1], 200)
        self.assertIn(c.read_until_close(), (b"", b"h", b"he", b"hel", b"hell", b"hello"))
        self.assertTrue(c.eof)

    def test_invalid_or_conflicting_content_length_is_502(self):
        conn = self.keepalive()
        for path in ("/cl-conflict", "/cl-invalid"):
            with self.subTest(path=path):
                conn.request("GET", path)
                resp = conn.getresponse()
                self.assertEqual(resp.status, 502)
                self.assertEqual(resp.read(), lb_harness.DEFAULT_DISCONNECT_MESSAGE)
        # The connection stays usable: only that request failed.
        conn.request("GET", "/hello")
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.read()), (200, b"hello\n"))

    def test_equal_content_lengths_are_one(self):
        code, headers, body = curl_head(self.url("/cl-same-twice"))
        self.assertEqual((code, body), (200, b"hello"))
        self.assertEqual([v for k, v in headers if k.lower() == "content-length"], ["5"])


class ResponseHeadTest(EdgeCluster):

    def test_bad_heads_are_500_for_that_request_only(self):
        for path, reason in [("/latin1-value", r"not latin-1"),
                             ("/reason-crlf", r"is not of the form"),
                             ("/reason-ctl", r"is not of the form"),
                             ("/status-short", r"is not of the form"),
                             ("/name-space", r"is not a token"),
                             ("/name-empty", r"is not a token"),
                             ("/name-colon", r"is not a token"),
                             ("/value-nul", r"control character"),
                             ("/value-vt", r"control character"),
                             ("/value-del", r"control character"),
                             ("/value-lf", r"control character"),
                             ("/many-headers", r"1100 response headers, over the limit of 1024"),
                             ("/big-headers", r"over the limit of 262144")]:
            with self.subTest(path=path):
                mark = self.worker.mark()
                code, headers, body = curl_head(self.url(path))
                self.assertEqual((code, body), (500, b"A system error occurred"))
                self.assertNotIn("X-Injected", [k for k, _ in headers])
                self.worker.wait_for_log(r"Uncaught application exception(?:.*\n)*?ValueError: "
                                         r".*" + reason, since=mark, timeout=5)

    def test_over_limit_head_never_disturbs_the_worker_connection(self):
        lb_mark = self.lb.mark()
        result = {}

        def stream():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                conn.request("GET", "/stream?n=30&delay=50")
                resp = conn.getresponse()
                result["stream"] = (resp.status, resp.read())
            finally:
                conn.close()
        t = threading.Thread(target=stream)
        t.start()
        for path in ("/many-headers", "/big-headers", "/many-headers"):
            self.assertEqual(curl_status(self.url(path)), 500)
        t.join(30)
        self.assertEqual(result.get("stream"),
                         (200, b"".join(b"line %d\n" % i for i in range(30))))
        out = self.lb.output_since(lb_mark)
        self.assertNotRegex(out, r"malformed|worker lost|disconnected|worker connected")

    def test_date_added_unless_the_app_sent_one(self):
        _, headers, _ = curl_head(self.url("/hello"))
        dates = [v for k, v in headers if k.lower() == "date"]
        self.assertEqual(len(dates), 1, headers)
        self.assertRegex(dates[0], HTTP_DATE_RE)
        _, headers, _ = curl_head(self.url("/own-date"))
        self.assertEqual([v for k, v in headers if k.lower() == "date"],
                         ["Sun, 06 Nov 1994 08:49:37 GMT"])
        # The LB's own responses too.
        _, headers, _ = curl_head(self.url("/cl-invalid"))
        self.assertRegex(dict((k.lower(), v) for k, v in headers)["date"], HTTP_DATE_RE)

    def test_whitespace_around_values_removed(self):
        p = curl("-D", "/dev/stdout", "-o", "/dev/null", self.url("/ows"))
        head = p.stdout.decode("latin-1")
        self.assertIn("\r\nSet-Cookie: csrftoken=abc\r\n", head)
        self.assertIn("\r\nX-Trailing: value\r\n", head)

    def test_http10_keep_alive(self):
        # curl (like ab -k) keeps an HTTP/1.0 connection only if the response says so.
        p = curl("--http1.0", "-H", "Connection: keep-alive", "-w", "%{num_connects}\n",
                 "-o", "/dev/null", self.url("/hello"), "-o", "/dev/null", self.url("/hello"))
        self.assertEqual(p.stdout.split(), [b"1", b"0"], p.stderr)
        c = self.raw()
        for _ in range(3):
            c.send(request_bytes("GET", "/hello", version="HTTP/1.0",
                                 headers=[("Connection", "keep-alive")]))
            r = c.read_response()
            self.assertEqual((r.code, r.body, r.header("Connection")),
                             (200, b"hello\n", "keep-alive"), r)
        # Without keep-alive: closed after the response.
        c = self.raw()
        c.send(request_bytes("GET", "/hello", version="HTTP/1.0", host=None))
        r = c.read_response()
        self.assertEqual((r.code, r.header("Connection")), (200, "close"), r)
        self.assertTrue(c.closed_by_peer())


class RequestEdgesTest(EdgeCluster):

    def test_absolute_form_target(self):
        for target, path, query in [("http://a.example/env?x=1", "/env", "x=1"),
                                    ("HTTP://a.example/env", "/env", ""),
                                    ("http://a.example?q=1", "/", "q=1")]:
            with self.subTest(target=target):
                env = self.env("/", "--request-target", target, "-H", "Host: b.example")
                self.assertEqual((env["PATH_INFO"], env["QUERY_STRING"], env["HTTP_HOST"],
                                  env["zc.resumelb.request_class"]),
                                 (path, query, "a.example", "a.example"))

    def test_host_validated(self):
        self.assertEqual(curl_status(self.url("/env"), "-H", "Host;"), 400)  # empty
        self.assertEqual(curl_status(self.url("/env"), "-H", "Host: a/b@c?d"), 400)
        self.assertEqual(curl_status(self.url("/env"), "-H", "Host: [::1]:8080"), 200)

    def test_host_class_normalised_host_kept(self):
        a = self.env("/env", "-H", "Host: WWW.H.EXAMPLE.:8080")
        b = self.env("/env", "-H", "Host: h.example")
        self.assertEqual(a["zc.resumelb.request_class"], "h.example")
        self.assertEqual(b["zc.resumelb.request_class"], "h.example")
        self.assertEqual(a["HTTP_HOST"], "WWW.H.EXAMPLE.:8080")

    def test_http10_expect_ignored(self):
        p = curl("--http1.0", "-H", "Expect: 100-continue", "--data-binary", "hello",
                 "-D", "/dev/stdout", self.url("/echo"))
        out = p.stdout.decode("latin-1")
        self.assertNotIn(" 100 Continue", out)
        self.assertTrue(out.startswith("HTTP/1.1 200 "), out)
        self.assertTrue(out.endswith("\r\n\r\nhello"), out)
        p = curl("--http1.0", "-H", "Expect: something-else", "--data-binary", "x",
                 "-o", "/dev/null", "-w", "%{http_code}", self.url("/echo"))
        self.assertEqual(p.stdout, b"200")

    def test_fragment_nul_trace_connect(self):
        self.assertEqual(curl_status(self.url("/"), "--request-target", "/env#frag?x"), 400)
        self.assertEqual(curl_status(self.url("/env%00x")), 400)
        self.assertEqual(curl_status(self.url("/env"), "-X", "TRACE"), 405)
        self.assertEqual(curl_status(self.url("/"), "-X", "CONNECT", "--request-target",
                                     "a.example:443"), 405)

    def test_content_length_absent_without_a_body(self):
        self.assertNotIn("CONTENT_LENGTH", self.env("/env"))
        self.assertEqual(self.env("/env", "--data-binary", "hello")["CONTENT_LENGTH"], "5")


class WorkerEnvironmentTest(harness.E2ETestCase):

    def test_pythonpath_honoured_after_pythonpath_flag(self):
        d = self.sandbox.mkdir("ppdir")
        self.sandbox.write("ppdir/pp_app.py",
                           "import sys, json\n"
                           "def application(environ, start_response):\n"
                           "    body = json.dumps(sys.path).encode()\n"
                           "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
                           "    return [body]\n")
        _, port = self.sandbox.start_worker(app="pp_app:application",
                                            env={"PYTHONPATH": d + "::/nonexistent-rlb"})
        conn = self.connect(port)
        r = harness.request(conn, 1, "/")
        self.assertComplete(r, 200)
        path = json.loads(r.body)
        # After --pythonpath's entries, before the standard library; empty entries skipped.
        i = path.index(d)
        self.assertEqual(path[i + 1], "/nonexistent-rlb")
        self.assertLess(path.index(harness.APPS_DIR), i)
        self.assertLess(i, min(n for n, p in enumerate(path) if p.startswith("/usr/lib/python3")))


class FakeWorker:
    """A worker that answers every REQUEST with RESPONSES[PATH_INFO] (a list of frames as
    built by `frames(rno)`), and every KEEPALIVE; for the LB's own checks of what a
    worker sends, which zkworker never would."""

    def __init__(self, responses):
        self.responses = responses
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.run, args=(conn,), daemon=True).start()

    def run(self, conn):
        with conn:
            conn.sendall(rlbproto.encode_hello("worker", software="fake") +
                         rlbproto.encode_resume({}))
            reader = rlbproto.FrameReader()
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                for rno, kind, payload in reader:
                    if kind == rlbproto.KEEPALIVE:
                        conn.sendall(rlbproto.encode_keepalive())
                    elif kind == rlbproto.REQUEST:
                        _, env = rlbproto.parse_request(payload)
                        path = dict(env)["PATH_INFO"]
                        conn.sendall(b"".join(self.responses[path](rno)))

    def close(self):
        self.stopped = True
        self.srv.close()


def respond(status, headers, body=b"hello"):
    return lambda rno: [rlbproto.encode_response(rno, status, headers),
                        rlbproto.encode_response_body(rno, body),
                        rlbproto.encode_response_end(rno)]


class LbChecksWorkerHeadTest(lb_harness.RawConnTestCase):
    """The LB's own checks: 502 for that request, the worker connection kept."""

    BAD = {
        "/reason-crlf": respond(b"200 OK\r\nX-Injected: 1", [(b"Content-Length", b"5")]),
        "/name-space": respond(b"200 OK", [(b"X Bad", b"1")]),
        "/name-empty": respond(b"200 OK", [(b"", b"1")]),
        "/value-nul": respond(b"200 OK", [(b"X-Bad", b"a\x00b")]),
        "/value-vt": respond(b"200 OK", [(b"X-Bad", b"a\x0bb")]),
        "/value-lf": respond(b"200 OK", [(b"X-Bad", b"a\r\nX-Injected: 1")]),
        "/cl-invalid": respond(b"200 OK", [(b"Content-Length", b"abc")]),
        "/cl-conflict": respond(b"200 OK", [(b"Content-Length", b"5"), (b"Content-Length", b"6")]),
    }

    @classmethod
    def setUpClass(cls):
        responses = dict(cls.BAD)
        responses["/ok"] = respond(b"200 OK", [(b"Content-Length", b"5")])
        cls.fake = FakeWorker(responses)
        cls.status_path = cls.class_sandbox().path("status.sock")
        cls.lb, cls.port = lb_harness.start_lb(cls.class_sandbox(), [cls.fake.port],
                                               ["-s", cls.status_path])

    @classmethod
    def tearDownClass(cls):
        cls.fake.close()
        super().tearDownClass()

    def test_bad_heads_are_502_and_the_link_stays(self):
        mark = self.lb.mark()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        for path in self.BAD:
            with self.subTest(path=path):
                conn.request("GET", path)
                resp = conn.getresponse()
                self.assertEqual(resp.status, 502)
                self.assertIsNone(resp.getheader("X-Injected"))
                self.assertEqual(resp.read(), lb_harness.DEFAULT_DISCONNECT_MESSAGE)
                self.lb.wait_for_log(r"(?m)^W\d{8} .*invalid response head for GET \S+ " +
                                     re.escape(path), since=mark, timeout=5)
        conn.request("GET", "/ok")
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.read()), (200, b"hello"))
        self.assertEqual(self.fake.connections, 1)
        self.assertNotRegex(self.lb.output_since(mark), r"malformed|worker lost|disconnected")
        totals = lb_harness.read_status(self.status_path)["totals"]
        self.assertEqual(totals["invalid_responses"], len(self.BAD), totals)


if __name__ == "__main__":
    unittest.main()
