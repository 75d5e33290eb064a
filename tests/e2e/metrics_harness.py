"""Helpers for the tests of the admin listeners (--admin_address of resumelb, zkresumelb
and zkworker): find the listener's port in the log, GET a page with a real HTTP client,
parse the Prometheus text format and have promtool check it."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import unittest

import harness

# The line every program logs once its admin listener is bound.
ADMIN_RE = r"admin listener on (?P<host>\S*):(?P<port>\d+) "


def admin_get(port, path, method="GET"):
    """(status, {lower-case header: value}, body) of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.DEFAULT_TIMEOUT)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of the text format's samples."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def assert_promtool_clean(test: unittest.TestCase, text: str) -> None:
    """`promtool check metrics` accepts `text` without a lint finding (the test is skipped
    when promtool, from Debian's prometheus package, is not installed)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        test.skipTest("promtool is not installed (Debian package prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
    test.assertEqual(check.returncode, 0, check.stdout + check.stderr)
    test.assertEqual(check.stdout.strip() + check.stderr.strip(), "",
                     "promtool's lint findings")
