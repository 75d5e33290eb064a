"""A headless Chromium driven over the DevTools protocol (--remote-debugging-pipe), with
only the standard library: for the end-to-end tests of the LB's status page.

    with HeadlessBrowser() as browser:        # raises unittest.SkipTest without chromium
        page = browser.open("http://127.0.0.1:PORT/")
        page.evaluate("document.title")
        browser.errors                          # console errors and uncaught exceptions

The pipe carries JSON messages ended by a NUL byte: the browser reads fd 3, writes fd 4.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from typing import Optional

import harness


def chromium_binary() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    def __init__(self, browser: "HeadlessBrowser", session: str):
        self.browser = browser
        self.session = session

    def call(self, method: str, params: Optional[dict] = None) -> dict:
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression: str):
        """The expression's value (JSON-serialisable), evaluated in the page."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression!r} raised: {reply['exceptionDetails']}")
        return reply["result"].get("value")


class HeadlessBrowser:
    def __init__(self, timeout: float = harness.DEFAULT_TIMEOUT):
        binary = chromium_binary()
        if binary is None:
            raise unittest.SkipTest("chromium is not installed (Debian package chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="rlb-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Copies above 4 first, so that placing them at 3 and 4 cannot clobber one another.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

        def place_fds():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.stderr_path = os.path.join(self.profile, "stderr.log")
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [binary, "--headless", "--no-sandbox", "--disable-gpu",
                 "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-dev-shm-usage", "about:blank"],
                preexec_fn=place_fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
        self.writer = os.fdopen(to_browser_w, "wb")
        self.reader_fd = from_browser_r
        self.next_id = 0
        self.replies: dict[int, dict] = {}
        self.errors: list[str] = []      # console errors, exceptions, failed loads
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    # -- the pipe --
    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self.reader_fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += data
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(raw))

    def _dispatch(self, msg: dict):
        with self.cond:
            if "id" in msg:
                self.replies[msg["id"]] = msg
                self.cond.notify_all()
                return
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.errors.append("console: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                self.errors.append("exception: " + str(
                    details.get("exception", {}).get("description") or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} "
                                   f"{entry.get('url', '')}")

    def call(self, method: str, params: Optional[dict] = None,
             session: Optional[str] = None) -> dict:
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.writer.write(json.dumps(msg).encode() + b"\0")
        self.writer.flush()
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise AssertionError(f"no answer to {method} from chromium "
                                         f"(stderr: {harness.read_text(self.stderr_path)[-2000:]})")
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    # -- pages --
    def open(self, url: str) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Runtime", "Log", "Page"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", {"url": url})
        return page

    def close(self):
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            harness.kill_group(self.proc)
        try:
            self.writer.close()
        except OSError:
            pass
        self.thread.join(timeout=5)
        try:
            os.close(self.reader_fd)
        except OSError:
            pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
