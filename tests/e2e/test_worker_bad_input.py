"""zkworker end to end: bad configuration, bad applications and malformed frames.

A bad start-up gives one clear error line on stderr naming the problem, a non-zero exit and
no 'listening' line. A malformed frame closes only that connection, with a logged reason.
"""

import socket
import struct
import unittest

import harness
import rlbproto
from harness import request


class BadStartTest(harness.E2ETestCase):

    def run_worker(self, *args, cwd=None):
        res = harness.run_command([harness.binary("zkworker"), *args],
                                  cwd=cwd or self.sandbox.dir)
        self.assertNotEqual(res.returncode, 0, res.stderr)
        self.assertNotIn("listening", res.stderr + res.stdout)
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"expected one error line, got:\n{res.stderr}")
        return lines[0]

    def ini(self, server="use = egg:zc.resumelb\naddress = 127.0.0.1:0\n",
            app="use = call:plain_app:make_app\n"):
        return self.sandbox.write("bad.ini", f"[app:main]\n{app}\n[server:main]\n{server}"
                                             f"pythonpath = {harness.APPS_DIR}\n")

    def app_args(self, app="plain_app:application", *extra):
        return [f"--app={app}", "--address=127.0.0.1:0", f"--pythonpath={harness.APPS_DIR}",
                *extra]

    # -- configuration --
    def test_unknown_server_key(self):
        line = self.run_worker(self.ini("use = egg:zc.resumelb\naddress = 127.0.0.1:0\n"
                                        "colour = red\n"))
        self.assertIn("colour", line)
        self.assertIn("[server:main]", line)

    def test_bad_history_value(self):
        for value, phrase in [("abc", "history"), ("0", "history"), ("-3", "history")]:
            with self.subTest(value=value):
                line = self.run_worker(self.ini("use = egg:zc.resumelb\naddress = 127.0.0.1:0\n"
                                                f"history = {value}\n"))
                self.assertIn(phrase, line)

    def test_bad_history_flag(self):
        line = self.run_worker(*self.app_args("plain_app:application", "--history=abc"))
        self.assertIn("history", line)

    def test_missing_address(self):
        line = self.run_worker(self.ini("use = egg:zc.resumelb\n"))
        self.assertIn("address", line)
        line = self.run_worker("--app=plain_app:application",
                               f"--pythonpath={harness.APPS_DIR}")
        self.assertIn("address", line)

    def test_bad_address(self):
        line = self.run_worker(*self.app_args("plain_app:application"),
                               "--address=127.0.0.1:notaport")
        self.assertIn("127.0.0.1:notaport", line)

    def test_address_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            line = self.run_worker("--app=plain_app:application",
                                   f"--pythonpath={harness.APPS_DIR}",
                                   f"--address=127.0.0.1:{port}")
        self.assertIn(str(port), line)

    def test_wrong_server_use(self):
        line = self.run_worker(self.ini("use = egg:gunicorn\naddress = 127.0.0.1:0\n"))
        self.assertIn("egg:gunicorn", line)

    def test_missing_config_file(self):
        missing = self.sandbox.path("nope.ini")
        line = self.run_worker(missing)
        self.assertIn(missing, line)

    def test_config_without_server_section(self):
        path = self.sandbox.write("noserver.ini", "[app:main]\nuse = call:plain_app:make_app\n")
        line = self.run_worker(path)
        self.assertIn("server:main", line)

    def test_unknown_flag(self):
        line = self.run_worker("--no_such_flag=1", *self.app_args())
        self.assertIn("no_such_flag", line)

    # -- the application --
    def test_bad_app_specs(self):
        for spec, phrase in [(":application", "MODULE:CALLABLE"),
                             ("plain_app:", "MODULE:CALLABLE"),
                             ("plain_app:no_such_name", "no_such_name"),
                             ("plain_app:_lock", "not callable"),
                             ("no_such_module_xyz:app", "no_such_module_xyz")]:
            with self.subTest(spec=spec):
                line = self.run_worker(*self.app_args(spec))
                self.assertIn(phrase, line)

    def test_app_import_error(self):
        self.sandbox.write("broken_app.py", "import no_such_dependency_xyz\n"
                                            "application = None\n")
        line = self.run_worker("--app=broken_app:application", "--address=127.0.0.1:0",
                               f"--pythonpath={self.sandbox.dir}")
        self.assertIn("no_such_dependency_xyz", line)
        self.assertIn("broken_app", line)

    def test_app_raising_at_import(self):
        self.sandbox.write("raising_app.py", "raise RuntimeError('cannot configure')\n")
        line = self.run_worker("--app=raising_app:application", "--address=127.0.0.1:0",
                               f"--pythonpath={self.sandbox.dir}")
        self.assertIn("RuntimeError: cannot configure", line)

    def test_paste_app_error(self):
        line = self.run_worker(self.ini(app="use = call:plain_app:no_such_factory\n"))
        self.assertIn("no_such_factory", line)


def frame(rno, kind, body=b""):
    return struct.pack(">IIB", rno, len(body) + 1, kind) + body


class MalformedFrameTest(harness.E2ETestCase):
    """Each bad input closes only its own connection; the process and other LBs carry on."""

    @classmethod
    def setUpClass(cls):
        cls.worker, cls.port = cls.class_sandbox().start_worker(threads=2)

    def setUp(self):
        self.other = self.connect(self.port)
        self.other_rno = 0

    def check_closed(self, data, reason, hello=True):
        mark = self.worker.mark()
        conn = self.connect(self.port, handshake=hello, send_hello=hello)
        if not hello:
            hello_frame = conn.read_frame()
            self.assertEqual(hello_frame[1], "HELLO")
        conn.send(data)
        # The worker closes the connection (after anything it had queued).
        with self.assertRaises(ConnectionError):
            while True:
                conn.read_frame(timeout=10)
        self.worker.wait_for_log(r"^W.*load balancer disconnected 127\.0\.0\.1:\d+\(\d+\): "
                                 r"malformed frame: .*" + reason, since=mark, timeout=5)
        # Another connection keeps working.
        self.other_rno += 1
        self.assertComplete(request(self.other, self.other_rno, "/hello"), 200,
                            b"Hello, world!\n")
        self.assertTrue(self.worker.alive())

    def test_garbage_bytes(self):
        # Read as a header: rno 'GET ', length '/ HT' (over 16 MiB).
        self.check_closed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", r"over|limit|16")

    def test_unknown_kind(self):
        self.check_closed(frame(0, 0x07), r"unknown message kind 0x07")

    def test_length_over_16_mib(self):
        self.check_closed(struct.pack(">IIB", 1, (16 << 20) + 1, 0x11), r"16777217")

    def test_length_zero(self):
        self.check_closed(struct.pack(">II", 0, 0), r"empty payload")

    def test_request_before_hello(self):
        self.check_closed(rlbproto.encode_request(1, "/", harness.environ("/hello")),
                          r"REQUEST before HELLO", hello=False)

    def test_wrong_protocol_version(self):
        self.check_closed(rlbproto.encode_hello("lb", version=2), r"version 2", hello=False)

    def test_bad_magic(self):
        bad = bytearray(rlbproto.encode_hello("lb"))
        bad[9:13] = b"XXXX"
        self.check_closed(bytes(bad), r"RSLB", hello=False)

    def test_duplicate_request_number(self):
        env = harness.environ("/hello")
        data = (rlbproto.encode_request(3, "/", env) + rlbproto.encode_request_body(3, b"x") +
                rlbproto.encode_request(3, "/", env))
        self.check_closed(data, r"already in flight")

    def test_second_hello(self):
        self.check_closed(rlbproto.encode_hello("lb"), r"second HELLO")

    def test_request_with_rno_0(self):
        self.check_closed(frame(0, rlbproto.REQUEST_END), r"request number 0")

    def test_empty_request_body(self):
        self.check_closed(rlbproto.encode_request(1, "/", harness.environ("/echo")) +
                          frame(1, rlbproto.REQUEST_BODY), r"REQUEST_BODY with no data")

    def test_truncated_request(self):
        self.check_closed(frame(1, rlbproto.REQUEST, b"\x00\x00\x00\x05/a"), r"truncated")

    def test_worker_only_kind_from_the_lb(self):
        self.check_closed(rlbproto.encode_response(1, "200 OK", []), r"RESPONSE")

    def test_keepalive_with_payload(self):
        self.check_closed(frame(0, rlbproto.KEEPALIVE, b"x"), r"KEEPALIVE must have no payload")

    def test_body_after_end(self):
        env = harness.environ("/sleep", query="dur=0.5")
        self.check_closed(rlbproto.encode_request(1, "/", env) + rlbproto.encode_request_end(1) +
                          rlbproto.encode_request_body(1, b"late"), r"after REQUEST_END")

    def test_frames_for_unknown_requests_are_ignored(self):
        conn = self.connect(self.port)
        conn.send(rlbproto.encode_request_body(42, b"x") + rlbproto.encode_request_end(42) +
                  rlbproto.encode_cancel(43))
        self.assertComplete(request(conn, 1, "/hello"), 200, b"Hello, world!\n")
        self.assertEqual(harness.keepalive_roundtrip(conn), [])


if __name__ == "__main__":
    unittest.main()
