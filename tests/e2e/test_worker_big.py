"""zkworker end to end: 50 MB bodies in both directions arrive intact (hash-compared)."""

import os
import unittest

import harness
from harness import big_sha256, request, sha256

SIZE = 50 << 20
TIMEOUT = 120


class BigBodyTest(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        sb = cls.class_sandbox()
        cls.tmpdir = sb.mkdir("tmp")
        cls.worker, cls.port = sb.start_worker(threads=2, env={"TMPDIR": cls.tmpdir})

    def test_50mb_request_body(self):
        # Random, so a misplaced or duplicated chunk changes the hash.
        body = os.urandom(SIZE)
        conn = self.connect(self.port, timeout=TIMEOUT)
        r = request(conn, 1, "/echo", method="POST", body=body, timeout=TIMEOUT)
        self.assertComplete(r)
        n, digest, _ = r.body.split()
        self.assertEqual(int(n), SIZE)
        self.assertEqual(digest.decode(), sha256(body))
        self.assertEqual(os.listdir(self.tmpdir), [])

    def test_50mb_response_body(self):
        conn = self.connect(self.port, timeout=TIMEOUT)
        r = request(conn, 1, f"/big?size={SIZE}", timeout=TIMEOUT)
        self.assertComplete(r)
        self.assertEqual(len(r.body), SIZE)
        self.assertEqual(sha256(r.body), big_sha256(SIZE))

    def test_large_response_with_odd_chunks_while_another_request_runs(self):
        # A 5 MB response in odd-sized chunks interleaved with small requests.
        size = 5 * 1000 * 1000 + 7
        conn = self.connect(self.port, timeout=TIMEOUT)
        conn.send_request(1, "/big", harness.environ("/big", query=f"size={size}&chunk=99991"))
        for rno in range(2, 6):
            self.assertComplete(request(conn, rno, "/hello", timeout=TIMEOUT))
        status, _, body, outcome = conn.read_response(1, timeout=TIMEOUT)
        self.assertEqual((status, outcome), ("200 OK", "complete"))
        self.assertEqual(sha256(body), big_sha256(size, 99991))


if __name__ == "__main__":
    unittest.main()
