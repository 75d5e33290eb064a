"""resumelb end to end: HTTP/1.x behaviour of the front end (keep-alive, pipelining,
HTTP/1.0, HEAD, chunked responses and uploads, 100-continue, Connection: close), the WSGI
environ it builds, and 50 MB transfers in both directions."""

import hashlib
import http.client
import json
import os
import subprocess
import unittest

import lb_harness
from lb_harness import chunked, http_request, pid_answer, request_bytes


class HttpTest(lb_harness.RawConnTestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = lb_harness.start_cluster(cls.class_sandbox(), 1, threads=4)
        cls.port = cls.cluster.port
        cls.worker_pid = cls.cluster.workers[0][0].pid

    def get_json(self, path, **kw):
        status, headers, body = http_request(self.port, path, **kw)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    # ------------------------------------------------------------------ connections

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        self.addCleanup(conn.close)
        remote_ports = set()
        for i in range(5):
            conn.request("GET", f"/env/keepalive?i={i}")
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200, body)
            self.assertIsNone(resp.getheader("Connection"))
            env = json.loads(body)
            self.assertEqual(env["QUERY_STRING"], f"i={i}")
            remote_ports.add(env["REMOTE_PORT"])
            self.assertEqual(env["REMOTE_PORT"], str(conn.sock.getsockname()[1]))
        self.assertEqual(len(remote_ports), 1, "the connection was not reused")

    def pipelined_requests(self):
        return (request_bytes("GET", "/hello")
                + request_bytes("GET", "/env/pipelined?n=2")
                + request_bytes("GET", "/big?size=200000&chunk=7000")
                + request_bytes("HEAD", "/hello")
                + request_bytes("POST", "/echo", body=b"posted body")
                + request_bytes("GET", "/pid"))

    def check_pipelined_responses(self, c):
        r = c.read_response()
        self.assertEqual((r.code, r.body), (200, b"Hello, world!\n"), r)
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(json.loads(r.body)["PATH_INFO"], "/env/pipelined")
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(lb_harness.sha256(r.body), lb_harness.big_sha256(200000, 7000))
        r = c.read_response(head=True)
        self.assertEqual((r.code, r.header("Content-Length")), (200, "14"), r)
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertTrue(r.body.startswith(b"11 " + hashlib.sha256(b"posted body")
                                          .hexdigest().encode()), r)
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(pid_answer(r.body)[0], self.worker_pid)

    def test_pipelining(self):
        c = self.raw()
        c.send(self.pipelined_requests())  # all in one send
        self.check_pipelined_responses(c)
        # The connection is still usable afterwards.
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().body, b"Hello, world!\n")

    def test_pipelining_then_half_close(self):
        c = self.raw()
        c.send(self.pipelined_requests())
        c.shut_wr()   # the client is done sending; it still wants every answer
        self.check_pipelined_responses(c)
        self.assertTrue(c.closed_by_peer(10), "the LB did not close after the last answer")

    def test_connection_close_from_client(self):
        c = self.raw()
        c.send(request_bytes("GET", "/hello", [("Connection", "close")])
               + request_bytes("GET", "/pid"))
        r = c.read_response()
        self.assertEqual((r.code, r.body), (200, b"Hello, world!\n"))
        self.assertEqual(r.header("Connection"), "close")
        # The pipelined request after "Connection: close" is not answered.
        self.assertEqual(c.read_until_close(), b"")

    def test_idle_keep_alive_connection_stays_open(self):
        c = self.raw()
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().code, 200)
        self.assertFalse(c.closed_by_peer(0.5))
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().code, 200)

    # ------------------------------------------------------------------ framing

    def test_http10_close_delimited_without_content_length(self):
        c = self.raw()
        c.send(request_bytes("GET", "/big?size=300000", version="HTTP/1.0"))
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.framing, "close", r)  # neither Content-Length nor chunked
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(len(r.body), 300000)
        self.assertEqual(lb_harness.sha256(r.body), lb_harness.big_sha256(300000))

    def test_http10_content_length_kept(self):
        c = self.raw()
        c.send(request_bytes("GET", "/hello", version="HTTP/1.0"))
        r = c.read_response()
        self.assertEqual((r.code, r.framing, r.header("Content-Length"), r.body),
                         (200, "length", "14", b"Hello, world!\n"), r)
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertTrue(c.closed_by_peer(10), "HTTP/1.0 without keep-alive: must close")

    def test_http10_environ(self):
        c = self.raw()
        c.send(request_bytes("GET", "/env/ten", version="HTTP/1.0"))
        r = c.read_response()
        self.assertEqual(json.loads(r.body)["SERVER_PROTOCOL"], "HTTP/1.0")

    def test_head_keeps_content_length_without_body(self):
        c = self.raw()
        # HEAD then GET on one connection: any stray HEAD body would corrupt the GET.
        c.send(request_bytes("HEAD", "/hello") + request_bytes("HEAD", "/big?size=5000")
               + request_bytes("GET", "/hello"))
        r = c.read_response(head=True)
        self.assertEqual((r.code, r.header("Content-Length")), (200, "14"), r)
        r = c.read_response(head=True)
        self.assertEqual(r.code, 200, r)
        r = c.read_response()
        self.assertEqual((r.code, r.body), (200, b"Hello, world!\n"), r)
        self.assertFalse(c.readable_within(0.3), f"stray bytes after the responses: {c.buf!r}")
        # And through http.client.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("HEAD", "/hello")
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.getheader("Content-Length"), resp.read()),
                         (200, "14", b""))

    def test_chunked_response_when_no_content_length(self):
        c = self.raw()
        c.send(request_bytes("GET", "/big?size=250000&chunk=10000"))
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.framing, "chunked", r)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(lb_harness.sha256(r.body), lb_harness.big_sha256(250000, 10000))
        # An empty chunked body (a lazy app yielding nothing) on the same connection.
        c.send(request_bytes("GET", "/lazy?n=0"))
        r = c.read_response()
        self.assertEqual((r.code, r.framing, r.body), (200, "chunked", b""), r)
        c.send(request_bytes("GET", "/lazy?n=2"))
        r = c.read_response()
        self.assertEqual((r.code, r.framing, r.body), (200, "chunked", b"chunk0\nchunk1\n"), r)

    # ------------------------------------------------------------------ environ

    def test_environ(self):
        c = self.raw()
        body = b"hello"
        c.send(request_bytes(
            "POST", "/env/a%20b/%41%2Fc?x=1&y=%20z",
            [("Content-Type", "text/x-test; charset=latin-1"),
             ("X-Custom", "custom value"),
             ("X-Multi", "one"),
             ("x-multi", "two"),
             ("X-Multi", "three"),
             ("Accept", "text/plain"),
             ("User-Agent", "lb-e2e")],
            body=body, host="www.env.example:8080"))
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        env = json.loads(r.body)
        expected = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/env/a b/A/c",
            "QUERY_STRING": "x=1&y=%20z",
            "CONTENT_TYPE": "text/x-test; charset=latin-1",
            "CONTENT_LENGTH": "5",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": str(c.local_port),
            "HTTP_HOST": "www.env.example:8080",
            "HTTP_X_CUSTOM": "custom value",
            "HTTP_X_MULTI": "one, two, three",
            "HTTP_ACCEPT": "text/plain",
            "HTTP_USER_AGENT": "lb-e2e",
            "wsgi.url_scheme": "http",
            "zc.resumelb.request_class": "env.example",  # the port is not part of the class
        }
        self.assertEqual({k: env.get(k) for k in expected}, expected)
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)

    def test_environ_get_without_query(self):
        env = self.get_json("/env/plain%2dpath")
        self.assertEqual(env["PATH_INFO"], "/env/plain-path")
        self.assertEqual(env["QUERY_STRING"], "")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertNotIn("CONTENT_TYPE", env)

    def test_absolute_form_target(self):
        c = self.raw()
        c.send(request_bytes("GET", "http://other.example:81/env/abs%7E?q=1"))
        env = json.loads(c.read_response().body)
        self.assertEqual((env["PATH_INFO"], env["QUERY_STRING"]), ("/env/abs~", "q=1"))

    # ------------------------------------------------------------------ request bodies

    def test_chunked_upload_raw(self):
        parts = [os.urandom(n) for n in (1, 1000, 70000, 3, 200000)]
        data = b"".join(parts)
        c = self.raw()
        c.send(request_bytes("POST", "/inputinfo", [("Transfer-Encoding", "chunked")])
               + chunked(parts))
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        info = json.loads(r.body)
        self.assertEqual(info["content_length"], str(len(data)))
        self.assertEqual(info["length"], len(data))
        self.assertEqual(info["sha256"], lb_harness.sha256(data))
        # The connection stays usable after a chunked upload.
        c.send(request_bytes("GET", "/hello"))
        self.assertEqual(c.read_response().body, b"Hello, world!\n")

    def test_chunked_upload_curl(self):
        data = os.urandom(300000)
        path = self.sandbox.write("upload.bin", data)
        out = subprocess.run(["curl", "-sS", "--max-time", "30", "-H", "Transfer-Encoding: chunked",
                              "--data-binary", f"@{path}", f"http://127.0.0.1:{self.port}/inputinfo"],
                             capture_output=True, timeout=40)
        self.assertEqual(out.returncode, 0, out.stderr)
        info = json.loads(out.stdout)
        self.assertEqual((info["content_length"], info["length"], info["sha256"]),
                         (str(len(data)), len(data), lb_harness.sha256(data)))

    def test_expect_100_continue(self):
        data = os.urandom(5000)
        c = self.raw()
        c.send(request_bytes("POST", "/echo", [("Expect", "100-continue"),
                                              ("Content-Length", str(len(data)))]))
        # The interim answer comes before any body byte is sent.
        version, code, reason, headers = c.read_head()
        self.assertEqual((code, reason), (100, "Continue"))
        c.send(data)
        r = c.read_response()
        self.assertEqual(r.code, 200, r)
        self.assertTrue(r.body.startswith(b"5000 " + lb_harness.sha256(data).encode()), r)

    def test_expect_100_continue_chunked(self):
        parts = [b"a" * 100, b"b" * 200]
        c = self.raw()
        c.send(request_bytes("POST", "/inputinfo", [("Expect", "100-continue"),
                                                   ("Transfer-Encoding", "chunked")]))
        self.assertEqual(c.read_head()[1], 100)
        c.send(chunked(parts))
        info = json.loads(c.read_response().body)
        self.assertEqual((info["content_length"], info["length"]), ("300", 300))

    # ------------------------------------------------------------------ bulk

    def test_50mb_upload(self):
        size = 50 * 1000 * 1000
        data = os.urandom(1 << 20) * (size >> 20) + os.urandom(size & ((1 << 20) - 1))
        self.assertEqual(len(data), size)
        status, _, body = http_request(self.port, "/echo", method="POST", body=data, timeout=60)
        self.assertEqual(status, 200, body)
        n, digest, _ = body.decode().split()
        self.assertEqual((int(n), digest), (size, lb_harness.sha256(data)))

    def test_50mb_download(self):
        size = 50 * 1000 * 1000
        path = self.sandbox.path("download.bin")
        out = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", path,
                              "-w", "%{http_code}", f"http://127.0.0.1:{self.port}/big?size={size}"],
                             capture_output=True, timeout=90)
        self.assertEqual((out.returncode, out.stdout), (0, b"200"), out.stderr)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                h.update(block)
        self.assertEqual(os.path.getsize(path), size)
        self.assertEqual(h.hexdigest(), lb_harness.big_sha256(size))


if __name__ == "__main__":
    unittest.main()
