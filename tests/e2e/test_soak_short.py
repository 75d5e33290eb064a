"""The soak test (tests/soak/soak.py) in short mode: 30 s of mixed traffic through a
resumelb and 4 zkworkers with worker restarts (SIGTERM and a SIGKILL); every verdict must
pass (no lost idempotent request, no unexcused error, no corrupt body, flat RSS, fds back
to baseline, no temp file left, clean exits). The full run is
`/usr/bin/python3 tests/soak/soak.py --minutes 30 --out DIR` (docs/reliability.md)."""

import json
import os
import subprocess
import sys
import time
import unittest

import harness

SOAK = os.path.join(harness.SOURCE_DIR, "tests", "soak", "soak.py")
sys.path.insert(0, os.path.dirname(SOAK))
import soak  # noqa: E402  (for its verdict functions)


class SoakShortTest(harness.E2ETestCase):

    def test_short_soak_passes_every_verdict(self):
        out = self.sandbox.mkdir("soak")
        t0 = time.monotonic()
        r = subprocess.run([harness.PYTHON, SOAK, "--minutes", "0.5", "--out", out],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "RLB_BUILD_DIR": harness.build_dir()})
        elapsed = time.monotonic() - t0
        summary_path = os.path.join(out, "summary.json")
        if not os.path.exists(summary_path):
            self.fail(f"no summary (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        with open(summary_path) as f:
            doc = json.load(f)
        failed = {k: v for k, v in doc["verdicts"].items() if not v["pass"]}
        if failed or r.returncode != 0:
            sys.stderr.write(r.stdout[-6000:] + r.stderr[-3000:])
            for f in doc.get("unexcused_failures", [])[:20]:
                sys.stderr.write(f"unexcused: {f}\n")
        self.assertEqual(failed, {})
        self.assertEqual(r.returncode, 0)
        self.assertLess(elapsed, 60)
        # It really exercised what it claims.
        req = doc["requests"]
        self.assertGreater(req["total"], 300, req)
        for kind in ("hello", "cache", "sleep", "post_small", "download", "upload",
                     "slow_client", "slow_upload", "cancel"):
            self.assertGreater(sum(req["by_kind"].get(kind, {}).values()), 0, kind)
        self.assertGreaterEqual(doc["restarts"]["sigterm"], 2, doc["restarts"])
        self.assertGreaterEqual(doc["restarts"]["sigkill"], 1, doc["restarts"])
        self.assertGreaterEqual(len(doc["samples"]), 10)


class SoakVerdictTest(unittest.TestCase):
    """The RSS verdict itself can fail: steady growth is caught, plateaus are not; under
    ASan the numbers are reported but not judged (LSan's exit code covers leaks)."""

    def flat(self, values, duration, asan=None):
        env = dict(os.environ)
        env.pop("ASAN_OPTIONS", None)
        if asan is not None:
            env["ASAN_OPTIONS"] = asan
        old = os.environ.copy()
        os.environ.clear()
        os.environ.update(env)
        try:
            step = duration / (len(values) - 1)
            return soak.flatness([(i * step, v) for i, v in enumerate(values)], duration)
        finally:
            os.environ.clear()
            os.environ.update(old)

    def test_long_run_leak_fails_plateau_passes(self):
        leak = [20000 + 100 * i for i in range(100)]          # +50 % over the second half
        self.assertFalse(self.flat(leak, 1800)["pass"])
        plateau = [20000 + min(i, 10) * 900 for i in range(100)]  # warm-up, then flat
        self.assertTrue(self.flat(plateau, 1800)["pass"])

    def test_short_run_only_catches_gross_growth(self):
        self.assertTrue(self.flat([20000 + 60 * i for i in range(30)], 30)["pass"])
        self.assertFalse(self.flat([10000 + 2000 * i for i in range(30)], 30)["pass"])

    def test_not_judged_under_asan(self):
        grow = [50000 + 10000 * i for i in range(30)]   # ASan's quarantine filling
        plain = self.flat(grow, 30)
        self.assertFalse(plain["pass"])
        self.assertTrue(plain["judged"])
        asan = self.flat(grow, 30, asan="detect_leaks=1")
        self.assertTrue(asan["pass"])
        self.assertFalse(asan["judged"])
        self.assertEqual(asan["growth_kb"], plain["growth_kb"])  # still reported


if __name__ == "__main__":
    unittest.main()
