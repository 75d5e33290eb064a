"""bench/instant_worker (the per-request cost benchmark's stand-in worker) speaks the
protocol: HELLO + RESUME on connect, a KEEPALIVE for a KEEPALIVE, a complete 200 for every
request at its REQUEST_END (several in one read all answered), and it serves through
resumelb."""

import socket
import unittest

import harness
import lb_harness
import rlbproto


class InstantWorkerTest(harness.E2ETestCase):

    def start_worker(self):
        proc = self.sandbox.start([harness.binary("instant-worker"), "--address=127.0.0.1:0"],
                                  name="instant-worker")
        m = proc.wait_for_log(r"listening on 127\.0\.0\.1:(?P<port>\d+)")
        return proc, int(m.group("port"))

    def read_frames(self, sock, reader, count):
        frames = []
        while len(frames) < count:
            frames += list(reader)
            if len(frames) >= count:
                break
            data = sock.recv(65536)
            self.assertTrue(data, "connection closed after %d frames" % len(frames))
            reader.feed(data)
        return frames

    def test_protocol(self):
        _, port = self.start_worker()
        with socket.create_connection(("127.0.0.1", port), timeout=harness.DEFAULT_TIMEOUT) as s:
            reader = rlbproto.FrameReader()
            hello, resume = self.read_frames(s, reader, 2)
            self.assertEqual(hello[1], rlbproto.HELLO)
            self.assertEqual(rlbproto.parse_hello(hello[2])["role"], "worker")
            self.assertEqual((resume[1], rlbproto.parse_resume(resume[2])), (rlbproto.RESUME, {}))
            env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
            # Two requests and a keep-alive in one write; request 2 ends only later.
            s.sendall(rlbproto.encode_hello("lb") + rlbproto.encode_request(1, "c", env) +
                      rlbproto.encode_request_end(1) + rlbproto.encode_keepalive() +
                      rlbproto.encode_request(2, "c", env) +
                      rlbproto.encode_request_body(2, b"ignored"))
            frames = self.read_frames(s, reader, 4)
            self.assertEqual([(rno, kind) for rno, kind, _ in frames],
                             [(1, rlbproto.RESPONSE), (1, rlbproto.RESPONSE_BODY),
                              (1, rlbproto.RESPONSE_END), (0, rlbproto.KEEPALIVE)])
            status, headers = rlbproto.parse_response(frames[0][2])
            self.assertEqual(status, "200 OK")
            self.assertIn(("Content-Length", "14"), headers)
            self.assertEqual(rlbproto.parse_response_body(frames[1][2]), b"Hello, world!\n")
            s.sendall(rlbproto.encode_request_end(2))
            frames = self.read_frames(s, reader, 3)
            self.assertEqual([(rno, kind) for rno, kind, _ in frames],
                             [(2, rlbproto.RESPONSE), (2, rlbproto.RESPONSE_BODY),
                              (2, rlbproto.RESPONSE_END)])

    def test_serves_through_resumelb(self):
        _, port = self.start_worker()
        lb, lb_port = lb_harness.start_lb(self.sandbox, [port])
        for _ in range(3):
            status, headers, body = lb_harness.http_request(lb_port, "/anything")
            self.assertEqual((status, body), (200, b"Hello, world!\n"))
            self.assertEqual(headers["content-type"], "text/plain")

    def test_refuses_a_frame_before_hello(self):
        proc, port = self.start_worker()
        with socket.create_connection(("127.0.0.1", port), timeout=harness.DEFAULT_TIMEOUT) as s:
            s.sendall(rlbproto.encode_keepalive())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        proc.wait_for_log(r"closing a balancer's connection: .*KEEPALIVE before HELLO")


if __name__ == "__main__":
    unittest.main()
