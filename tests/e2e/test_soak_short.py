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


if __name__ == "__main__":
    unittest.main()
