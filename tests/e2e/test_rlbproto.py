"""Checks tests/e2e/rlbproto.py against the shared protocol vectors
(tests/vectors/protocol_vectors.json, the same file the C++ codec tests use), plus a
Connection test against an in-process fake worker. Standard library only."""

import json
import math
import os
import random
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rlbproto  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors",
                       "protocol_vectors.json")


def load_vectors():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def b(field) -> bytes:
    """A byte string in the vectors: plain JSON string (ASCII) or {"hex": ...}."""
    if isinstance(field, str):
        return field.encode("ascii")
    return bytes.fromhex(field["hex"])


def bpairs(pairs):
    return [(b(k), b(v)) for k, v in pairs]


def encode_from_fields(vec) -> bytes:
    kind, rno, f = vec["kind"], vec["rno"], vec["fields"]
    if kind == "HELLO":
        return rlbproto.encode_hello(b(f["role"]), pid=f["pid"], software=b(f["software"]),
                                     version=f["version"])
    if kind == "RESUME":
        return rlbproto.encode_resume([(b(c), s) for c, s in f["entries"]])
    if kind == "KEEPALIVE":
        return rlbproto.encode_keepalive()
    if kind == "GOAWAY":
        return rlbproto.encode_goaway()
    if kind == "CHALLENGE":
        return rlbproto.encode_challenge(b(f["nonce"]))
    if kind == "PROOF":
        return rlbproto.encode_proof(b(f["proof"]))
    if kind == "REQUEST":
        return rlbproto.encode_request(rno, b(f["request_class"]), bpairs(f["environ"]))
    if kind == "REQUEST_BODY":
        return rlbproto.encode_request_body(rno, b(f["data"]))
    if kind == "REQUEST_END":
        return rlbproto.encode_request_end(rno)
    if kind == "CANCEL":
        return rlbproto.encode_cancel(rno)
    if kind == "RESPONSE":
        return rlbproto.encode_response(rno, b(f["status"]), bpairs(f["headers"]))
    if kind == "RESPONSE_BODY":
        return rlbproto.encode_response_body(rno, b(f["data"]))
    if kind == "RESPONSE_END":
        return rlbproto.encode_response_end(rno, f["outcome"])
    raise AssertionError(f"unknown kind {kind}")


def latin1_pairs(pairs):
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


class VectorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vectors = load_vectors()

    def check_frame(self, frame, vec):
        rno, kind, payload = frame
        f = vec["fields"]
        self.assertEqual(rlbproto.KIND_NAMES[kind], vec["kind"])
        self.assertEqual(rno, vec["rno"])
        name = vec["kind"]
        if name == "HELLO":
            h = rlbproto.parse_hello(payload)
            self.assertEqual(h["version"], f["version"])
            self.assertEqual(h["pid"], f["pid"])
            self.assertEqual(h["role"].encode("utf-8", "surrogateescape"), b(f["role"]))
            self.assertEqual(h["software"].encode("utf-8", "surrogateescape"), b(f["software"]))
        elif name == "RESUME":
            entries = rlbproto.parse_resume_entries(payload)
            want = [(b(c), s) for c, s in f["entries"]]
            self.assertEqual([c for c, _ in entries], [c for c, _ in want])
            for (_, got), (_, exp) in zip(entries, want):
                self.assertEqual(struct.pack(">d", got), struct.pack(">d", exp))
            as_dict = rlbproto.parse_resume(payload)
            self.assertEqual(as_dict, {c.decode("utf-8", "surrogateescape"): s for c, s in want})
        elif name == "REQUEST":
            cls, env = rlbproto.parse_request(payload)
            self.assertEqual(cls.encode("utf-8", "surrogateescape"), b(f["request_class"]))
            self.assertEqual(latin1_pairs(env), bpairs(f["environ"]))
        elif name == "RESPONSE":
            status, headers = rlbproto.parse_response(payload)
            self.assertEqual(status.encode("latin-1"), b(f["status"]))
            self.assertEqual(latin1_pairs(headers), bpairs(f["headers"]))
        elif name in ("REQUEST_BODY", "RESPONSE_BODY"):
            self.assertEqual(rlbproto.parse_body(payload, kind), b(f["data"]))
        elif name == "RESPONSE_END":
            self.assertEqual(rlbproto.parse_response_end(payload), f["outcome"])
        elif name == "CHALLENGE":
            self.assertEqual(rlbproto.parse_challenge(payload), b(f["nonce"]))
        elif name == "PROOF":
            self.assertEqual(rlbproto.parse_proof(payload), b(f["proof"]))
        else:
            self.assertIsNone(rlbproto.parse_empty(payload, kind))
            self.assertEqual(f, {})

    def test_link_proofs(self):
        self.assertGreaterEqual(len(self.vectors["link_proofs"]), 2)
        for vec in self.vectors["link_proofs"]:
            with self.subTest(vec["name"]):
                got = rlbproto.link_proof(b(vec["secret"]), vec["role"], b(vec["peer_nonce"]),
                                          b(vec["own_nonce"]))
                self.assertEqual(got.hex(), vec["proof"]["hex"])

    def test_every_kind_covered(self):
        kinds = {v["kind"] for v in self.vectors["valid"]}
        self.assertEqual(kinds, set(rlbproto.KINDS))

    def test_encode(self):
        for vec in self.vectors["valid"]:
            with self.subTest(vec["name"]):
                self.assertEqual(encode_from_fields(vec).hex(), vec["hex"])

    def test_decode_whole(self):
        for vec in self.vectors["valid"]:
            with self.subTest(vec["name"]):
                r = rlbproto.FrameReader()
                r.feed(bytes.fromhex(vec["hex"]))
                frame = r.next()
                self.assertIsNotNone(frame)
                self.check_frame(frame, vec)
                self.assertIsNone(r.next())
                self.assertEqual(r.buffered, 0)

    def test_decode_byte_at_a_time(self):
        for vec in self.vectors["valid"]:
            with self.subTest(vec["name"]):
                data = bytes.fromhex(vec["hex"])
                r = rlbproto.FrameReader()
                for i in range(len(data) - 1):
                    r.feed(data[i:i + 1])
                    self.assertIsNone(r.next())
                r.feed(data[-1:])
                self.check_frame(r.next(), vec)
                self.assertIsNone(r.next())

    def test_decode_concatenated(self):
        valid = self.vectors["valid"]
        stream = b"".join(bytes.fromhex(v["hex"]) for v in valid)
        r = rlbproto.FrameReader()
        r.feed(stream)
        frames = list(r)
        self.assertEqual(len(frames), len(valid))
        for frame, vec in zip(frames, valid):
            with self.subTest(vec["name"]):
                self.check_frame(frame, vec)
        decoded = rlbproto.decode_frames(stream)
        self.assertEqual([d[1] for d in decoded], [v["kind"] for v in valid])

    def test_malformed(self):
        for vec in self.vectors["malformed"]:
            with self.subTest(vec["name"]):
                data = bytes.fromhex(vec["hex"])
                r = rlbproto.FrameReader()
                r.feed(data)
                with self.assertRaises(rlbproto.ProtocolError) as cm:
                    frame = r.next()
                    self.assertIsNotNone(frame, "no error and no frame")
                    rlbproto.parse_payload(frame[1], frame[2])
                self.assertIn(vec["reason_contains"], str(cm.exception))


class RoundTripTest(unittest.TestCase):
    def test_random(self):
        rng = random.Random(20240601)

        def rb(n):
            return bytes(rng.getrandbits(8) for _ in range(n))

        for _ in range(50):
            rno = rng.randint(1, 2**32 - 1)
            env = [(rb(rng.randint(0, 20)), rb(rng.randint(0, 100)))
                   for _ in range(rng.randint(0, 30))]
            hdrs = [(rb(rng.randint(0, 20)), rb(rng.randint(0, 100)))
                    for _ in range(rng.randint(0, 20))]
            resume = [(rb(rng.randint(0, 30)), rng.uniform(0, 1e6)) for _ in range(rng.randint(0, 20))]
            cls = rb(rng.randint(0, 50))
            body = rb(rng.randint(1, 5000))
            status = b"%d %s" % (rng.randint(100, 599), rb(rng.randint(0, 20)))
            stream = (rlbproto.encode_hello("worker", pid=7) + rlbproto.encode_resume(resume) +
                      rlbproto.encode_request(rno, cls, env) +
                      rlbproto.encode_request_body(rno, body) + rlbproto.encode_request_end(rno) +
                      rlbproto.encode_response(rno, status, hdrs) +
                      rlbproto.encode_response_body(rno, body) +
                      rlbproto.encode_response_end(rno, "failed"))
            r = rlbproto.FrameReader()
            frames = []
            pos = 0
            while pos < len(stream):
                n = rng.randint(1, 700)
                r.feed(stream[pos:pos + n])
                pos += n
                frames.extend(r)
            self.assertEqual(len(frames), 8)
            self.assertEqual(rlbproto.parse_hello(frames[0][2])["role"], "worker")
            self.assertEqual(rlbproto.parse_resume_entries(frames[1][2]), resume)
            got_cls, got_env = rlbproto.parse_request(frames[2][2])
            self.assertEqual(got_cls.encode("utf-8", "surrogateescape"), cls)
            self.assertEqual(latin1_pairs(got_env), env)
            self.assertEqual(frames[3][2], body)
            got_status, got_hdrs = rlbproto.parse_response(frames[5][2])
            self.assertEqual(got_status.encode("latin-1"), status)
            self.assertEqual(latin1_pairs(got_hdrs), hdrs)
            self.assertEqual(rlbproto.parse_response_end(frames[7][2]), "failed")

    def test_str_environ_is_latin1(self):
        frame = rlbproto.encode_request(1, "café", {"QUERY_STRING": "q=caf\xe9", "X": b"\xff"})
        cls, env = rlbproto.parse_request(frame[9:])
        self.assertEqual(cls, "café")
        self.assertIn(b"q=caf\xe9", frame)
        self.assertIn("café".encode("utf-8"), frame)
        self.assertEqual(env, [("QUERY_STRING", "q=caf\xe9"), ("X", "\xff")])

    def test_limits(self):
        at = rlbproto.encode_response_body(1, b"x" * rlbproto.MAX_BODY_CHUNK)
        self.assertEqual(len(rlbproto.parse_body(at[9:])), rlbproto.MAX_BODY_CHUNK)
        over = rlbproto.encode_response_body(1, b"x" * (rlbproto.MAX_BODY_CHUNK + 1))
        with self.assertRaises(rlbproto.ProtocolError):
            rlbproto.parse_body(over[9:])
        env = [("K%d" % i, "") for i in range(rlbproto.MAX_ENVIRON_ENTRIES)]
        rlbproto.parse_request(rlbproto.encode_request(1, "c", env)[9:])
        with self.assertRaises(rlbproto.ProtocolError):
            rlbproto.parse_request(rlbproto.encode_request(1, "c", env + [("x", "")])[9:])
        big = [("NAME", "v" * (rlbproto.MAX_ENVIRON_BYTES - 4))]
        rlbproto.parse_request(rlbproto.encode_request(1, "c", big)[9:])
        with self.assertRaises(rlbproto.ProtocolError):
            rlbproto.parse_request(rlbproto.encode_request(1, "c", big + [("", "x")])[9:])
        hdrs = [("X-Big", "v" * (rlbproto.MAX_HEADER_BYTES - 6 - 5))]
        rlbproto.parse_response(rlbproto.encode_response(1, "200 OK", hdrs)[9:])
        with self.assertRaises(rlbproto.ProtocolError):
            rlbproto.parse_response(rlbproto.encode_response(1, "200 OKK", hdrs)[9:])
        # A header announcing 16 MiB is accepted but waits; one more byte is rejected.
        r = rlbproto.FrameReader()
        r.feed(struct.pack(">IIB", 1, rlbproto.MAX_PAYLOAD, rlbproto.RESPONSE_BODY))
        self.assertIsNone(r.next())
        self.assertEqual(r.buffered, 9)
        r = rlbproto.FrameReader()
        r.feed(struct.pack(">II", 1, rlbproto.MAX_PAYLOAD + 1))
        with self.assertRaises(rlbproto.ProtocolError):
            r.next()
        with self.assertRaises(rlbproto.ProtocolError):  # sticky
            r.next()

    def test_nonfinite_scores_rejected(self):
        for bad in (math.nan, math.inf, -math.inf):
            with self.assertRaises(rlbproto.ProtocolError):
                rlbproto.parse_resume(rlbproto.encode_resume({"x": bad})[9:])


class FakeWorker:
    """Accepts one connection, sends HELLO + RESUME, records what it receives and then
    sends `script` (bytes) once it has read `expect` frames."""

    def __init__(self, script: bytes, expect: int):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.script = script
        self.expect = expect
        self.received = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, _ = self.srv.accept()
        with conn:
            conn.sendall(rlbproto.encode_hello("worker", pid=99, software="fake") +
                         rlbproto.encode_resume({"/a": 0.875, "café": 2.0}))
            r = rlbproto.FrameReader()
            while len(self.received) < self.expect:
                data = conn.recv(65536)
                if not data:
                    break
                r.feed(data)
                self.received.extend(r)
            conn.sendall(self.script)
            conn.recv(1)  # until the client closes
        self.srv.close()


class ConnectionTest(unittest.TestCase):
    def test_interleaved_requests(self):
        script = (rlbproto.encode_response(2, "404 Not Found", [("A", "b")]) +
                  rlbproto.encode_response(1, "200 OK", [("Content-Type", "text/plain")]) +
                  rlbproto.encode_keepalive() +
                  rlbproto.encode_response_body(2, b"two") +
                  rlbproto.encode_response_body(1, b"one-") +
                  rlbproto.encode_response_end(2, "failed") +
                  rlbproto.encode_response_body(1, b"more") +
                  rlbproto.encode_response_end(1, "complete"))
        # HELLO, REQUEST+2 bodies+END, REQUEST+END, KEEPALIVE, CANCEL
        worker = FakeWorker(script, expect=9)
        with rlbproto.Connection("127.0.0.1", worker.port, timeout=5) as c:
            hello, resume = c.read_hello_and_resume()
            self.assertEqual(hello["role"], "worker")
            self.assertEqual(hello["pid"], 99)
            self.assertEqual(resume, {"/a": 0.875, "café": 2.0})
            c.send_request(1, "/a", {"PATH_INFO": "/a", "QUERY_STRING": "q=\xe9"},
                           body=b"x" * 10, chunk=6)
            c.send_request(2, "/b", {}, end=False)
            c.send_end(2)
            c.send_keepalive()
            c.send_cancel(3)
            status, headers, body, outcome = c.read_response(1)
            self.assertEqual((status, headers, body, outcome),
                             ("200 OK", [("Content-Type", "text/plain")], b"one-more", "complete"))
            status, headers, body, outcome = c.read_response(2)
            self.assertEqual((status, headers, body, outcome),
                             ("404 Not Found", [("A", "b")], b"two", "failed"))
            # The keep-alive read meanwhile is kept for read_frame.
            self.assertEqual(c.read_frame(), (0, "KEEPALIVE", None))
            with self.assertRaises(TimeoutError):
                c.read_frame(timeout=0.2)
        worker.thread.join(5)
        got = [(rno, rlbproto.KIND_NAMES[k], p) for rno, k, p in worker.received]
        self.assertEqual([g[1] for g in got],
                         ["HELLO", "REQUEST", "REQUEST_BODY", "REQUEST_BODY", "REQUEST_END",
                          "REQUEST", "REQUEST_END", "KEEPALIVE", "CANCEL"])
        self.assertEqual(rlbproto.parse_hello(got[0][2])["role"], "lb")
        self.assertEqual(rlbproto.parse_request(got[1][2]),
                         ("/a", [("PATH_INFO", "/a"), ("QUERY_STRING", "q=\xe9")]))
        self.assertEqual(got[2][2] + got[3][2], b"x" * 10)
        self.assertEqual(got[8][0], 3)

    def test_peer_close_is_connection_error(self):
        worker = FakeWorker(b"", expect=1)
        with rlbproto.Connection("127.0.0.1", worker.port, timeout=5) as c:
            c.read_hello_and_resume()
            c.sock.shutdown(socket.SHUT_WR)
            with self.assertRaises(ConnectionError):
                c.read_frame()
        worker.thread.join(5)


if __name__ == "__main__":
    unittest.main()
