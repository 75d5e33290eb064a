"""Tests of check_references.py: it must fail on a bad reference, pass on clean text, and
skip what is not source (build trees, .git, fuzzer corpora, binary files)."""

import os
import subprocess
import sys
import tempfile
import unittest

import check_references

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "check_references.py")
SECTION_SIGN = "\u00a7"


class CheckReferencesTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.name

    def write(self, rel, content, binary=False):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            f.write(content)
        return path

    def run_script(self):
        return subprocess.run([sys.executable, SCRIPT, self.root], capture_output=True,
                              text=True, timeout=60)

    def test_clean_tree_passes(self):
        self.write("zklb/pool.h", "// See docs/design.md, \"The résumé pool\".\n")
        self.write("docs/x.md", "Two Host headers are a 400 (RFC 9112, section 3.2).\n")
        # A ZooKeeper path that merely contains "shared/" is fine.
        self.write("tests/e2e/test_zk.py", 'zk.ensure_path("/abs/shared/providers")\n')
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_section_sign_fails(self):
        self.write("zklb/ok.h", "// fine\n")
        self.write("zklb/pool.h", "// line one\n// the algorithm of " + SECTION_SIGN + "3.4\n")
        r = self.run_script()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(os.path.join("zklb", "pool.h") + ":2: section sign", r.stdout)
        self.assertNotIn("ok.h", r.stdout)
        self.assertIn("docs/design.md", r.stderr)

    def test_paths_outside_the_repository_fail(self):
        bad = {
            "a.cc": "// see ../" + "shared/notes.md\n",
            "b.py": "# from /work/shared" + "/reference/x.md\n",
            "c.md": "Read the shared" + "/seed copy.\n",
            "d.txt": "zc-resumelb-" + "behaviour.md, part 3\n",
            "e.cmake": "# as in ZC.RESUMELB" + "-readme.rst\n",  # case-insensitive
        }
        for rel, content in bad.items():
            self.write(os.path.join("src", rel), content)
        r = self.run_script()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for rel in bad:
            self.assertIn(os.path.join("src", rel) + ":1:", r.stdout)
        self.assertEqual(len(r.stdout.splitlines()), len(bad))

    def test_skips_build_trees_git_corpora_and_binary_files(self):
        bad = "see " + SECTION_SIGN + "3\n"
        self.write("build/gen.h", bad)
        self.write("build-asan/x.cc", bad)
        self.write("out/CMakeCache.txt", "")
        self.write("out/gen.h", bad)
        self.write(".git/COMMIT_EDITMSG", bad)
        self.write("fuzz/corpus/fuzz_http_request/seed1", bad)
        self.write("tests/__pycache__/x.pyc", bad)
        self.write("bench/plot.png", b"\x89PNG\0\0" + bad.encode("utf-8"), binary=True)
        self.write("bench/latin1.dat", "caf\xe9 ".encode("latin-1") + bad.encode("utf-8"),
                   binary=True)
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_check_text_reports_line_numbers(self):
        found = list(check_references.check_text("a\nb " + SECTION_SIGN + "1\nc\n"))
        self.assertEqual([(n, line) for n, _, line in found], [(2, "b " + SECTION_SIGN + "1")])

    def test_this_repository_passes(self):
        root = os.path.normpath(os.path.join(HERE, "..", ".."))
        self.assertEqual(check_references.check_tree(root), [])


if __name__ == "__main__":
    unittest.main()
