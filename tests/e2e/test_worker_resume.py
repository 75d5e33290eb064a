"""zkworker end to end: the résumé (scores, when it is sent, pruning, the résumé file) and
get-worker-resume.

Expected scores come from the original's formula (docs/design.md, "The worker's résumé"),
modelled below. The worker measures each request's elapsed time itself, which is at least
the /sleep duration and at most that plus scheduling noise (SLACK); since a class's score
only falls as its elapsed times grow, the model run with `dur` gives an upper bound and
with `dur + SLACK` a lower bound.
"""

import json
import os
import unittest

import harness
from harness import request

SLACK = float(os.environ.get("RLB_E2E_TIMING_SLACK", "0.25"))


class ResumeModel:
    """The résumé formula of zc.resumelb's worker (docs/design.md, "The worker's résumé"),
    with zkworker's loading rule (a saved score s counts as `history` requests at rate s)."""

    def __init__(self, history, max_skill_age=None):
        self.history = history
        self.max_skill_age = max_skill_age or 10 * history
        self.decay = 1 - 1.0 / history
        self.generation = 0
        self.perf = {}

    def load(self, saved):
        for cls, score in saved.items():
            if score > 0:
                self.perf[cls] = (0, self.history / score, float(self.history))

    def record(self, cls, elapsed):
        gen = self.generation + 1
        rgen, rtime, rcount = self.perf.get(cls, (gen, 0.0, 0.0))
        f = self.decay ** (gen - rgen)
        self.perf[cls] = (gen, rtime * f + elapsed, rcount * f + 1)
        self.generation = gen
        if gen % self.history == 0:
            min_gen = gen - self.max_skill_age
            self.perf = {c: v for c, v in self.perf.items() if v[0] >= min_gen}
            return True
        return False

    def scores(self):
        return {c: count / t for c, (_, t, count) in self.perf.items()}


def bounds(history, requests, saved=None, max_skill_age=None):
    """requests: [(class, minimal elapsed)] -> {class: (low, high)}."""
    hi, lo = ResumeModel(history, max_skill_age), ResumeModel(history, max_skill_age)
    for m in (hi, lo):
        if saved:
            m.load(saved)
    for cls, dur in requests:
        hi.record(cls, dur)
        lo.record(cls, dur + SLACK)
    h, low = hi.scores(), lo.scores()
    return {c: (low[c], h[c]) for c in h}


class ResumeTestCase(harness.E2ETestCase):

    def assertScoresWithin(self, resume, expected):
        self.assertEqual(sorted(resume), sorted(expected), resume)
        for cls, (low, high) in expected.items():
            self.assertTrue(low * 0.999 <= resume[cls] <= high * 1.001,
                            f"score of {cls!r} is {resume[cls]}, expected in [{low}, {high}]")

    def next_resume(self, conn, timeout=20):
        """Reads up to the next RESUME; asserts no other RESUME was skipped on the way."""
        (_, _, resume), _ = harness.drain_until(conn, lambda f: f[1] == "RESUME", timeout)
        return resume

    def sleep(self, conn, rno, dur, rclass="test"):
        r = request(conn, rno, f"/sleep?dur={dur}", rclass=rclass)
        self.assertComplete(r, 200, b"slept\n")

    def read_json(self, path):
        with open(path) as f:
            return json.load(f)


class ScoreTest(ResumeTestCase):

    def test_decay_0_vectors(self):
        # history=1 (decay 0): elapsed ~1.0 -> {'test': ~1.0}; then ~2.0 -> {'test': ~0.5}.
        worker, port = self.start_worker(extra_args=["--history=1"])
        conn = self.connect(port)
        self.assertEqual(conn.first_resume, {})
        self.sleep(conn, 1, 1.0)
        self.assertScoresWithin(self.next_resume(conn), {"test": (1 / (1 + SLACK), 1.0)})
        self.sleep(conn, 2, 2.0)
        self.assertScoresWithin(self.next_resume(conn), {"test": (1 / (2 + SLACK), 0.5)})

    def test_decay_half(self):
        # history=2 (decay 0.5): elapsed 0.5 then 0.125 -> 1.5 / (0.5 * 0.5 + 0.125) = 4.0.
        worker, port = self.start_worker(extra_args=["--history=2"])
        conn = self.connect(port)
        self.sleep(conn, 1, 0.5)
        self.sleep(conn, 2, 0.125)
        expected = bounds(2, [("test", 0.5), ("test", 0.125)])
        self.assertAlmostEqual(expected["test"][1], 4.0)
        self.assertScoresWithin(self.next_resume(conn), expected)

    def test_several_classes_sent_every_history_requests_to_every_lb(self):
        # history=5 with classes '', '1', '2': one résumé after the 5th request, to both LBs;
        # fast requests score > 10, a 0.11 s one < 10.
        worker, port = self.start_worker(extra_args=["--history=5"])
        a = self.connect(port)
        b = self.connect(port)
        plan = [("", "/hello"), ("1", "/hello"), ("2", "/sleep?dur=0.11"), ("", "/hello"),
                ("1", "/hello")]
        for rno, (rclass, url) in enumerate(plan, 1):
            self.assertComplete(request(a, rno, url, rclass=rclass))
        for conn in (a, b):
            (_, _, resume), before = harness.drain_until(conn, lambda f: f[1] == "RESUME")
            self.assertEqual([f for f in before if f[1] == "RESUME"], [])
            self.assertEqual(sorted(resume), ["", "1", "2"])
            self.assertTrue(all(isinstance(v, float) for v in resume.values()))
            self.assertGreater(resume[""], 10)
            self.assertGreater(resume["1"], 10)
            self.assertLess(resume["2"], 10)
            self.assertLessEqual(resume["2"], 1 / 0.11 * 1.001)
        # Nothing else was queued (in particular no résumé for requests 1-4).
        self.assertEqual(harness.keepalive_roundtrip(b), [])
        # The next send is after 5 more requests, not before.
        for rno in range(6, 10):
            self.assertComplete(request(a, rno, "/hello", rclass="1"))
        self.assertEqual([f for f in harness.keepalive_roundtrip(b) if f[1] == "RESUME"], [])
        self.assertComplete(request(a, 10, "/hello", rclass="1"))
        self.assertEqual(sorted(self.next_resume(b)), ["", "1", "2"])

    def test_thread_wait_is_not_counted(self):
        # threads=1, history=2: two concurrent 0.1 s requests are serialised; counting the
        # wait for the thread would give 1.5 / (0.05 + 0.2) = 6 < 7.
        worker, port = self.start_worker(threads=1, extra_args=["--history=2"])
        conn = self.connect(port)
        for rno in (1, 2):
            conn.send_request(rno, "test", harness.environ("/sleep", query="dur=0.1"))
        for rno in (1, 2):
            self.assertEqual(conn.read_response(rno)[3], "complete")
        resume = self.next_resume(conn)
        self.assertGreater(resume["test"], 7.0)
        self.assertLessEqual(resume["test"], 10.0 * 1.001)

    def test_new_connection_gets_the_current_resume(self):
        worker, port = self.start_worker(extra_args=["--history=100"])
        conn = self.connect(port)
        self.sleep(conn, 1, 0.2)
        later = self.connect(port)
        self.assertScoresWithin(later.first_resume, bounds(100, [("test", 0.2)]))


class ResumeFileTest(ResumeTestCase):

    def test_pruning_by_max_skill_age(self):
        # history=2, max_skill_age=3, a file holding {a, b}: after 2 requests the keys are
        # [a, b, test] (and the file matches), after 2 more [test].
        path = self.sandbox.write("resume.json", json.dumps({"a": 1.0, "b": 2.0}))
        worker, port = self.start_worker(extra_args=["--history=2", "--max_skill_age=3",
                                                     f"--resume_file={path}"])
        conn = self.connect(port)
        self.assertEqual(conn.first_resume, {"a": 1.0, "b": 2.0})
        self.sleep(conn, 1, 0.01)
        self.sleep(conn, 2, 0.01)
        resume = self.next_resume(conn)
        self.assertEqual(sorted(resume), ["a", "b", "test"])
        self.assertEqual((resume["a"], resume["b"]), (1.0, 2.0))
        harness.wait_for(lambda: sorted(self.read_json(path)) == ["a", "b", "test"], 5,
                         message="the résumé file to hold a, b, test")
        self.assertEqual(self.read_json(path), resume)
        self.sleep(conn, 3, 0.01)
        self.sleep(conn, 4, 0.01)
        resume = self.next_resume(conn)
        self.assertEqual(sorted(resume), ["test"])
        harness.wait_for(lambda: sorted(self.read_json(path)) == ["test"], 5,
                         message="the résumé file to hold only test")
        self.assertEqual(self.read_json(path), resume)

    def test_reloaded_class_keeps_its_saved_score(self):
        # A saved score s is worth `history` requests at rate s: one more request at that
        # rate leaves it at s (the original would jump to about history * s).
        path = self.sandbox.write("resume.json", json.dumps({"test": 4.0, "other": 3.0}))
        worker, port = self.start_worker(extra_args=["--history=10", f"--resume_file={path}"])
        conn = self.connect(port)
        self.assertEqual(conn.first_resume, {"test": 4.0, "other": 3.0})
        self.sleep(conn, 1, 0.25)
        expected = bounds(10, [("test", 0.25)], saved={"test": 4.0, "other": 3.0})
        self.assertAlmostEqual(expected["test"][1], 4.0)
        later = self.connect(port)
        self.assertScoresWithin(later.first_resume, expected)
        self.assertEqual(later.first_resume["other"], 3.0)

    def test_round_trip_through_shutdown_and_restart(self):
        path = self.sandbox.path("state", "resume.json")
        os.makedirs(os.path.dirname(path))
        worker, port = self.start_worker(extra_args=["--history=2", f"--resume_file={path}"])
        conn = self.connect(port)
        self.assertEqual(conn.first_resume, {})  # no file yet: empty, no complaint
        self.assertEqual(worker.log_lines(r"^[WE]"), [])
        self.sleep(conn, 1, 0.05)
        self.sleep(conn, 2, 0.05, rclass="c2")
        resume = self.next_resume(conn)
        harness.wait_for(lambda: os.path.exists(path), 5, message="the résumé file")
        saved = self.read_json(path)
        self.assertIsInstance(saved, dict)
        self.assertEqual(saved, resume)
        self.sleep(conn, 3, 0.05, rclass="c3")  # not sent yet, but saved at shutdown
        conn.close()
        self.assertEqual(worker.stop(), 0)
        saved = self.read_json(path)
        self.assertEqual(sorted(saved), ["c2", "c3", "test"])
        self.assertEqual(saved["test"], resume["test"])
        self.assertEqual([f for f in os.listdir(os.path.dirname(path))], ["resume.json"])
        worker2, port2 = self.start_worker(extra_args=["--history=2", f"--resume_file={path}"],
                                           name="zkworker-restarted")
        reloaded = self.connect(port2).first_resume
        self.assertEqual(sorted(reloaded), sorted(saved))
        for cls, score in saved.items():
            # zkworker recomputes a loaded score as history / (history / s), which may be
            # off by an ulp (reported); anything more is a real change of score.
            self.assertAlmostEqual(reloaded[cls], score, delta=abs(score) * 1e-12, msg=cls)

    def test_corrupt_file_warns_once_and_starts_empty(self):
        for i, text in enumerate(["not json {", "[1, 2]", '{"a": "fast"}', ""]):
            with self.subTest(text=text):
                path = self.sandbox.write(f"resume{i}.json", text)
                worker, port = self.start_worker(extra_args=["--history=1",
                                                             f"--resume_file={path}"])
                conn = self.connect(port)
                self.assertEqual(conn.first_resume, {})
                self.assertComplete(request(conn, 1, "/hello", rclass="h"))
                self.assertEqual(sorted(self.next_resume(conn)), ["h"])
                warnings = worker.log_lines(r"^[WE]")
                self.assertEqual(len(warnings), 1, worker.output())
                self.assertIn(path, warnings[0])
                # The next save replaces it with a valid file.
                harness.wait_for(lambda: sorted(self.read_json(path)) == ["h"], 5)
                self.assertEqual(worker.stop(), 0)


class GetWorkerResumeTest(ResumeTestCase):

    def test_prints_address_then_sorted_json(self):
        path = self.sandbox.write("resume.json", json.dumps({"b": 2.0, "a": 1.5, "c": 0.25,
                                                             "/x y": 4.0}))
        worker, port = self.start_worker(extra_args=[f"--resume_file={path}"])
        addr = f"127.0.0.1:{port}"
        res = harness.run_command([harness.binary("get-worker-resume"), addr])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stderr, "")
        lines = res.stdout.splitlines()
        self.assertEqual(len(lines), 2, res.stdout)
        self.assertEqual(lines[0], addr)
        pairs = json.loads(lines[1], object_pairs_hook=list)
        self.assertEqual(pairs, [("/x y", 4.0), ("a", 1.5), ("b", 2.0), ("c", 0.25)])

    def test_dead_address(self):
        addr = f"127.0.0.1:{harness.free_port()}"
        res = harness.run_command([harness.binary("get-worker-resume"), addr])
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(res.stdout, "")
        lines = res.stderr.splitlines()
        self.assertEqual(len(lines), 1, res.stderr)
        self.assertIn(addr, lines[0])

    def test_live_and_dead(self):
        worker, port = self.start_worker()
        live, dead = f"127.0.0.1:{port}", f"127.0.0.1:{harness.free_port()}"
        res = harness.run_command([harness.binary("get-worker-resume"), dead, live])
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(res.stdout.splitlines(), [live, "{}"])
        self.assertEqual(len(res.stderr.splitlines()), 1, res.stderr)
        self.assertIn(dead, res.stderr)


if __name__ == "__main__":
    unittest.main()
