"""zkworker end to end: the operator's commands (issue 14).

--version prints zkworker's version and the versions of the libraries it runs on.
"""

import unittest

import harness


class VersionTest(harness.E2ETestCase):

    def test_version_names_the_program_and_its_libraries(self):
        r = harness.run_command([harness.binary("zkworker"), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^zkworker \d+\.\d+\.\d+\n")
        for lib in ("libuv", "ZooKeeper C client", "Python"):
            self.assertRegex(r.stdout, rf"(?m)^{lib} \d+\.\d+\.\d+$")
        self.assertEqual(len(r.stdout.splitlines()), 4, r.stdout)
        # The project version is the LB's: one source (common/version.h).
        lb = harness.run_command([harness.binary("resumelb"), "--version"])
        self.assertEqual(lb.stdout.splitlines()[0].split()[1], r.stdout.split()[1])


if __name__ == "__main__":
    unittest.main()
