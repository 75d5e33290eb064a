"""zkworker end to end: the operator's commands, --version and --check (issue 14).

--version prints zkworker's version and the versions of the libraries it runs on.
--check imports the application as serving would and exits: 0 when it loads, 1 when its
import fails (the Python traceback on stderr), 2 for options it refuses; it binds no port,
contacts no ZooKeeper and starts no process.
"""

import re
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


class CheckTest(harness.E2ETestCase):

    def check(self, *args):
        r = harness.run_command([harness.binary("zkworker"), "--check", *args],
                                cwd=self.sandbox.dir)
        self.assertNotIn("listening", r.stdout + r.stderr)
        return r

    def app_args(self, app="plain_app:application", port=0, *extra):
        return [f"--app={app}", f"--address=127.0.0.1:{port}",
                f"--pythonpath={harness.APPS_DIR}:{self.sandbox.dir}", *extra]

    def broken_module(self):
        self.sandbox.write("broken_app.py",
                           "import os\n\n\ndef helper():\n"
                           "    raise RuntimeError('broken at import: no database')\n\n\n"
                           "helper()\n\n\ndef application(environ, start_response):\n"
                           "    pass\n")

    def test_a_good_app_is_ok_and_binds_nothing(self):
        port = harness.free_port()
        r = self.check(*self.app_args(port=port))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertTrue(harness.port_refuses(port))

    def test_a_good_paste_deploy_file_is_ok(self):
        port = harness.free_port()
        ini = self.sandbox.write(
            "good.ini", "[app:main]\nuse = call:plain_app:make_app\n\n[server:main]\n"
                        f"use = egg:zc.resumelb\naddress = 127.0.0.1:{port}\n"
                        f"pythonpath = {harness.APPS_DIR}\n")
        r = self.check(ini)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(harness.port_refuses(port))

    def test_zookeeper_mode_and_processes_start_nothing(self):
        # Nothing listens at the ZooKeeper address: a worker that tried to register would
        # wait for it and fail; --check does not contact it.
        zk_port = harness.free_port()
        port = harness.free_port()
        r = self.check(*self.app_args(port=port), f"--zookeeper=127.0.0.1:{zk_port}",
                       "--path=/lb/workers")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check(*self.app_args(port=port), "--processes=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(harness.port_refuses(port))
        self.assertTrue(harness.port_refuses(port + 1))

    def test_an_app_that_raises_at_import_fails_with_its_traceback(self):
        self.broken_module()
        r = self.check(*self.app_args(app="broken_app:application"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Traceback (most recent call last):", r.stderr)
        # The frames of the application's own code, then the exception, then one error line.
        self.assertRegex(r.stderr, r'File ".*broken_app\.py", line 5, in helper')
        self.assertRegex(r.stderr, r'File ".*broken_app\.py", line 8, in <module>')
        self.assertIn("RuntimeError: broken at import: no database\n", r.stderr)
        self.assertRegex(r.stderr.splitlines()[-1],
                         r"^zkworker: error: cannot load app 'broken_app:application': "
                         r"RuntimeError: broken at import: no database$")
        self.assertEqual(r.stdout, "")

    def test_a_broken_paste_deploy_app_fails_with_its_traceback(self):
        self.broken_module()
        self.sandbox.write("broken_factory.py", "import broken_app\n\n\n"
                                                "def make_app(global_conf, **local):\n"
                                                "    return broken_app.application\n")
        ini = self.sandbox.write(
            "broken.ini", "[app:main]\nuse = call:broken_factory:make_app\n\n[server:main]\n"
                          "use = egg:zc.resumelb\naddress = 127.0.0.1:0\n"
                          "pythonpath = %(here)s\n")
        r = self.check(ini)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Traceback (most recent call last):", r.stderr)
        self.assertRegex(r.stderr, r'File ".*broken_factory\.py", line 1, in <module>')
        self.assertRegex(r.stderr, r'File ".*broken_app\.py", line 5, in helper')
        self.assertRegex(r.stderr.splitlines()[-1],
                         r"^zkworker: error: cannot load \[app:main\] of .*broken\.ini: "
                         r"RuntimeError: broken at import: no database$")

    def test_a_missing_module_fails(self):
        r = self.check(*self.app_args(app="no_such_module_xyz:application"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("ModuleNotFoundError: No module named 'no_such_module_xyz'", r.stderr)

    def test_bad_options_exit_2_without_importing(self):
        # The broken app is named: a refused command line never gets to the import.
        self.broken_module()
        for bad in (["--no_such_flag=1"], ["--nosuch_bool"], ["--threads=-1"],
                    ["--address=nonsense"], ["--zookeeper=127.0.0.1:1"],
                    ["--harakiri=5"]):
            args = self.app_args("broken_app:application")
            if bad[0].startswith("--address"):
                args = [a for a in args if not a.startswith("--address")]
            r = self.check(*args, *bad)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertNotIn("Traceback", r.stderr, bad)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, (bad, r.stderr))
            self.assertTrue(re.match(r"^zkworker: error: ", lines[0]), (bad, lines))
        r = self.check(*self.app_args(), "--no_such_flag=1")
        self.assertIn("no_such_flag", r.stderr)


if __name__ == "__main__":
    unittest.main()
