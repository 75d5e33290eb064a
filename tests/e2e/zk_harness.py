"""A throwaway ZooKeeper 3.8 server (and kazoo clients) for resumelb's end-to-end tests.

Run with Debian's /usr/bin/python3 (python3-kazoo, installed by deploy/install-deps.sh).

* ``ZooKeeperServer`` runs a standalone ZooKeeper (Debian's ``zookeeper`` package, started
  directly with ``java``) on 127.0.0.1 in a private temp dir:

      zk = ZooKeeperServer()
      zk.start()                      # free port; waits until `srvr` says Mode: standalone
      zk.connection_string            # "127.0.0.1:PORT"
      zk.set_json("/lb", {"variance": 2.0})
      zk.wait_for_children("/lb/workers/providers", lambda c: len(c) == 3)
      zk.stop(); zk.restart(); zk.kill()
      zk.cleanup()                    # stops the JVM, closes clients, removes the dir

  From unittest: ``cls.zk = ZooKeeperServer(); cls.addClassCleanup(cls.zk.cleanup);
  cls.zk.start()`` in setUpClass (or ``ZooKeeperTestCase`` below). Every server started
  here is also killed at interpreter exit (atexit) and, on Linux, when this process dies
  (PR_SET_PDEATHSIG), so no JVM outlives the test run.

* ``ZooKeeperEnsemble(3)`` runs three such servers as one ensemble (``.servers``,
  ``.leader()``, ``.connection_string`` naming all three, the same tree helpers).

* Readiness is probed with the ``srvr`` four-letter word, not ``ruok`` (which says imok
  before the server serves). Every probe has a socket timeout (ZooKeeper 3.8.0 can leave a
  four-letter-word connection open forever after a startup race).

* Session expiry:
  - ``expire_session(kazoo_client)`` (or a ``(session_id, password)`` pair plus
    ``hosts=``) expires a session the kazoo way: a second client attaches to the same
    session and closes it. The server drops the session and its ephemeral nodes at once,
    and the first client sees SESSION_EXPIRED when it next talks to the server.
  - Another process's session (zkresumelb, zkworker: the C client) cannot be expired
    from outside without its password. Instead freeze the process for longer than its
    session timeout: ``pause_process(pid, seconds)`` (SIGSTOP, sleep, SIGCONT). The
    negotiated timeout of every connection is in ``zk.sessions()`` (field ``to``, ms);
    the server clamps it to [2, 20] × tickTime (``ZooKeeperServer(tick_time=...)``).
    ``wait_session_gone(zk, session_id)`` waits until the server has expired it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import DEFAULT_TIMEOUT, WaitTimeout, free_port, wait_for  # noqa: E402,F401

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError, NodeExistsError
    from kazoo.retry import KazooRetry
    HAVE_KAZOO = True
except ImportError:  # pragma: no cover - reported by require_kazoo()
    KazooClient = None
    HAVE_KAZOO = False

JAVA = os.environ.get("RLB_JAVA", "/usr/bin/java")
ZK_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-log4j12.jar",
           "/usr/share/java/log4j-1.2.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
START_TIMEOUT = float(os.environ.get("RLB_ZK_START_TIMEOUT", max(30.0, DEFAULT_TIMEOUT)))
PROBE_TIMEOUT = 1.0

# Kazoo logs every lost connection at WARNING with a traceback; tests stop servers on
# purpose, so keep it to errors unless asked (RLB_ZK_DEBUG=1).
if not os.environ.get("RLB_ZK_DEBUG"):
    logging.getLogger("kazoo").setLevel(logging.ERROR)


def require_kazoo() -> None:
    if not HAVE_KAZOO:
        raise unittest.SkipTest("python3-kazoo is not installed (deploy/install-deps.sh)")


def zookeeper_available() -> Optional[str]:
    """None if a ZooKeeper server can be started here, else the reason it cannot."""
    if not os.access(JAVA, os.X_OK):
        return f"{JAVA} not found (apt-get install default-jre-headless)"
    for jar in ZK_JARS:
        if not os.path.exists(jar):
            return f"{jar} not found (apt-get install zookeeper)"
    return None


# --------------------------------------------------------------------------- processes

def process_state(pid: int) -> Optional[str]:
    """The state letter from /proc/PID/stat ('R', 'S', 'T', 'Z', ...), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) S ..." - comm may contain spaces and parentheses.
    return stat[stat.rfind(")") + 2:][:1] or None


def process_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (kill -0 is true for zombies)."""
    return process_state(pid) not in (None, "Z", "X")


def pause_process(pid: int, seconds: float) -> None:
    """Freezes a process (SIGSTOP) for `seconds`, then resumes it (SIGCONT), even if
    interrupted. Freezing a ZooKeeper client for longer than its session timeout makes the
    server expire its session (its ephemeral nodes vanish); on SIGCONT the client finds
    its session expired."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def paused(pid: int):
    """``with paused(pid): ...`` - the process is stopped inside the block."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


try:  # looked up here, not in the forked child (no dlopen between fork and exec)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the thread that started it exits
    (PR_SET_PDEATHSIG), so a JVM never outlives a test run killed with SIGKILL."""
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)


# --------------------------------------------------------------------------- four-letter words

def four_letter_word(port: int, cmd: str, host: str = "127.0.0.1",
                     timeout: float = PROBE_TIMEOUT) -> str:
    """Sends a ZooKeeper four-letter word and returns the answer ('' on any error).
    The whole exchange is bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode("ascii"))
            chunks = []
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


_CONS_RE = re.compile(r"/(?P<addr>[^\[(]+)\[\d+\]\((?P<fields>[^)]*)\)")


def parse_cons(text: str) -> list[dict]:
    """Parses the `cons` answer: one dict per connection with 'addr' and the listed fields
    ('sid' as an int, 'to' - the negotiated session timeout in ms - as an int)."""
    out = []
    for m in _CONS_RE.finditer(text):
        d = {"addr": m.group("addr")}
        for kv in m.group("fields").split(","):
            if "=" in kv:
                k, v = kv.split("=", 1)
                d[k] = v
        if "sid" in d:
            try:
                d["sid"] = int(d["sid"], 16)
            except ValueError:
                pass
        if "to" in d:
            try:
                d["to"] = int(d["to"])
            except ValueError:
                pass
        out.append(d)
    return out


# --------------------------------------------------------------------------- the server

_live_servers: "set[ZooKeeperServer]" = set()
_live_lock = threading.Lock()


def _kill_all_at_exit() -> None:
    with _live_lock:
        servers = list(_live_servers)
    for s in servers:
        try:
            s.cleanup()
        except Exception:  # noqa: BLE001
            pass


atexit.register(_kill_all_at_exit)


class ZooKeeperClients:
    """Kazoo clients and tree helpers for a ZooKeeper service (one server or an ensemble):
    needs `connection_string` and `_clients` (a list cleanup() closes) and `_helper`."""

    # -- clients --
    def client(self, timeout: float = 10.0, session_timeout: float = 10.0, start: bool = True,
               **kwargs) -> "KazooClient":
        """A kazoo client, connected (within `timeout`) unless start=False. It reconnects
        quickly after a restart (retry delay <= 0.5 s) and is closed by cleanup()."""
        require_kazoo()
        kw = dict(hosts=self.connection_string, timeout=session_timeout,
                  connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5),
                  command_retry=dict(max_tries=20, delay=0.05, backoff=1.5, max_delay=0.5,
                                     deadline=timeout))
        kw.update(kwargs)
        c = KazooClient(**kw)
        self._clients.append(c)
        if start:
            try:
                c.start(timeout=timeout)
            except Exception:
                _close_client(c)
                self._clients.remove(c)
                raise
        return c

    @property
    def zk(self) -> "KazooClient":
        """The harness's own shared client (made on first use), used by the helpers."""
        if self._helper is None or not self._helper.connected:
            if self._helper is not None:
                _close_client(self._helper)
                if self._helper in self._clients:
                    self._clients.remove(self._helper)
            self._helper = self.client()
        return self._helper

    # -- tree helpers (on the shared client) --
    def ensure_path(self, path: str) -> None:
        self.zk.retry(self.zk.ensure_path, path)

    def exists(self, path: str) -> bool:
        return self.zk.retry(self.zk.exists, path) is not None

    def set_json(self, path: str, data: Mapping, ephemeral: bool = False) -> None:
        """Sets the node's data to `data` as JSON, creating it (and its parents) if needed."""
        raw = json.dumps(dict(data), sort_keys=True).encode()

        def op():
            try:
                self.zk.set(path, raw)
            except NoNodeError:
                try:
                    self.zk.create(path, raw, ephemeral=ephemeral, makepath=True)
                except NodeExistsError:
                    self.zk.set(path, raw)
        self.zk.retry(op)

    def get_data(self, path: str) -> bytes:
        return self.zk.retry(self.zk.get, path)[0] or b""

    def get_json(self, path: str) -> dict:
        """The node's data decoded as JSON ({} for empty data). Raises NoNodeError."""
        raw = self.get_data(path)
        return json.loads(raw.decode()) if raw.strip() else {}

    def children(self, path: str) -> list[str]:
        """Sorted children names; [] if the node does not exist."""
        try:
            return sorted(self.zk.retry(self.zk.get_children, path))
        except NoNodeError:
            return []

    def delete(self, path: str, recursive: bool = True) -> None:
        try:
            self.zk.retry(self.zk.delete, path, recursive=recursive)
        except NoNodeError:
            pass

    def create_tree(self, root: str = "/lb", lb_settings: Optional[Mapping] = None,
                    worker_settings: Optional[Mapping] = None) -> None:
        """The standard layout: ROOT, ROOT/providers, ROOT/workers, ROOT/workers/providers,
        with JSON settings on ROOT and ROOT/workers (deploy/zk-tree does the same)."""
        self.set_json(root, dict(lb_settings or {}))
        self.ensure_path(root + "/providers")
        self.set_json(root + "/workers", dict(worker_settings or {}))
        self.ensure_path(root + "/workers/providers")

    def wait_for_children(self, path: str,
                          predicate: Union[Callable[[list[str]], object], int, Iterable[str]],
                          timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """Polls until predicate(sorted children) is truthy; returns the children.
        `predicate` may also be an int (that many children) or a collection of names
        (exactly those children)."""
        if isinstance(predicate, int):
            n = predicate
            pred = lambda c: len(c) == n  # noqa: E731
            what = f"{n} children of {path}"
        elif not callable(predicate):
            want = sorted(predicate)
            pred = lambda c: c == want  # noqa: E731
            what = f"children {want} of {path}"
        else:
            pred = predicate
            what = f"children of {path} to satisfy {getattr(predicate, '__name__', 'predicate')}"
        last: list[list[str]] = [[]]

        def check():
            last[0] = self.children(path)
            return pred(last[0])
        wait_for(check, timeout, message=lambda: f"{what} (last: {last[0]})")
        return last[0]


class ZooKeeperServer(ZooKeeperClients):
    """A standalone ZooKeeper on 127.0.0.1 with its config, data and log in a temp dir.

    `tick_time` (ms) bounds the session timeouts the server grants: [2, 20] × tick_time.
    `extra_config` adds zoo.cfg keys (e.g. {"maxSessionTimeout": 6000}).
    `die_with_parent` (default True) makes the JVM die with the *thread* that started it:
    start servers from the main thread, or pass False (atexit/cleanup still apply).
    """

    def __init__(self, tick_time: int = 2000, extra_config: Optional[Mapping[str, object]] = None,
                 dir: Optional[str] = None, prefix: str = "rlb-zk-",
                 die_with_parent: bool = True, myid: Optional[int] = None):
        self.die_with_parent = die_with_parent
        self.myid = myid  # an ensemble member's id (its `myid` file); None: standalone
        self.tick_time = int(tick_time)
        self.extra_config = dict(extra_config or {})
        self._own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix=prefix)
        self.port: Optional[int] = None
        self.popen: Optional[subprocess.Popen] = None
        self._log = None
        self._clients: list = []
        self._helper = None
        self._cleaned = False

    # -- paths --
    @property
    def conf_dir(self) -> str:
        return os.path.join(self.dir, "conf")

    @property
    def data_dir(self) -> str:
        return os.path.join(self.dir, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "zookeeper.out")

    @property
    def connection_string(self) -> str:
        if self.port is None:
            raise RuntimeError("ZooKeeperServer not started")
        return f"127.0.0.1:{self.port}"

    hosts = connection_string

    @property
    def pid(self) -> Optional[int]:
        return self.popen.pid if self.popen else None

    # -- config --
    def _write_config(self) -> None:
        os.makedirs(self.conf_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        cfg = {
            "tickTime": self.tick_time,
            "dataDir": self.data_dir,
            "clientPort": self.port,
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": 0,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "ruok,srvr,stat,mntr,cons",
            "forceSync": "no",
        }
        cfg.update(self.extra_config)
        if self.myid is not None:
            with open(os.path.join(self.data_dir, "myid"), "w") as f:
                f.write(f"{self.myid}\n")
        with open(os.path.join(self.conf_dir, "zoo.cfg"), "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        with open(os.path.join(self.conf_dir, "log4j.properties"), "w") as f:
            f.write("log4j.rootLogger=INFO, CONSOLE\n"
                    "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.CONSOLE.layout.ConversionPattern="
                    "%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n")

    def command(self) -> list[str]:
        """The java command line (as in docs/platform notes)."""
        cp = ":".join((self.conf_dir,) + ZK_JARS)
        return [JAVA, "-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.net.preferIPv4Stack=true", f"-Dzookeeper.log.dir={self.dir}",
                "-cp", cp, MAIN_CLASS, os.path.join(self.conf_dir, "zoo.cfg")]

    # -- lifecycle --
    def start(self, port: Optional[int] = None, timeout: float = START_TIMEOUT,
              wait: bool = True) -> "ZooKeeperServer":
        """Starts the server (on `port`, a free one if None, or the previous one when
        restarting) and waits until it serves (unless wait=False: an ensemble member serves
        only once a quorum is up). Raises (after killing the JVM) on failure."""
        if self._cleaned:
            raise RuntimeError("ZooKeeperServer already cleaned up")
        if self.running():
            raise RuntimeError(f"ZooKeeper already running on port {self.port}")
        reason = zookeeper_available()
        if reason:
            raise unittest.SkipTest(reason)
        if port is not None:
            self.port = int(port)
        elif self.port is None:
            self.port = free_port()
        self._write_config()
        if self._log is None or self._log.closed:
            self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=self.dir, close_fds=True,
                                      start_new_session=True,
                                      preexec_fn=_die_with_parent if self.die_with_parent else None)
        with _live_lock:
            _live_servers.add(self)
        if not wait:
            return self
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def srvr(self, timeout: float = PROBE_TIMEOUT) -> str:
        return four_letter_word(self.port, "srvr", timeout=timeout) if self.port else ""

    def four_letter_word(self, cmd: str, timeout: float = PROBE_TIMEOUT) -> str:
        return four_letter_word(self.port, cmd, timeout=timeout)

    def mode(self) -> Optional[str]:
        """"standalone", "leader" or "follower" while serving, else None."""
        m = re.search(r"^Mode: (\w+)", self.srvr(), re.M)
        return m.group(1) if m else None

    def ready(self) -> bool:
        return self.mode() in ("standalone", "leader", "follower")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.popen is None or self.popen.poll() is not None:
                code = self.popen.returncode if self.popen else None
                raise AssertionError(f"ZooKeeper exited ({code}) while starting on port "
                                     f"{self.port}; log tail:\n{self.tail()}")
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"ZooKeeper on port {self.port} not serving after {timeout} s;"
                                  f" log tail:\n{self.tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then waits (killing it on the deadline). Returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL to the JVM's process group; reaps it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            harness.kill_group(self.popen)
        self._forget()

    def _forget(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            with _live_lock:
                _live_servers.discard(self)

    def restart(self, timeout: float = START_TIMEOUT, kill: bool = False) -> "ZooKeeperServer":
        """Stops (SIGTERM, or SIGKILL with kill=True) and starts again on the same port and
        data dir: persistent nodes survive; sessions survive if clients reconnect within
        their timeout."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(self.port, timeout=timeout)

    def cleanup(self, keep_dir: bool = False) -> None:
        """Closes every client made by client(), stops the server, removes the temp dir.
        Safe to call more than once."""
        for c in list(self._clients):
            _close_client(c)
        self._clients.clear()
        self._helper = None
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.stop(timeout=5)
            except Exception:  # noqa: BLE001
                self.kill()
        self.kill()
        with _live_lock:
            _live_servers.discard(self)
        if self._log is not None and not self._log.closed:
            self._log.close()
        if self._own_dir and not keep_dir and not os.environ.get("RLB_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        self._cleaned = True

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # -- diagnostics --
    def output(self) -> str:
        return harness.read_text(self.log_path)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def sessions(self) -> list[dict]:
        """The server's client connections (`cons`): dicts with 'addr', 'sid', 'to' (ms)."""
        return parse_cons(self.four_letter_word("cons", timeout=2.0))

class ZooKeeperEnsemble(ZooKeeperClients):
    """`n` ZooKeeper servers on 127.0.0.1 forming one ensemble (quorum n // 2 + 1), each with
    its own client, peer and election ports and temp dir. `servers[i]` is a ZooKeeperServer
    (stop, kill, start again on its port); the tree helpers and client() use every member's
    client address, as resumelb's programs are given them."""

    def __init__(self, n: int = 3, tick_time: int = 500, prefix: str = "rlb-zkens-"):
        self.n = n
        self._clients: list = []
        self._helper = None
        ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
        members = {f"server.{i + 1}": f"127.0.0.1:{peer}:{election}"
                   for i, (_, peer, election) in enumerate(ports)}
        config = {"initLimit": 10, "syncLimit": 5, **members}
        self.servers = [ZooKeeperServer(tick_time=tick_time, extra_config=config,
                                        prefix=f"{prefix}{i + 1}-", myid=i + 1)
                        for i in range(n)]
        for server, (client_port, _, _) in zip(self.servers, ports):
            server.port = client_port

    @property
    def connection_string(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    hosts = connection_string

    def start(self, timeout: float = START_TIMEOUT) -> "ZooKeeperEnsemble":
        for s in self.servers:
            s.start(port=s.port, wait=False)
        for s in self.servers:
            s.wait_ready(timeout)
        return self

    def leader(self) -> ZooKeeperServer:
        """The member that is the leader now (waits for an election to finish)."""
        def find():
            for s in self.servers:
                if s.running() and s.mode() == "leader":
                    return s
            return None
        return wait_for(find, START_TIMEOUT, message="a ZooKeeper leader")

    def cleanup(self) -> None:
        for c in list(self._clients):
            _close_client(c)
        self._clients.clear()
        self._helper = None
        for s in self.servers:
            s.cleanup()


def _close_client(c) -> None:
    try:
        c.stop()
    except Exception:  # noqa: BLE001
        pass
    try:
        c.close()
    except Exception:  # noqa: BLE001
        pass


# --------------------------------------------------------------------------- sessions

def expire_session(zk_client_or_session: Union["KazooClient", tuple], hosts: Optional[str] = None,
                   timeout: float = 10.0, wait: bool = True) -> None:
    """Expires a ZooKeeper session from the outside.

    Give a connected KazooClient, or a (session_id, password) pair plus `hosts`. A second
    client attaches to that session and closes it, which ends the session on the server at
    once (its ephemeral nodes are deleted). With wait=True and a KazooClient, waits until
    that client has noticed (state LOST) - it then reconnects with a new session by itself.

    For a process using the C client (zkresumelb, zkworker) the password is not
    available: use pause_process(pid, seconds) with seconds > its session timeout.
    """
    require_kazoo()
    from kazoo.protocol.states import KazooState
    if isinstance(zk_client_or_session, tuple):
        session_id, password = zk_client_or_session
        target = None
        if hosts is None:
            raise ValueError("expire_session: hosts= is required with a (session_id, password)")
    else:
        target = zk_client_or_session
        if target.client_id is None:
            raise RuntimeError("expire_session: the client is not connected")
        session_id, password = target.client_id
        if hosts is None:  # KazooClient.hosts is a list of (host, port)
            hosts = ",".join(f"{h}:{p}" for h, p in target.hosts)
    lost = threading.Event()
    if target is not None:
        def listener(state):
            if state == KazooState.LOST:
                lost.set()
                return True  # remove the listener
            return False
        target.add_listener(listener)
    other = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=timeout)
    try:
        other.start(timeout=timeout)
    finally:
        _close_client(other)
    if target is not None and wait:
        # The target learns about the expiry on its next exchange with the server; a
        # harmless read makes that happen now.
        deadline = time.monotonic() + timeout
        while not lost.is_set() and time.monotonic() < deadline:
            try:
                target.exists("/")
            except Exception:  # noqa: BLE001 - expected: SessionExpired / ConnectionLoss
                pass
            lost.wait(0.1)
        if not lost.is_set():
            raise WaitTimeout(f"session 0x{session_id:x} not reported lost within {timeout} s")


def wait_session_gone(server: ZooKeeperServer, session_id: int,
                      timeout: float = DEFAULT_TIMEOUT) -> None:
    """Waits until the server no longer lists `session_id` among its connections."""
    wait_for(lambda: all(s.get("sid") != session_id for s in server.sessions()), timeout,
             message=f"session 0x{session_id:x} to disappear")


# --------------------------------------------------------------------------- test case

class ZooKeeperTestCase(harness.E2ETestCase):
    """E2ETestCase with one ZooKeeper server per class: ``cls.zk_server`` (started in
    setUpClass, cleaned up after the class) and ``self.zk_server.zk`` (a kazoo client).
    Tests should use distinct root paths (or call ``self.zk_server.delete(path)``)."""

    zk_tick_time = 2000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_kazoo()
        reason = zookeeper_available()
        if reason:
            raise unittest.SkipTest(reason)
        cls.zk_server = ZooKeeperServer(tick_time=cls.zk_tick_time,
                                        prefix=f"rlb-zk-{cls.__name__}-"[:40])
        cls.addClassCleanup(cls.zk_server.cleanup)
        cls.zk_server.start()
