"""Authenticated worker links (--link_secret_file, docs/protocol.md "Link authentication"),
end to end with real resumelb and zkworker processes: the same secret serves; a missing or
different secret on either side is refused and logged on each side that can tell; a raw
peer (tests/e2e/rlbproto.py) that skips the proof gets nothing: a rogue LB gets no résumé
and its REQUEST never reaches the application, a rogue worker is never pooled and gets no
REQUEST; get-worker-resume with and without the secret; the secret file's checks."""

import os
import re
import socket
import threading
import unittest

import harness
import lb_harness
import rlbproto
from lb_harness import http_request

REFUSAL_LB_NO_SECRET = r"requires a link secret \(--link_secret_file\)"
REFUSAL_NOT_AUTHENTICATED = r"did not authenticate \(it has no link secret\?\)"
REFUSAL_MISMATCH = r"sent a proof that does not match: different link secrets"


class LinkAuthCase(harness.E2ETestCase):

    def secret_file(self, text: str = "correct horse battery staple\n", name: str = "secret",
                    mode: int = 0o600) -> str:
        path = self.sandbox.write(name, text)
        os.chmod(path, mode)
        return path

    def worker(self, secret_path=None, extra=(), app="plain_app:application"):
        args = list(extra)
        if secret_path:
            args.append(f"--link_secret_file={secret_path}")
        return self.start_worker(app=app, extra_args=args)

    def lb(self, wport, secret_path=None, wait=True, extra=()):
        args = ["--worker_wait_timeout=1", *extra]
        if secret_path:
            args.append(f"--link_secret_file={secret_path}")
        return lb_harness.start_lb(self.sandbox, [wport], args, wait_workers=wait)


class ServedTest(LinkAuthCase):

    def test_same_secret_is_served(self):
        secret = self.secret_file()
        worker, wport = self.worker(secret)
        lb, port = self.lb(wport, secret)  # waits for "worker connected"
        status, _, body = http_request(port, "/hello")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"Hello, world!\n")
        self.assertNotRegex(lb.output(), r"link secret|did not authenticate")

    def test_ini_key(self):
        secret = self.secret_file()
        ini = self.sandbox.write("worker.ini", f"""
[app:main]
use = call:plain_app:make_app

[server:main]
use = egg:zc.resumelb
address = 127.0.0.1:{harness.free_port()}
link_secret_file = {secret}
""")
        _, wport = self.start_worker(config=ini)
        _, port = self.lb(wport, secret)
        status, _, _ = http_request(port, "/hello")
        self.assertEqual(status, 200)

    def test_no_secrets_anywhere_is_todays_protocol(self):
        # A raw LB without a secret gets HELLO then RESUME at once, as before.
        _, wport = self.worker()
        conn = self.sandbox.connect(wport)
        self.assertEqual(conn.hello["role"], "worker")
        self.assertIsNone(conn.peer_nonce)


class RefusedTest(LinkAuthCase):

    def assert_no_worker(self, port):
        status, _, _ = http_request(port, "/hello")
        self.assertEqual(status, 503)

    def test_lb_without_secret(self):
        worker, wport = self.worker(self.secret_file())
        lb, port = self.lb(wport, None, wait=False)
        lb.wait_for_log(rf"worker 127\.0\.0\.1:{wport} {REFUSAL_LB_NO_SECRET}")
        worker.wait_for_log(r"load balancer disconnected .*: link refused: the load balancer "
                            r"closed the connection without proving the link secret")
        self.assert_no_worker(port)
        # The LB retries; its warning is not repeated for each attempt.
        since = worker.mark()
        worker.wait_for_log(r"load balancer connected", since=since)
        worker.wait_for_log(r"load balancer connected", since=worker.mark())
        self.assertEqual(len(lb.log_lines(REFUSAL_LB_NO_SECRET)), 1, lb.output())
        self.assertNotIn("worker connected", lb.output())

    def test_worker_without_secret(self):
        worker, wport = self.worker(None)
        lb, port = self.lb(wport, self.secret_file(), wait=False)
        lb.wait_for_log(rf"worker 127\.0\.0\.1:{wport} {REFUSAL_NOT_AUTHENTICATED}")
        worker.wait_for_log(r"link refused: the load balancer " + REFUSAL_LB_NO_SECRET)
        self.assert_no_worker(port)
        self.assertNotIn("worker connected", lb.output())

    def test_different_secrets(self):
        worker, wport = self.worker(self.secret_file("one secret\n", "a"))
        lb, port = self.lb(wport, self.secret_file("another secret\n", "b"), wait=False)
        lb.wait_for_log(rf"worker 127\.0\.0\.1:{wport} {REFUSAL_MISMATCH}")
        worker.wait_for_log(r"link refused: the load balancer " + REFUSAL_MISMATCH)
        self.assert_no_worker(port)
        self.assertNotIn("worker connected", lb.output())


def read_until_closed(conn: rlbproto.Connection, timeout: float = 15):
    """The frame kinds read until the peer closes the connection."""
    names = []
    while True:
        try:
            _, name, _ = conn.read_frame(timeout=timeout)
        except (ConnectionError, OSError):
            return names
        names.append(name)


class RogueLbTest(LinkAuthCase):
    """A raw LB against a worker with a secret: the application never runs for it."""

    def setUp(self):
        self.secret = b"s3cret-for-rogues"
        self.trace = self.sandbox.path("trace.log")
        self.worker_proc, self.wport = self.worker(
            self.secret_file(self.secret.decode()), extra=[f"--tracelog={self.trace}"],
            app="plain_app:raw_application")  # the validator refuses the tracelog object

    def traced(self) -> str:
        return harness.read_text(self.trace)

    def test_proper_lb_is_served(self):  # the control: the same steps with the proof
        conn = self.sandbox.connect(self.wport, secret=self.secret)
        self.assertTrue(conn.peer_proved)
        r = harness.request(conn, 1, "/hello?proper")
        self.assertEqual(r.code, 200)
        harness.wait_for(lambda: "/hello?proper" in self.traced())

    def test_no_secret_request_is_refused(self):
        conn = self.sandbox.connect(self.wport, handshake=False)
        conn.send_request(1, "/a", harness.environ("/hello", query="rogue1"))
        names = read_until_closed(conn)
        self.assertEqual(names[:2], ["HELLO", "CHALLENGE"])
        self.assertNotIn("RESUME", names)
        self.assertNotIn("RESPONSE", names)
        self.worker_proc.wait_for_log(REFUSAL_NOT_AUTHENTICATED + ": REQUEST instead of "
                                      r"CHALLENGE")
        self.assertNotIn("rogue1", self.traced())
        self.assertTrue(self.worker_proc.alive())

    def test_challenge_without_proof_is_refused(self):
        conn = self.sandbox.connect(self.wport, handshake=False, secret=b"x" * 8,
                                    answer_challenge=False)
        conn.send_request(1, "/a", harness.environ("/hello", query="rogue2"))
        names = read_until_closed(conn)
        self.assertNotIn("RESUME", names)
        self.assertNotIn("RESPONSE", names)
        self.worker_proc.wait_for_log(r"sent REQUEST before proving the link secret")
        self.assertNotIn("rogue2", self.traced())

    def test_wrong_secret_is_refused(self):
        conn = self.sandbox.connect(self.wport, handshake=False, secret=b"wrong")
        names = read_until_closed(conn)
        self.assertNotIn("RESUME", names)
        self.assertFalse(conn.peer_proved)  # and the worker's proof fails here too
        self.worker_proc.wait_for_log(REFUSAL_MISMATCH)


class RogueWorker:
    """A fake worker: accepts the LB's connections and plays rlbproto's worker side with
    `secret` (None: none), sending `proof` instead of the right one when given, then
    RESUME; records every frame kind each connection received."""

    def __init__(self, secret=None, bad_proof=False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.secret = secret
        self.bad_proof = bad_proof
        self.received = []  # frame kind names, all connections
        self.connections = 0
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn = rlbproto.Connection(sock=sock, role="worker", secret=self.secret,
                                       answer_challenge=not self.bad_proof, timeout=10)
            try:
                if self.bad_proof:
                    conn.send(rlbproto.encode_proof(b"\x00" * rlbproto.PROOF_BYTES))
                conn.send(rlbproto.encode_resume({"/a": 1.0}))
                self.received += read_until_closed(conn, timeout=10)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self):
        self.stopped = True
        self.listener.close()


class RogueWorkerTest(LinkAuthCase):
    """A rogue worker registered with an LB that has a secret: never pooled, no REQUEST."""

    def check_refused(self, rogue, reason):
        self.addCleanup(rogue.stop)
        lb, port = self.lb(rogue.port, self.secret_file(), wait=False)
        lb.wait_for_log(rf"worker 127\.0\.0\.1:{rogue.port} {reason}")
        status, _, _ = http_request(port, "/hello")
        self.assertEqual(status, 503)
        harness.wait_for(lambda: rogue.connections >= 2)  # the LB retried at least once
        self.assertNotIn("REQUEST", rogue.received)
        self.assertNotIn("worker connected", lb.output())

    def test_worker_without_secret_gets_nothing(self):
        self.check_refused(RogueWorker(), REFUSAL_NOT_AUTHENTICATED)

    def test_worker_with_forged_proof_gets_nothing(self):
        self.check_refused(RogueWorker(secret=b"a guess", bad_proof=True), REFUSAL_MISMATCH)


class GetWorkerResumeTest(LinkAuthCase):

    def run_tool(self, wport, secret_path=None):
        argv = [harness.binary("get-worker-resume"), "--timeout=10"]
        if secret_path:
            argv.append(f"--link_secret_file={secret_path}")
        return harness.run_command(argv + [f"127.0.0.1:{wport}"], timeout=30)

    def test_with_and_without_the_secret(self):
        secret = self.secret_file()
        _, wport = self.worker(secret)
        ok = self.run_tool(wport, secret)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(ok.stdout.splitlines()[0], f"127.0.0.1:{wport}")
        refused = self.run_tool(wport)
        self.assertEqual(refused.returncode, 1)
        self.assertRegex(refused.stderr, REFUSAL_LB_NO_SECRET)
        wrong = self.run_tool(wport, self.secret_file("wrong\n", "wrong"))
        self.assertEqual(wrong.returncode, 1)
        self.assertRegex(wrong.stderr, REFUSAL_MISMATCH)

    def test_worker_without_secret(self):
        _, wport = self.worker(None)
        self.assertEqual(self.run_tool(wport).returncode, 0)
        refused = self.run_tool(wport, self.secret_file())
        self.assertEqual(refused.returncode, 1)
        self.assertRegex(refused.stderr, REFUSAL_NOT_AUTHENTICATED)


class SecretFileTest(LinkAuthCase):

    def test_refused_files(self):
        cases = [
            (self.secret_file("\n", "empty"), r"is empty"),
            (self.secret_file("s3cret\n", "open", mode=0o644), r"accessible by group or others"),
            (self.sandbox.path("missing"), r"No such file"),
        ]
        for path, reason in cases:
            with self.subTest(path=path):
                lb = lb_harness.run_lb(["-a", "127.0.0.1:0", f"--link_secret_file={path}",
                                        "127.0.0.1:1"])
                self.assertNotEqual(lb.returncode, 0)
                self.assertRegex(lb.stderr, reason)
                self.assertNotIn("s3cret", lb.stderr)
                worker = harness.run_command([harness.binary("zkworker"),
                                              "--app=plain_app:application",
                                              "--address=127.0.0.1:0",
                                              f"--link_secret_file={path}", "--check"])
                self.assertEqual(worker.returncode, 2, worker.stderr)
                self.assertRegex(worker.stderr, reason)


if __name__ == "__main__":
    unittest.main()
